"""Tenant resolution for WebSocket connections, the socket's twin of `TenantJWTAuthentication`.

The access token comes in the `token` query parameter, or as the subprotocol pair
`["bearer", "<token>"]` (browsers cannot set headers on a WebSocket). The middleware puts
`user` and `access` (a `tenants.access.TenantAccess`), or `auth_error`, into the scope;
consumers then call `resolve_socket_tenant()` with the tenant their URL names, which applies the
same rule as the REST API: another tenant is "not found", a suspended tenant is refused.

A socket lives longer than its token and than the access it was opened with: the consumer checks
`SocketAccess.refusal()` before every frame and every pushed event (the token's `exp` locally,
the rest through the stamps of `tenants.revocation`, and the database when they moved).

The dashboard opens its socket with a `SocketToken`: signed like an access token but of its own
type, so the REST API (which accepts only `access` tokens) and the refresh endpoint refuse it.
"""

import time
from datetime import timedelta
from urllib.parse import parse_qs

from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import Token, UntypedToken

from tenants import blocking, revocation
from tenants.access import TenantAccess, credential_access, resolve_url_tenant
from tenants.errors import APIError
from tenants.models import Membership

BEARER_SUBPROTOCOL = "bearer"

# WebSocket close codes: 4000 + the HTTP status they stand for.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def token_from_scope(scope) -> str | None:
    """The bearer token of a socket: the `token` query parameter or the `bearer` subprotocol."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    subprotocols = scope.get("subprotocols") or []
    if len(subprotocols) >= 2 and subprotocols[0] == BEARER_SUBPROTOCOL:
        return subprotocols[1]
    return None


class SocketToken(Token):
    """A token that opens the WebSocket and nothing else: the REST API's authentication takes
    only `token_type == "access"` and the refresh endpoint only `"refresh"`. It is not stored
    (no OutstandingToken row): it lives minutes and the socket re-checks access while open."""

    token_type = "socket"  # noqa: S105 - a token kind, not a secret

    @property
    def lifetime(self) -> timedelta:
        return timedelta(seconds=settings.SOCKET_TOKEN_SECONDS)


# The token types a socket accepts: the dashboard's, and an API client's access token.
SOCKET_TOKEN_TYPES = {"access", SocketToken.token_type}


def socket_token_for(*, user, membership: Membership | None) -> str:
    """A socket token of `user` for `membership`'s tenant (none for a platform admin without a
    membership, who names the tenant in the socket's URL)."""
    token = SocketToken.for_user(user)
    token["tenant_id"] = str(membership.tenant_id) if membership else None
    token["role"] = TenantAccess.through(user, membership).role
    return str(token)


def decode_socket_token(raw: str) -> Token:
    """The verified token (signature, expiry, type), or `TokenError`."""
    token = UntypedToken(raw)
    if token.get("token_type") not in SOCKET_TOKEN_TYPES:
        raise TokenError(_("This token cannot open a socket."))
    return token


def _active_user(user_id):
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def _authenticate(raw: str | None) -> dict:
    anonymous = {"user": AnonymousUser(), "access": TenantAccess()}
    if not raw:
        return {**anonymous, "auth_error": "Authentication credentials were not provided."}
    try:
        token = decode_socket_token(raw)
    except TokenError as exc:
        return {**anonymous, "auth_error": f"The token is not valid: {exc}"}
    # The stamps are read before the database: a change committed in between moves them.
    stamp_keys = revocation.socket_keys(user_id=token.get("user_id"), tenant_id=token.get("tenant_id"))
    try:
        stamps = revocation.access_stamps(stamp_keys)
    except Exception:  # noqa: BLE001 - the cache is down: no stamps, every check reads the database
        stamps = None
    user = _active_user(token.get("user_id"))
    if user is None:
        return {**anonymous, "auth_error": "The token's user no longer exists."}
    access = credential_access(user=user, tenant_id=token.get("tenant_id"))
    if access is None:
        return {**anonymous, "auth_error": "This token's membership no longer exists; sign in again."}
    return {
        "user": user,
        "access": access,
        "auth_error": None,
        "token_claims": {"tenant_id": token.get("tenant_id"), "exp": token["exp"]},
        "access_stamp_keys": stamp_keys,
        "access_stamps": stamps,
    }


class JWTAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        resolved = await blocking.to_pool(_authenticate)(token_from_scope(scope))
        return await super().__call__({**scope, **resolved}, receive, send)


