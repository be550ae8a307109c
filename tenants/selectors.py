"""Every read of tenants and memberships."""

from django.db.models import QuerySet

from tenants.models import AuditEvent, Membership, Tenant


def tenant_list(*, status: str | None = None, search: str | None = None) -> QuerySet[Tenant]:
    """All tenants, for platform admins only: callers check the role."""
    tenants = Tenant.objects.select_related("plan")
    if status:
        tenants = tenants.filter(status=status)
    if search:
        tenants = tenants.filter(name__icontains=search)
    return tenants


def member_list(*, tenant: Tenant, role: str | None = None) -> QuerySet[Membership]:
    members = Membership.objects.for_tenant(tenant).select_related("user")
    if role:
        members = members.filter(role=role)
    return members


def memberships_of(*, user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("tenant")


def audit_filter(
    events: QuerySet[AuditEvent],
    *,
    action: str | None = None,
    actor: str | None = None,
    since=None,
    until=None,
    tenant_id=None,
    hidden_actor_ids: frozenset[int] = frozenset(),
) -> QuerySet[AuditEvent]:
    """Narrow an already scoped trail (a tenant's, or the platform's for operators). The actor
    filter never matches the email of an actor the viewer may not see (`hidden_actor_ids`)."""
    if action:
        events = (
            events.filter(action__startswith=action) if action.endswith(".") else events.filter(action=action)
        )
    if actor:
        events = events.filter(actor_email__icontains=actor).exclude(actor_id__in=hidden_actor_ids)
    if since:
        events = events.filter(created_at__date__gte=since)
    if until:
        events = events.filter(created_at__date__lte=until)
    if tenant_id:
        events = events.filter(tenant_id=tenant_id)
    return events
