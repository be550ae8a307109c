"""Dashboard pages of the knowledge base, under /dashboard/t/<tenant_id>/."""

from django.urls import path

from knowledge import faq_views, views

tenant = [
    path("documents/", views.DocumentListView.as_view(), name="documents"),
    path("documents/status.json", views.DocumentStatusView.as_view(), name="documents-status"),
    path("documents/<int:document_id>/delete/", views.DocumentDeleteView.as_view(), name="document-delete"),
    path(
        "documents/<int:document_id>/reindex/", views.DocumentReindexView.as_view(), name="document-reindex"
    ),
    path("knowledge/search/", views.SearchTesterView.as_view(), name="knowledge-search"),
    path("faqs/", faq_views.FaqListView.as_view(), name="faqs"),
    path("faqs/new/", faq_views.FaqCreateView.as_view(), name="faq-create"),
    path("faqs/import/", faq_views.FaqImportView.as_view(), name="faq-import"),
    path("faqs/export.csv", faq_views.FaqExportView.as_view(), name="faq-export"),
    path("faqs/<int:faq_id>/", faq_views.FaqEditView.as_view(), name="faq-edit"),
    path("faqs/<int:faq_id>/delete/", faq_views.FaqDeleteView.as_view(), name="faq-delete"),
    path("settings/retrieval/", views.RetrievalSettingsView.as_view(), name="settings-retrieval"),
]
