from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from platform_project import health

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("tenants.urls")),
    path("", include("knowledge.urls")),
    path("", include("llm.urls")),
    path("", include("conversations.urls")),
    path("", include("reports.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/v1/docs/", permanent=False)),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("dashboard/", include("platform_project.dashboard_urls")),
]

handler400 = "platform_project.errors.bad_request"
handler403 = "platform_project.errors.permission_denied"
handler404 = "platform_project.errors.not_found"
handler500 = "platform_project.errors.server_error"
