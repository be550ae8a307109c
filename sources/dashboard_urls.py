"""Dashboard pages of web sources, under /dashboard/t/<tenant_id>/."""

from django.urls import path

from sources import views

source = "web/<uuid:source_id>/"

tenant = [
    path("web/", views.WebSourceListView.as_view(), name="web-sources"),
    path("web/new/", views.WebSourceCreateView.as_view(), name="web-source-create"),
    path(source, views.WebSourceDetailView.as_view(), name="web-source"),
    path(f"{source}sync/", views.WebSourceSyncView.as_view(), name="web-source-sync"),
    path(f"{source}delete/", views.WebSourceDeleteView.as_view(), name="web-source-delete"),
    path(f"{source}runs/<int:run_id>/", views.CrawlRunView.as_view(), name="web-source-run"),
]
