from django.urls import path

from sources import api

sources = api.WebSourceViewSet
prefix = "tenants/<uuid:tenant_id>/web-sources"

urlpatterns = [
    path(prefix, sources.as_view({"get": "list", "post": "create"}), name="web-source-list"),
    path(
        f"{prefix}/<uuid:pk>",
        sources.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="web-source-detail",
    ),
    path(f"{prefix}/<uuid:pk>/sync", sources.as_view({"post": "sync"}), name="web-source-sync"),
    path(f"{prefix}/<uuid:pk>/runs", sources.as_view({"get": "runs"}), name="web-source-runs"),
    path(
        f"{prefix}/<uuid:pk>/runs/<int:run_id>/pages",
        sources.as_view({"get": "run_pages"}),
        name="web-source-run-pages",
    ),
]
