"""OpenAPI description of the platform's JWT authentication (imported by the app config)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class TenantJWTScheme(SimpleJWTScheme):
    target_class = "tenants.authentication.TenantJWTAuthentication"
