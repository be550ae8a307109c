"""Django's PostgreSQL backend, carrying the tenant scope (`tenants.rls`) to the connection.

Before a cursor is made, the scope of the calling context is compared with the one last applied
to the connection and, when they differ, applied with `set_config(…, false)` on the raw
connection (so the query counts of tests and debug tooling do not see it). A rollback can undo a
`set_config` made inside the rolled-back transaction, so after any rollback the connection's
scope counts as unknown and is applied again before the next query; so does a new connection.
"""

import logging

from django.db.backends.postgresql import base

from tenants import rls

logger = logging.getLogger(__name__)

# The connection's scope is not known: apply the context's before the next query.
_UNKNOWN = None
_bypass_checked = False


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.applied_scope = _UNKNOWN
        self.rolling_back = False

    def init_connection_state(self):
        super().init_connection_state()
        # Not assumed unscoped: a pooled session (Django's pool, PgBouncer in session mode) may
        # still hold its previous user's tenant. Transaction pooling cannot carry a session
        # setting at all and must not be used.
        self.applied_scope = _UNKNOWN
        self._warn_if_policies_bypassed()

    def create_cursor(self, name=None):
        wanted = rls.current()
        if wanted != self.applied_scope and not self.rolling_back:
            self.connection.execute(
                "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
                [rls.TENANT_SETTING, wanted.tenant_id, rls.USER_SETTING, wanted.user_id],
            )
            self.applied_scope = wanted
        return super().create_cursor(name)

    def _rollback(self):
        self.applied_scope = _UNKNOWN
        return super()._rollback()

    def _savepoint_rollback(self, sid):
        # The transaction may be in error until the rollback: nothing else may run before it.
        self.rolling_back = True
        try:
            return super()._savepoint_rollback(sid)
        finally:
            self.rolling_back = False
            self.applied_scope = _UNKNOWN

    def _warn_if_policies_bypassed(self) -> None:
        global _bypass_checked
        if _bypass_checked:
            return
        _bypass_checked = True
        row = self.connection.execute(rls.BYPASS_QUERY).fetchone()
        if row and row[0]:
            logger.warning(
                "The database role %r bypasses row-level security (superuser or BYPASSRLS): "
                "tenant isolation rests on the application's filters alone. Connect as an "
                "ordinary role.",
                self.settings_dict.get("USER"),
            )
