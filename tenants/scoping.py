"""The isolation core for the REST API: every view under /v1/tenants/{tenant_id}/ derives from
`TenantScopedAPIView` or `TenantScopedViewSet`, which resolve the URL's tenant against the
caller's token once, before any permission or object lookup, and scope every query by it.
"""

from rest_framework import permissions, viewsets
from rest_framework.exceptions import NotAuthenticated
from rest_framework.views import APIView

from tenants import rls
from tenants.access import TenantAccess, resolve_url_tenant
from tenants.roles import PLATFORM_ADMIN, Capability, role_can


class HasCapability(permissions.BasePermission):
    """Checks the view's `capabilities[action]` (or `capability`) against the role matrix."""

    message = "Your role does not allow this action."

    def has_permission(self, request, view) -> bool:
        capability = view.capability_for(request)
        if capability is None:
            return True
        return role_can(getattr(request, "role", None), capability)


class TenantScopedMixin:
    """Resolves `request.tenant` and `request.role` from the URL before permissions run."""

    permission_classes = [permissions.IsAuthenticated, HasCapability]
    # Either one capability for every action, or one per action (DRF action or HTTP method).
    capability: Capability | None = None
    capabilities: dict[str, Capability] = {}

    def capability_for(self, request) -> Capability | None:
        action = getattr(self, "action", None) or request.method.lower()
        return self.capabilities.get(action, self.capability)

    def dispatch(self, request, *args, **kwargs):
        # The row-level-security scope entered below ends with the view.
        with rls.unscoped():
            return super().dispatch(request, *args, **kwargs)

    def check_permissions(self, request):
        if not request.user or not request.user.is_authenticated:
            raise NotAuthenticated()
        access = resolve_url_tenant(
            user=request.user, access=TenantAccess.of(request), tenant_id=self.kwargs["tenant_id"]
        )
        access.set_on(request)
        # From here on the database itself shows nothing of another tenant (tenants/rls.py).
        rls.enter(request.tenant.pk, request.user.pk)
        super().check_permissions(request)


class TenantScopedAPIView(TenantScopedMixin, APIView):
    pass


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    """A viewset over one tenant-owned model. `get_queryset()` is always scoped by the URL's
    tenant; subclasses narrow it through `scope_queryset()`, never widen it."""

    model = None
    lookup_value_converter = "int"

    def scope_queryset(self, queryset):
        return queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.scope_queryset(self.model.objects.for_tenant(self.request.tenant))

    def perform_create(self, serializer):
        serializer.save(tenant=self.request.tenant)


def is_platform_admin(request) -> bool:
    return getattr(request, "role", None) == PLATFORM_ADMIN


class IsPlatformAdmin(permissions.BasePermission):
    message = "Only platform admins may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_platform_admin)


def validated_input(serializer_class, data) -> dict:
    """Validate a request body with an input serializer; a 400 in the error format otherwise."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
