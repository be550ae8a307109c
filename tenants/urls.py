from django.urls import path

from tenants import api

members = api.MemberViewSet.as_view({"get": "list"})
member = api.MemberViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})

urlpatterns = [
    path("tenants", api.TenantListCreateView.as_view(), name="tenant-list"),
    path("tenants/<uuid:tenant_id>", api.TenantDetailView.as_view(), name="tenant-detail"),
    path("tenants/<uuid:tenant_id>/members", members, name="member-list"),
    path("tenants/<uuid:tenant_id>/members/<int:pk>", member, name="member-detail"),
    path(
        "tenants/<uuid:tenant_id>/audit", api.TenantAuditViewSet.as_view({"get": "list"}), name="tenant-audit"
    ),
    path("audit", api.PlatformAuditView.as_view(), name="platform-audit"),
]
