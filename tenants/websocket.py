"""Tenant resolution for WebSocket connections, the socket's twin of `TenantJWTAuthentication`.

The access token comes in the `token` query parameter, or as the subprotocol pair
`["bearer", "<token>"]` (browsers cannot set headers on a WebSocket). The middleware puts
`user`, `tenant`, `role` (or `auth_error`) into the scope; consumers then call
`resolve_socket_tenant()` with the tenant their URL names, which applies the same rule as the REST
API: another tenant is "not found", a suspended tenant is refused.
"""

from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from tenants.errors import APIError
from tenants.models import Membership
from tenants.roles import PLATFORM_ADMIN
from tenants.scoping import resolve_url_tenant

BEARER_SUBPROTOCOL = "bearer"

# WebSocket close codes: 4000 + the HTTP status they stand for.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def _token_from(scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    subprotocols = scope.get("subprotocols") or []
    if len(subprotocols) >= 2 and subprotocols[0] == BEARER_SUBPROTOCOL:
        return subprotocols[1]
    return None


def _authenticate(raw: str | None) -> dict:
    anonymous = {"user": AnonymousUser(), "tenant": None, "role": None, "membership": None}
    if not raw:
        return {**anonymous, "auth_error": "Authentication credentials were not provided."}
    try:
        token = AccessToken(raw)
    except TokenError as exc:
        return {**anonymous, "auth_error": f"The token is not valid: {exc}"}
    user = get_user_model().objects.filter(pk=token.get("user_id"), is_active=True).first()
    if user is None:
        return {**anonymous, "auth_error": "The token's user no longer exists."}
    scope = {"user": user, "tenant": None, "membership": None, "auth_error": None}
    scope["role"] = PLATFORM_ADMIN if user.is_platform_admin else None
    tenant_id = token.get("tenant_id")
    if tenant_id:
        membership = (
            Membership.objects.select_related("tenant", "tenant__plan")
            .filter(user=user, tenant_id=tenant_id)
            .first()
        )
        if membership is None:
            return {**anonymous, "auth_error": "This token's membership no longer exists; sign in again."}
        scope["membership"] = membership
        scope["tenant"] = membership.tenant
        if not user.is_platform_admin:
            scope["role"] = membership.role
    return scope


class JWTAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        resolved = await database_sync_to_async(_authenticate)(_token_from(scope))
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
    request = SimpleNamespace(user=scope["user"], tenant=scope.get("tenant"), role=scope.get("role"))
    try:
        return resolve_url_tenant(request, tenant_id)
    except APIError as exc:
        close_code = CLOSE_NOT_FOUND if exc.status_code == 404 else CLOSE_FORBIDDEN
        raise SocketRefused(close_code, exc.error_code, str(exc.detail)) from exc
