"""The audit trail of administrative actions.

Services call `audit_record()` inside their transaction; the acting person comes from the
request's context: `AuditActorMiddleware` sets it for session users (dashboard, Django admin),
`TenantJWTAuthentication` for API callers. Work with no request (Celery, commands) is recorded
as "system". Details carry names and changed fields, never secrets.
"""

from contextvars import ContextVar
from dataclasses import dataclass

from tenants.models import AuditEvent, Tenant
from tenants.throttling import client_address  # the one helper, behind trusted proxies too

SYSTEM = "system"


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
