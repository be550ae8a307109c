"""Who acts in which tenant, for every interface: the API's token, the dashboard's session and
URLs, the WebSocket's token.

A credential names a tenant; the caller's membership there (`selectors.membership_for`, the one
read) gives a `TenantAccess`: the tenant, the role, the membership (`credential_access`). A URL
that names a tenant narrows it with one rule (`resolve_url_tenant`). A request receives its
access in one place (`TenantAccess.set_on`); a socket keeps it in its scope.
"""

from dataclasses import dataclass

from tenants import logcontext
from tenants.errors import NotFound, TenantSuspended
from tenants.models import Membership, Tenant
from tenants.roles import PLATFORM_ADMIN
from tenants.selectors import membership_for


@dataclass(frozen=True)
class TenantAccess:
    """The tenant a caller acts in, their role there and the membership it rests on (each None
    when there is none). A platform admin's role is `platform_admin` whatever the membership."""

    tenant: Tenant | None = None
    role: str | None = None
    membership: Membership | None = None

    @classmethod
    def through(cls, user, membership: Membership | None) -> "TenantAccess":
        """The access `membership` (None: no tenant) gives `user`."""
        role = PLATFORM_ADMIN if user.is_platform_admin else (membership.role if membership else None)
        return cls(tenant=membership.tenant if membership else None, role=role, membership=membership)

    @classmethod
    def of(cls, request) -> "TenantAccess":
        """The access set on `request` (none before the middleware or authentication ran)."""
        return cls(
            tenant=getattr(request, "tenant", None),
            role=getattr(request, "role", None),
            membership=getattr(request, "membership", None),
        )

    def set_on(self, request) -> None:
        """The one place a request's `tenant`, `role` and `membership` are set."""
        request.tenant = self.tenant
        request.role = self.role
        request.membership = self.membership
        # Every line the request logs from here on names the tenant (tenants/logcontext.py).
        logcontext.bind(tenant_id=self.tenant.pk if self.tenant is not None else None)


def credential_access(*, user, tenant_id) -> TenantAccess | None:
    """The access a credential issued for `tenant_id` (an access or socket token) gives `user`
    now: the role is read from the database, so a demotion or removal counts before the token
    expires. None when the user is no longer a member of that tenant. A credential naming no
    tenant (a platform admin's) gives only the user's own role."""
    membership = membership_for(user=user, tenant_id=tenant_id)
    if tenant_id and membership is None:
        return None
    return TenantAccess.through(user, membership)


def resolve_url_tenant(*, user, access: TenantAccess, tenant_id) -> TenantAccess:
    """The access `user`, holding `access`, has in the tenant a URL names.

    Platform admins reach every tenant. Anyone else reaches only the tenant their credential
    names: any other id, existing or not, is 404 so that existence is not revealed.
    A suspended tenant is 403 for its own users.
    """
    if user.is_platform_admin:
        tenant = Tenant.objects.select_related("plan").filter(pk=tenant_id).first()
        if tenant is None:
            raise NotFound("No such tenant.")
        own = access.membership if access.membership and access.membership.tenant_id == tenant.pk else None
        return TenantAccess(tenant=tenant, role=PLATFORM_ADMIN, membership=own)
    tenant = access.tenant
    if tenant is None or str(tenant.pk) != str(tenant_id):
        raise NotFound("No such tenant.")
    if not tenant.is_active:
        raise TenantSuspended()
    return access
