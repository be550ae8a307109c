#!/bin/sh
# Runs once, when the PostgreSQL container initialises its data directory: creates the role the
# platform connects as. An ordinary role (no SUPERUSER, no BYPASSRLS) owning the database, so
# that the row-level security policies (tenants/rls.py) apply to the platform's own queries.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$POSTGRES_PASSWORD" -v database="$POSTGRES_DB" <<'SQL'
CREATE ROLE platform LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'password';
ALTER DATABASE :"database" OWNER TO platform;
SQL
