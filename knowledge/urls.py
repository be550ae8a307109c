from django.urls import path
from rest_framework.parsers import MultiPartParser

from knowledge import api, faq_api
from tenants.throttling import TenantUploadThrottle

documents = api.DocumentViewSet
prefix = "tenants/<uuid:tenant_id>"

urlpatterns = [
    path(f"{prefix}/documents", documents.as_view({"get": "list"}), name="document-list"),
    path(
        f"{prefix}/documents/upload",
        documents.as_view(
            {"post": "upload"}, parser_classes=[MultiPartParser], throttle_classes=[TenantUploadThrottle]
        ),
        name="document-upload",
    ),
    path(
        f"{prefix}/documents/bulk",
        documents.as_view({"post": "bulk"}, parser_classes=[MultiPartParser]),
        name="document-bulk",
    ),
    path(
        f"{prefix}/documents/reindex",
        documents.as_view({"post": "reindex_all"}, throttle_classes=[TenantUploadThrottle]),
        name="document-reindex-all",
    ),
    path(f"{prefix}/documents/progress", documents.as_view({"get": "progress"}), name="document-progress"),
    path(
        f"{prefix}/documents/<int:pk>",
        documents.as_view({"get": "retrieve", "delete": "destroy"}),
        name="document-detail",
    ),
    path(
        f"{prefix}/documents/<int:pk>/reindex",
        documents.as_view({"post": "reindex"}, throttle_classes=[TenantUploadThrottle]),
        name="document-reindex",
    ),
    path(f"{prefix}/documents/<int:pk>/chunks", documents.as_view({"get": "chunks"}), name="document-chunks"),
    path(f"{prefix}/knowledge/search", api.KnowledgeSearchView.as_view(), name="knowledge-search"),
]

faqs = faq_api.FaqViewSet
urlpatterns += [
    path(f"{prefix}/faqs", faqs.as_view({"get": "list", "post": "create"}), name="faq-list"),
    path(
        f"{prefix}/faqs/import",
        faqs.as_view(
            {"post": "import_csv"}, parser_classes=[MultiPartParser], throttle_classes=[TenantUploadThrottle]
        ),
        name="faq-import",
    ),
    path(f"{prefix}/faqs/export", faqs.as_view({"get": "export"}), name="faq-export"),
    path(
        f"{prefix}/faqs/<int:pk>",
        faqs.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="faq-detail",
    ),
]
