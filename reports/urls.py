"""Report endpoints under /v1/tenants/<tenant_id>/."""

from django.urls import path

from reports import api

prefix = "tenants/<uuid:tenant_id>"

urlpatterns = [
    path(f"{prefix}/usage", api.UsageView.as_view(), name="usage"),
    path(f"{prefix}/analytics", api.AnalyticsView.as_view(), name="analytics"),
    path(
        f"{prefix}/exports", api.ExportViewSet.as_view({"get": "list", "post": "create"}), name="export-list"
    ),
    path(f"{prefix}/exports/<uuid:export_id>", api.ExportDetailView.as_view(), name="export-detail"),
    path(
        f"{prefix}/exports/<uuid:export_id>/download",
        api.ExportDownloadView.as_view(),
        name="export-download",
    ),
    path(f"{prefix}/data-erasure", api.ErasureView.as_view(), name="data-erasure"),
]
