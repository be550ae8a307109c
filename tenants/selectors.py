"""Every read of tenants and memberships."""

from django.db.models import QuerySet

from tenants.models import Membership, Tenant


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
