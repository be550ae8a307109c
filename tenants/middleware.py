"""Sets `request.tenant`, `request.role` and `request.membership` for every request.

API requests resolve them in `TenantJWTAuthentication` (DRF authenticates inside the view, after
middleware). Dashboard requests carry a signed-in session: the tenant chosen at sign-in is kept
in the session and checked against the user's memberships on every request.
"""

from tenants.access import TenantAccess
from tenants.selectors import membership_for, memberships_of

SESSION_TENANT_KEY = "tenant_id"


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        access = TenantAccess()
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            # The session's tenant while the user is still a member there, else their first.
            membership = (
                membership_for(user=user, tenant_id=request.session.get(SESSION_TENANT_KEY))
                or memberships_of(user=user).first()
            )
            access = TenantAccess.through(user, membership)
        access.set_on(request)
        return self.get_response(request)
