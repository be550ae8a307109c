"""Dashboard pages of reports, under /dashboard/t/<tenant_id>/."""

from django.urls import path

from reports import views

tenant = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("usage/", views.UsageView.as_view(), name="usage"),
    path("analytics/", views.AnalyticsView.as_view(), name="analytics"),
]
