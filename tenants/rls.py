"""PostgreSQL row-level security: the second wall behind the tenant filter of every query.

The first wall is the one rule of DESIGN.md (the URL's tenant resolved once, every query scoped
by it through `for_tenant()`). This one holds when a query forgets its filter: every tenant-owned
table has a policy that shows (and accepts) only the rows of the tenant in the connection's
`app.tenant_id` setting, and the table owner is subject to it too (FORCE ROW LEVEL SECURITY).

- `scope(tenant_id, user_id)` makes a tenant the scope of the code inside it, in this context
  (a thread, an asyncio task, a Channels consumer). The entry points that resolve a tenant use
  it: the API's tenant-scoped views, the dashboard's tenant pages, the WebSocket consumer, the
  server-sent event stream and the ingestion task; a view's scope ends with it (`unscoped()`).
- The database backend (`tenants.postgresql`) applies the context's scope to its connection
  before the next query whenever they differ, so a connection shared by several consumers (one
  sync thread) or reused by the next request always carries the right tenant.
- With no scope (sign-in, sign-up, the operators' cross-tenant pages, the Django admin,
  migrations, commands) the policies show every row: those paths are not about one tenant.
- Memberships are also visible to their own user, so that a person in several tenants can
  switch between them from a page scoped to one.

PostgreSQL only; on SQLite the scope is kept but there is nothing to apply it to. Superusers and
roles with BYPASSRLS are not subject to policies: the platform must connect as an ordinary role
(the owner of its tables is fine); the backend logs a warning when it is not.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import connections

TENANT_SETTING = "app.tenant_id"
USER_SETTING = "app.user_id"
POLICY_NAME = "tenant_isolation"
OWN_MEMBERSHIPS_POLICY = "own_memberships"
BYPASS_QUERY = "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"


@dataclass(frozen=True)
class Scope:
    tenant_id: str
    user_id: str

    def as_settings(self) -> tuple[str, str]:
        return self.tenant_id, self.user_id


UNSCOPED = Scope(tenant_id="", user_id="")

_scope: ContextVar[Scope] = ContextVar("tenant_scope", default=UNSCOPED)


def current() -> Scope:
    return _scope.get()


def enter(tenant_id, user_id=None):
    """Scope what follows in this context to `tenant_id`; returns a token for `leave()`."""
    if not tenant_id:
        raise ValueError("a tenant scope needs a tenant id")
    return _scope.set(Scope(tenant_id=str(tenant_id), user_id=str(user_id or "")))


def leave(token) -> None:
    try:
        _scope.reset(token)
    except ValueError:
        # An async generator closed from another context than the one it entered in.
        _scope.set(UNSCOPED)


@contextmanager
def scope(tenant_id, user_id=None):
    token = enter(tenant_id, user_id)
    try:
        yield
    finally:
        leave(token)


@contextmanager
def unscoped():
    """Code inside starts with no scope, and a scope entered inside ends here. Views wrap
    themselves in it so that nothing after a request inherits its tenant; the few operator
    actions that must cross a tenant's scope use it too (deleting a tenant detaches its audit
    trail, tenant set to NULL, which moves rows out of the scope)."""
    token = _scope.set(UNSCOPED)
    try:
        yield
    finally:
        leave(token)


# --- Policies ----------------------------------------------------------------------------------


def _setting(name: str, db_type: str) -> str:
    # A sub-select: evaluated once per query rather than once per row.
    return f"(SELECT NULLIF(current_setting('{name}', true), '')::{db_type})"


def policy_condition(column: str, db_type: str, *, setting: str = TENANT_SETTING) -> str:
    """Rows in the connection's scope: all when it has none, else those whose `column` holds
    the scope's value."""
    return f"{_setting(setting, db_type)} IS NULL OR {column} = {_setting(setting, db_type)}"


def tenant_owned_fields(connection) -> list[tuple]:
    """(table, (tenant column, type), (user column, type) for memberships) of every model
    holding a tenant's rows (columns quoted, types those of the keys they reference): any concrete model with a foreign key to `Tenant` (or one-to-one
    on it)."""
    from django.apps import apps

    from tenants.models import Membership, Tenant

    def column(foreign_key):
        # The referencing column, cast to the type of the key it references.
        return connection.ops.quote_name(foreign_key.column), foreign_key.target_field.rel_db_type(connection)

    tables = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is Tenant:
                user = column(Membership._meta.get_field("user")) if model is Membership else None
                tables.append((model._meta.db_table, column(field), user))
                break
    return sorted(tables)


def apply_policies(using: str = "default") -> list[str]:
    """Enable, force and (re)create the isolation policies on every tenant-owned table;
    idempotent. Runs after every `migrate` (see apps.py), so a new tenant-owned model is covered
    by its first migration. Returns the tables it covered (none on a database other than
    PostgreSQL).

    One policy per table for everything (read and write): the tenant's rows. Memberships have a
    second one, for reading only: a person's own memberships in other tenants (the dashboard's
    tenant switcher); they cannot be written from another tenant's scope."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    quote = connection.ops.quote_name
    covered = []
    with connection.cursor() as cursor:
        for table, (tenant_column, tenant_type), user in tenant_owned_fields(connection):
            condition = policy_condition(tenant_column, tenant_type)
            cursor.execute(f"ALTER TABLE {quote(table)} ENABLE ROW LEVEL SECURITY")
            cursor.execute(f"ALTER TABLE {quote(table)} FORCE ROW LEVEL SECURITY")
            # `flush` (test teardown) re-sends post_migrate without pre_migrate: replace.
            for policy in (POLICY_NAME, OWN_MEMBERSHIPS_POLICY):
                cursor.execute(f"DROP POLICY IF EXISTS {policy} ON {quote(table)}")
            cursor.execute(
                f"CREATE POLICY {POLICY_NAME} ON {quote(table)} FOR ALL "
                f"USING ({condition}) WITH CHECK ({condition})"
            )
            if user:
                user_column, user_type = user
                cursor.execute(
                    f"CREATE POLICY {OWN_MEMBERSHIPS_POLICY} ON {quote(table)} FOR SELECT "
                    f"USING ({user_column} = {_setting(USER_SETTING, user_type)})"
                )
            covered.append(table)
    return covered


def drop_policies(using: str = "default") -> None:
    """Drop the platform's policies before `migrate` (see apps.py): PostgreSQL refuses to alter
    or drop a column a policy uses, such as a tenant column. `apply_policies` restores them
    after; a migration that fails half way leaves them off until the next `migrate` succeeds."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, policyname FROM pg_policies WHERE schemaname = current_schema() "
            "AND policyname IN (%s, %s)",
            [POLICY_NAME, OWN_MEMBERSHIPS_POLICY],
        )
        for table, policy in cursor.fetchall():
            cursor.execute(f"DROP POLICY {quote(policy)} ON {quote(table)}")


def role_bypasses_policies(using: str = "default") -> bool:
    """Whether the database role is a superuser or has BYPASSRLS: policies do not bind it."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(BYPASS_QUERY)
        row = cursor.fetchone()
    return bool(row and row[0])
