"""JWT authentication that also resolves the tenant and role the token was issued for.

The access token carries `tenant_id` and `role`; the role that counts is the membership's role
in the database, read here, so that a demotion or removal takes effect before the token expires.
"""

from rest_framework.authentication import BaseAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed

from tenants import logcontext
from tenants.audit import actor_set, client_address


class TenantJWTAuthentication(JWTAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        # The API caller is the actor of what this request changes (tenants.audit).
        actor_set(user=user, ip_address=client_address(request))
        logcontext.bind(user_id=user.pk)
        # Imported here: DRF imports this class while it defines `APIView`, and the access
        # module's imports (the errors, through the selectors) import `rest_framework.views`.
        from tenants.access import credential_access

        request.token_tenant_id = token.get("tenant_id")
        access = credential_access(user=user, tenant_id=request.token_tenant_id)
        if access is None:
            raise AuthenticationFailed(
                "This token's membership no longer exists; sign in again.", code="membership_gone"
            )
        access.set_on(request)
        return user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class PublicEndpointAuthentication(BaseAuthentication):
    """For sign-in style endpoints that ignore any Authorization header. It authenticates no one,
    but names the Bearer scheme so that a refused credential is a 401, not a 403."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
