"""Dashboard pages of reports, under /dashboard/t/<tenant_id>/."""

from django.urls import path

from reports import views

tenant = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("usage/", views.UsageView.as_view(), name="usage"),
    path("analytics/", views.AnalyticsView.as_view(), name="analytics"),
    path("analytics/unanswered/", views.UnansweredView.as_view(), name="unanswered"),
    path("exports/", views.ExportsView.as_view(), name="exports"),
    path("exports/<uuid:export_id>/download/", views.ExportFileView.as_view(), name="export-download"),
]
