"""Dashboard pages of the knowledge base, under /dashboard/t/<tenant_id>/."""

from django.urls import path

from knowledge import views

tenant = [
    path("documents/", views.DocumentListView.as_view(), name="documents"),
    path("documents/status.json", views.DocumentStatusView.as_view(), name="documents-status"),
    path("documents/<int:document_id>/delete/", views.DocumentDeleteView.as_view(), name="document-delete"),
    path(
        "documents/<int:document_id>/reindex/", views.DocumentReindexView.as_view(), name="document-reindex"
    ),
    path("knowledge/search/", views.SearchTesterView.as_view(), name="knowledge-search"),
    path("settings/retrieval/", views.RetrievalSettingsView.as_view(), name="settings-retrieval"),
]
