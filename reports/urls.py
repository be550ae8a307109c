"""Report endpoints under /v1/tenants/<tenant_id>/."""

from django.urls import path

from reports import api

prefix = "tenants/<uuid:tenant_id>"

urlpatterns = [
    path(f"{prefix}/usage", api.UsageView.as_view(), name="usage"),
]
