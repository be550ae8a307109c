from django.contrib import admin, messages

from knowledge import services
from knowledge.models import Chunk, Document


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["ordinal", "page", "heading", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "tenant", "kind", "status", "stage", "chunk_count", "size_bytes", "created_at"]
    list_filter = ["status", "kind", "tenant"]
    search_fields = ["title", "filename", "sha256", "tenant__name"]
    list_select_related = ["tenant"]
    readonly_fields = [
        "tenant",
        "filename",
        "kind",
        "content_type",
        "size_bytes",
        "sha256",
        "file_path",
        "status",
        "stage",
        "progress",
        "error",
        "chunk_count",
        "embedding_model",
        "vector_collection",
        "uploaded_by",
        "created_at",
        "updated_at",
        "ingested_at",
    ]
    inlines = [ChunkInline]
    actions = ["reindex"]

    def has_add_permission(self, request):
        return False  # documents arrive through the upload endpoint, which validates them

    @admin.action(description="Reindex the selected documents")
    def reindex(self, request, queryset):
        for document in queryset:
            services.document_reindex(document=document)
        self.message_user(request, f"Queued {queryset.count()} document(s) for reindexing.", messages.SUCCESS)

    def delete_model(self, request, obj):
        services.document_delete(document=obj)

    def delete_queryset(self, request, queryset):
        for document in queryset:
            services.document_delete(document=document)
