"""Dashboard pages of the assistant, under /dashboard/t/<tenant_id>/."""

from django.urls import path

from llm import views

tenant = [
    path("settings/", views.AssistantSettingsView.as_view(), name="settings"),
]
