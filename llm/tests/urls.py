"""A urlconf for the llm tests: the llm endpoints under /v1 and the admin, independent of the
project's urlconf."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("v1/", include("llm.urls")),
    path("admin/", admin.site.urls),
]
