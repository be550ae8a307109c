"""Dashboard pages of the website widget, under /dashboard/t/<tenant_id>/."""

from django.urls import path

from widgets import views

tenant = [
    path("widgets/", views.WidgetListView.as_view(), name="widgets"),
    path("widgets/new/", views.WidgetCreateView.as_view(), name="widget-create"),
    path("widgets/preview/", views.WidgetPreviewView.as_view(), name="widget-preview"),
    path("widgets/<int:widget_id>/", views.WidgetDetailView.as_view(), name="widget"),
    path("widgets/<int:widget_id>/edit/", views.WidgetUpdateView.as_view(), name="widget-update"),
    path(
        "widgets/<int:widget_id>/rotate-secret/",
        views.WidgetRotateSecretView.as_view(),
        name="widget-rotate-secret",
    ),
    path("widgets/<int:widget_id>/delete/", views.WidgetDeleteView.as_view(), name="widget-delete"),
]
