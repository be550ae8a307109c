from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from platform_project import errors, health, observability
from widgets import views as widget_views

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("tenants.urls")),
    path("", include("knowledge.urls")),
    path("", include("llm.urls")),
    path("", include("conversations.urls")),
    path("", include("reports.urls")),
    path("", include("line_channel.urls")),
    path("", include("widgets.urls")),
    path("", include("sources.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from a URL (no inline script); its page
    # keeps one inline <style> and the UI sets style attributes, so style-src is loosened for
    # this page only (styles cannot run code; scripts stay 'self').
    path(
        "docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="docs",
    ),
    # Last: any other /v1/ path is a 404 in the error format, DEBUG on or off.
    re_path(r"^(?P<unmatched>.*)$", errors.api_path_not_found),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/v1/docs/", permanent=False)),
    path("healthz", health.healthz, name="healthz"),
    path("widget.js", widget_views.widget_script, name="widget-script"),
    path("widget/demo/", widget_views.widget_demo, name="widget-demo"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", observability.metrics_view, name="metrics"),
    path("v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("dashboard/", include("platform_project.dashboard_urls")),
]

handler400 = "platform_project.errors.bad_request"
handler403 = "platform_project.errors.permission_denied"
handler404 = "platform_project.errors.not_found"
handler500 = "platform_project.errors.server_error"
