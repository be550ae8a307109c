"""Announcements that a user's, a membership's or a tenant's access changed, for connections
that outlive one request (WebSockets).

A socket cannot afford three database reads before every frame and every pushed event, so the
services that take access away (remove a member, change a role, deactivate a user, suspend or
delete a tenant) write a new random stamp under the thing's cache key once their change is
committed. A socket reads the stamps of its user, membership and tenant at connect and compares
them before it acts (one cache round trip); a different stamp, or a missing one, sends it back
to the database for the real state. A stamp only ever says "look again": losing the cache
costs a database read, never a missed revocation, and a socket re-reads the database at least
every `SOCKET_ACCESS_RECHECK_SECONDS` for changes made without the services.
"""

import logging
import uuid

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

# Long enough to outlive any socket's check interval; an expired stamp only costs a re-read.
STAMP_SECONDS = 7 * 24 * 3600


def user_key(user_id) -> str:
    return f"access-stamp:user:{user_id}"


def tenant_key(tenant_id) -> str:
    return f"access-stamp:tenant:{tenant_id}"


def membership_key(tenant_id, user_id) -> str:
    return f"access-stamp:membership:{tenant_id}:{user_id}"


def socket_keys(*, user_id, tenant_id) -> list[str]:
    """The stamps an open socket of `user_id` in `tenant_id` watches."""
    return [user_key(user_id), tenant_key(tenant_id), membership_key(tenant_id, user_id)]


def access_stamps(keys: list[str]) -> dict[str, str]:
    return cache.get_many(keys)


def access_changed(*, user_id=None, tenant_id=None, membership=None) -> None:
    """Announce, once the current transaction commits, that access resting on these changed."""
    keys = []
    if user_id is not None:
        keys.append(user_key(user_id))
    if tenant_id is not None:
        keys.append(tenant_key(tenant_id))
    if membership is not None:
        keys.append(membership_key(membership.tenant_id, membership.user_id))

    def announce() -> None:
        # After the commit: a socket that re-reads the database on this stamp sees the change.
        cache.set_many({key: uuid.uuid4().hex for key in keys}, timeout=STAMP_SECONDS)

    # robust: the change is saved either way; without the stamp, sockets notice it at their
    # next periodic re-read.
    transaction.on_commit(announce, robust=True)
