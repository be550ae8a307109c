"""Sets `request.tenant` and `request.role` for every request.

API requests resolve them in `TenantJWTAuthentication` (DRF authenticates inside the view, after
middleware). Dashboard requests carry a signed-in session: the tenant chosen at sign-in is kept
in the session and checked against the user's memberships on every request.
"""

from tenants.models import Membership
from tenants.roles import PLATFORM_ADMIN

SESSION_TENANT_KEY = "tenant_id"


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.role = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            tenant_id = request.session.get(SESSION_TENANT_KEY)
            memberships = Membership.objects.select_related("tenant", "tenant__plan").filter(user=user)
            membership = memberships.filter(tenant_id=tenant_id).first() if tenant_id else None
            if membership is None:
                membership = memberships.first()
            if membership is not None:
                request.membership = membership
                request.tenant = membership.tenant
                request.role = membership.role
            if user.is_platform_admin:
                request.role = PLATFORM_ADMIN
        return self.get_response(request)
