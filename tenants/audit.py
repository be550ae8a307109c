"""The audit trail of administrative actions.

Services call `audit_record()` inside their transaction; the acting person comes from the
request's context: `AuditActorMiddleware` sets it for session users (dashboard, Django admin),
`TenantJWTAuthentication` for API callers. Work with no request (Celery, commands) is recorded
as "system". Details carry names and changed fields, never secrets.
"""

from contextvars import ContextVar
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy

from tenants.models import AuditEvent, Tenant
from tenants.roles import PLATFORM_ADMIN
from tenants.throttling import client_address  # the one helper, behind trusted proxies too

SYSTEM = "system"

# How a tenant's people see a platform operator who acted in their tenant.
PLATFORM_OPERATOR = gettext_lazy("platform operator")


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    email: str
    ip_address: str | None


_actor: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)


def actor_set(*, user, ip_address: str | None):
    """Make `user` the actor of what follows in this context; returns a token for `actor_reset`."""
    actor = Actor(user_id=user.pk, email=user.email, ip_address=ip_address) if user else None
    return _actor.set(actor)


def actor_reset(token) -> None:
    _actor.reset(token)


def audit_record(
    *, tenant: Tenant | None, action: str, target=None, details: dict | None = None
) -> AuditEvent:
    actor = _actor.get()
    return AuditEvent.objects.create(
        tenant=tenant,
        tenant_name=tenant.name if tenant else "",
        actor_id=actor.user_id if actor else None,
        actor_email=actor.email if actor else SYSTEM,
        ip_address=actor.ip_address if actor else None,
        action=action,
        target_type=type(target).__name__.lower() if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        details=details or {},
    )


class AuditActorMiddleware:
    """The signed-in session user (dashboard, Django admin) is the actor of the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        signed_in = user if user is not None and user.is_authenticated else None
        token = actor_set(user=signed_in, ip_address=client_address(request))
        try:
            return self.get_response(request)
        finally:
            actor_reset(token)


def hidden_operator_ids(*, tenant_id, viewer_role: str | None) -> frozenset[int]:
    """The platform operators (Django staff with no membership in `tenant`) whose email and
    address the viewer must not see: every operator for the tenant's own people, none for an
    operator. A staff user who is also a member is shown like any member."""
    if viewer_role == PLATFORM_ADMIN:
        return frozenset()
    staff = get_user_model().objects.filter(is_staff=True)
    if tenant_id is None:
        return frozenset(staff.values_list("pk", flat=True))
    # One short query (operators are few), rather than one per row shown.
    return frozenset(staff.exclude(memberships__tenant_id=tenant_id).values_list("pk", flat=True))


def hidden_operators_for(request) -> frozenset[int]:
    """`hidden_operator_ids` for the request's tenant and role, computed once per request."""
    cached = getattr(request, "_hidden_operator_ids", None)
    if cached is None:
        cached = hidden_operator_ids(
            tenant_id=request.tenant.pk if request.tenant else None, viewer_role=request.role
        )
        request._hidden_operator_ids = cached
    return cached


def hidden_operators_in(context: dict, *, tenant_id) -> frozenset[int]:
    """For a serializer's context: the request's answer, or, with no request (a WebSocket frame,
    a stream), the operators hidden from the tenant's people. Cached in the shared context."""
    request = context.get("request")
    if request is not None and hasattr(request, "role"):
        return hidden_operators_for(request)
    cache = context.setdefault("_hidden_operator_ids", {})
    if tenant_id not in cache:
        cache[tenant_id] = hidden_operator_ids(tenant_id=tenant_id, viewer_role=None)
    return cache[tenant_id]


def person_shown(user, *, hidden: frozenset[int], name_first: bool = False) -> str | None:
    """How a person appears to a tenant's people: "platform operator" for a hidden operator,
    else the email (or the name, then the email, with `name_first`)."""
    if user is None:
        return None
    # Only staff can be operators: for anyone else a lazy `hidden` is never looked up.
    if user.is_staff and user.pk in hidden:
        return str(PLATFORM_OPERATOR)
    return (user.name or user.email) if name_first else user.email


def person_for_tenant(user, *, tenant_id, name_first: bool = False) -> str | None:
    """`person_shown` for what every person of a tenant may receive (WebSocket events, error
    messages): only a staff user costs a query, to learn whether they are a member."""
    if user is None:
        return None
    hidden: frozenset[int] = frozenset()
    if user.is_staff:
        hidden = hidden_operator_ids(tenant_id=tenant_id, viewer_role=None)
    return person_shown(user, hidden=hidden, name_first=name_first)
