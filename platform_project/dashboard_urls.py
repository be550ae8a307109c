"""The tenant dashboard, mounted at /dashboard/. Every page of a tenant lives under
`t/<tenant_id>/` and derives from `tenants.dashboard.TenantDashboardMixin`."""

from django.urls import include, path
from django.views.i18n import set_language

from accounts import dashboard_urls as accounts_pages
from conversations import dashboard_urls as conversations_pages
from knowledge import dashboard_urls as knowledge_pages
from line_channel import dashboard_urls as line_pages
from llm import dashboard_urls as llm_pages
from reports import dashboard_urls as reports_pages
from sources import dashboard_urls as sources_pages
from widgets import dashboard_urls as widgets_pages

app_name = "dashboard"

tenant_pages = [
    *reports_pages.tenant,
    *conversations_pages.tenant,
    *knowledge_pages.tenant,
    *sources_pages.tenant,
    *llm_pages.tenant,
    *widgets_pages.tenant,
    *line_pages.tenant,
    *accounts_pages.tenant,
]

urlpatterns = [
    *accounts_pages.public,
    path("language/", set_language, name="set-language"),
    path("t/<uuid:tenant_id>/", include(tenant_pages)),
]
