"""The visitor token: what a widget session gives a browser, and the only credential of
/v1/widget/… and /ws/widget/.

A signed JWT (the platform's signing key, through simplejwt) of its own type, `visitor`: the
member API's authentication accepts only `access` tokens and the refresh endpoint only
`refresh`, so a visitor token opens nothing under /v1/tenants/; the visitor authentication
accepts only `visitor`, so a member's token opens nothing here. It names the tenant, the widget
and the visitor; it lives at most an hour (the widget asks for a new session before it ends),
and every request re-reads the visitor, so a deleted widget, a disabled one or a suspended
tenant stops it at once. Not stored: nothing to clean up for anonymous traffic.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import Token

from tenants import logcontext
from tenants.errors import TenantSuspended
from widgets import selectors
from widgets.errors import VisitorTokenInvalid, WidgetDisabled
from widgets.models import Visitor


class VisitorToken(Token):
    token_type = "visitor"  # noqa: S105 - a token kind, not a secret

    @property
    def lifetime(self) -> timedelta:
        return timedelta(minutes=settings.WIDGET_TOKEN_MINUTES)


def visitor_token_for(visitor: Visitor) -> VisitorToken:
    token = VisitorToken()
    token["tenant_id"] = str(visitor.tenant_id)
    token["widget_id"] = visitor.widget_id
    token["visitor"] = visitor.pk
    return token


@dataclass
class VisitorPrincipal:
    """`request.user` on the widget API: a visitor, never a member."""

    visitor: Visitor
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    pk = None
    id = None


def visitor_from_token(raw: str) -> Visitor:
    """The visitor a raw token names, if the token is valid and the visitor may chat now.
    Raises `AuthenticationFailed` (401) or a 403 (widget disabled, tenant suspended)."""
    try:
        token = VisitorToken(raw)
    except TokenError as exc:
        raise VisitorTokenInvalid(_("The visitor token is not valid: %(reason)s") % {"reason": exc}) from exc
    try:
        visitor = selectors.visitor_for_token(
            visitor_pk=int(token["visitor"]), tenant_id=token["tenant_id"], widget_id=int(token["widget_id"])
        )
    except (KeyError, TypeError, ValueError):
        visitor = None
    if visitor is None:
        raise VisitorTokenInvalid(
            _("This chat session has ended; open the chat again."), code="session_ended"
        )
    if not visitor.tenant.is_active:
        raise TenantSuspended()
    if not visitor.widget.enabled:
        raise WidgetDisabled()
    return visitor


class VisitorTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise AuthenticationFailed(_("The Authorization header must be `Bearer <token>`."))
        visitor = visitor_from_token(header[1].decode("latin-1"))
        request.visitor = visitor
        request.tenant = visitor.tenant
        logcontext.bind(tenant_id=visitor.tenant_id, visitor_id=visitor.pk)
        request.role = None
        request.membership = None
        return VisitorPrincipal(visitor=visitor), None

    def authenticate_header(self, request):
        return 'Bearer realm="widget"'
