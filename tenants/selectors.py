"""Every read of tenants and memberships."""

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from tenants.errors import NotFound
from tenants.models import AuditEvent, Membership, Tenant
from tenants.roles import Role

# The roles that open the dashboard (end users chat, they do not administer).
STAFF_ROLES = (Role.TENANT_ADMIN, Role.AGENT)


def tenant_list(*, status: str | None = None, search: str | None = None) -> QuerySet[Tenant]:
    """All tenants, for platform admins only: callers check the role."""
    tenants = Tenant.objects.select_related("plan")
    if status:
        tenants = tenants.filter(status=status)
    if search:
        tenants = tenants.filter(name__icontains=search)
    return tenants


def member_list(*, tenant: Tenant, role: str | None = None) -> QuerySet[Membership]:
    return member_filter(Membership.objects.for_tenant(tenant), role=role)


def member_filter(members: QuerySet[Membership], *, role: str | None = None) -> QuerySet[Membership]:
    """Narrow an already scoped set of a tenant's members (with their users) to a role."""
    members = members.select_related("user")
    if role:
        members = members.filter(role=role)
    return members


def member_get(*, tenant: Tenant, member_id) -> Membership:
    """A member of this tenant, or 404: another tenant's member is as absent as a missing one."""
    membership = member_list(tenant=tenant).filter(pk=member_id).first()
    if membership is None:
        raise NotFound(_("No such member."))
    return membership


def membership_for(*, user, tenant_id) -> Membership | None:
    """`user`'s membership in the tenant `tenant_id`, with the tenant and its plan; None when
    there is no such membership or no tenant id. Every interface resolves its caller's tenant
    through this one read (`tenants.access.credential_access`, the session middleware, the
    dashboard)."""
    if not tenant_id:
        return None
    return (
        Membership.objects.select_related("tenant", "tenant__plan")
        .filter(user=user, tenant_id=tenant_id)
        .first()
    )


def memberships_of(*, user) -> QuerySet[Membership]:
    """Every membership of `user`, oldest first, with the tenant and its plan."""
    return Membership.objects.filter(user=user).select_related("tenant", "tenant__plan")


def staff_memberships(*, user) -> list[Membership]:
    """The memberships that open the dashboard, by tenant name."""
    return list(
        Membership.objects.filter(user=user, role__in=STAFF_ROLES)
        .select_related("tenant")
        .order_by("tenant__name", "tenant_id")
    )


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