class BrowserOriginValidator(OriginValidator):
    """Pages of other sites may not open a socket here (a browser always sends their Origin).
    Clients that send no Origin are not browsers: their bearer token alone authenticates them,
    so there is no ambient credential for another site to abuse."""

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)


def browser_origin_validator(application):
    return BrowserOriginValidator(application, settings.ALLOWED_HOSTS)


class SocketRefused(Exception):
    def __init__(self, close_code: int, code: str, message: str):
        super().__init__(message)
        self.close_code = close_code
        self.code = code
        self.message = message


def resolve_socket_tenant(scope, tenant_id):
    """(tenant, role) the socket's user may act in, or `SocketRefused`."""
    if scope.get("auth_error") or not scope.get("user") or not scope["user"].is_authenticated:
        raise SocketRefused(
            CLOSE_UNAUTHENTICATED, "not_authenticated", scope.get("auth_error") or "Sign in first."
        )
    try:
        access = resolve_url_tenant(user=scope["user"], access=scope["access"], tenant_id=tenant_id)
    except APIError as exc:
        close_code = CLOSE_NOT_FOUND if exc.status_code == 404 else CLOSE_FORBIDDEN
        raise SocketRefused(close_code, exc.error_code, str(exc.detail)) from exc
    return access.tenant, access.role


def _recheck_refusal(user_id, token_tenant_id, tenant_id, role) -> SocketRefused | None:
    user = _active_user(user_id)
    if user is None:
        return SocketRefused(
            CLOSE_UNAUTHENTICATED, "user_inactive", _("This account is disabled or no longer exists.")
        )
    access = credential_access(user=user, tenant_id=token_tenant_id)
    if access is None:
        return SocketRefused(
            CLOSE_FORBIDDEN, "membership_revoked", _("You are no longer a member of this tenant.")
        )
    try:
        current = resolve_url_tenant(user=user, access=access, tenant_id=tenant_id)
    except APIError as exc:
        # Whatever the connect would answer now (suspended, gone), access was taken away.
        return SocketRefused(CLOSE_FORBIDDEN, exc.error_code, str(exc.detail))
    if current.role != role:
        return SocketRefused(
            CLOSE_FORBIDDEN, "role_changed", _("Your role in this tenant changed; connect again.")
        )
    return None


class SocketAccess:
    """What an open socket's access rests on, and the check it runs before acting."""

    def __init__(self, scope, *, tenant_id, role):
        self.user_id = scope["user"].pk
        self.token_tenant_id = scope["token_claims"]["tenant_id"]
        self.expires_at = scope["token_claims"]["exp"]
        self.tenant_id = tenant_id
        self.role = role
        self.stamp_keys = scope["access_stamp_keys"]
        self.stamps = scope["access_stamps"]
        self.checked_at = time.monotonic()

    def renew(self, raw) -> int:
        """Take a fresh token of the same user and tenant: its expiry replaces the first's."""
        try:
            token = decode_socket_token(raw if isinstance(raw, str) else "")
        except TokenError as exc:
            raise APIError(
                _("The new token is not valid: %(reason)s") % {"reason": exc}, code="token_invalid"
            ) from exc
        if str(token.get("user_id")) != str(self.user_id) or token.get("tenant_id") != self.token_tenant_id:
            raise APIError(_("The new token belongs to another user or tenant."), code="token_invalid")
        self.expires_at = token["exp"]
        return self.expires_at

    def refusal(self, *, check_expiry: bool = True) -> SocketRefused | None:
        """Why this socket may no longer act, or None. Blocking (cache and database reads): run
        it in a worker thread."""
        if check_expiry and time.time() >= self.expires_at:
            return SocketRefused(
                CLOSE_UNAUTHENTICATED, "token_expired", _("Your token has expired; connect again.")
            )
        try:
            stamps = revocation.access_stamps(self.stamp_keys)
        except Exception:  # noqa: BLE001 - the cache is down: ask the database instead
            stamps = None
        stale = time.monotonic() - self.checked_at >= settings.SOCKET_ACCESS_RECHECK_SECONDS
        if stamps is not None and stamps == self.stamps and not stale:
            return None
        refused = _recheck_refusal(self.user_id, self.token_tenant_id, self.tenant_id, self.role)
        if refused is None:
            # The stamps read before the database: a change committed since moves them again.
            self.stamps = stamps
            self.checked_at = time.monotonic()
        return refused
