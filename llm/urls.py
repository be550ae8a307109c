from django.urls import path

from llm import api

urlpatterns = [
    path(
        "tenants/<uuid:tenant_id>/assistant", api.AssistantSettingsView.as_view(), name="assistant-settings"
    ),
]
