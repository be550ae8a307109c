"""Document and knowledge-search endpoints. Thin: validate, call a service or selector, shape."""

from django.http import QueryDict
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from knowledge import bulk_upload, retrieval, selectors, services
from knowledge.models import Chunk, Document
from tenants.audit import hidden_operators_in, person_shown
from tenants.errors import APIError
from tenants.roles import Capability
from tenants.scoping import TenantScopedAPIView, TenantScopedViewSet, validated_input
from tenants.throttling import TenantUploadThrottle

TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)
# Room for the multipart envelope around the file when comparing Content-Length to the limit.
_MULTIPART_OVERHEAD = 64 * 1024


class DocumentOutput(serializers.ModelSerializer):
    # An email, or "platform operator" for an operator the caller may not see by name.
    uploaded_by = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField(
        help_text="While pending: its place in the tenant's line for ingestion (1 is next); else null."
    )

    class Meta:
        model = Document
        fields = [
            "id",
            "title",
            "filename",
            "kind",
            "content_type",
            "size_bytes",
            "sha256",
            "status",
            "stage",
            "progress",
            "queue_position",
            "error",
            "chunk_count",
            "ocr_pages",
            "ocr_confidence",
            "embedding_model",
            "uploaded_by",
            "created_at",
            "updated_at",
            "ingested_at",
            "source_url",
            "fetched_at",
        ]

    def get_uploaded_by(self, document) -> str | None:
        if not document.uploaded_by_id:
            return None
        hidden = hidden_operators_in(self.context, tenant_id=document.tenant_id)
        return person_shown(document.uploaded_by, hidden=hidden)

    def get_queue_position(self, document) -> int | None:
        return self.context.get("queue_positions", {}).get(document.pk)


def document_output(documents, *, tenant, context=None, many=False):
    """DocumentOutput with the pending documents' places in the line."""
    listed = list(documents) if many else [documents]
    positions = selectors.queue_positions(tenant=tenant, documents=listed)
    return DocumentOutput(documents, many=many, context={**(context or {}), "queue_positions": positions})


class UploadInput(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="PDF, DOCX, TXT, Markdown, HTML, or a PNG or JPEG image of a page (read by OCR).",
    )
    title = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class BulkUploadInput(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        help_text="Repeated: PDF, DOCX, TXT, Markdown or HTML files, or ZIP archives of them "
        "(the field `file` is accepted too).",
    )


class BulkOutcomeOutput(serializers.Serializer):
    filename = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["created", "duplicate", "refused"])
    document = DocumentOutput(allow_null=True)
    error = serializers.DictField(allow_null=True, help_text="`{code, message, details}` unless created.")


BULK_OUTPUT = inline_serializer(
    "BulkUpload",
    {
        "results": BulkOutcomeOutput(many=True),
        "accepted": DocumentOutput(many=True),
        "refused": inline_serializer(
            "BulkRefused", {"filename": serializers.CharField(), "error": serializers.DictField()}, many=True
        ),
        "counts": serializers.DictField(child=serializers.IntegerField()),
    },
)


class ProgressOutput(serializers.Serializer):
    total = serializers.IntegerField(help_text="Documents in the current wave: done and remaining.")
    done = serializers.IntegerField(help_text="Of them, finished: ready or failed.")
    failed = serializers.IntegerField(help_text="Of those done, failed.")
    remaining = serializers.IntegerField(help_text="Still pending or processing.")
    started_at = serializers.DateTimeField(
        allow_null=True, help_text="When the wave's oldest document joined the line; null with no wave."
    )
    rate_per_minute = serializers.FloatField(
        allow_null=True, help_text="Documents finished per minute lately; null while too few finished."
    )
    seconds_left = serializers.IntegerField(
        allow_null=True, help_text="Estimated from the rate; 0 when none remain, null without a rate."
    )


def progress_output(progress: selectors.IngestionProgress) -> dict:
    return ProgressOutput(
        {
            "total": progress.total,
            "done": progress.done,
            "failed": progress.failed,
            "remaining": progress.remaining,
            "started_at": progress.started_at,
            "rate_per_minute": None
            if progress.rate_per_minute is None
            else round(progress.rate_per_minute, 2),
            "seconds_left": progress.seconds_left,
        }
    ).data


class ChunkOutput(serializers.ModelSerializer):
    class Meta:
        model = Chunk
        fields = ["id", "ordinal", "text", "page", "heading"]


class SearchInput(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    top_k = serializers.IntegerField(min_value=1, max_value=50, required=False)
    mode = serializers.ChoiceField(choices=retrieval.MODES, required=False)


class SearchResultOutput(serializers.Serializer):
    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    document_title = serializers.CharField()
    text = serializers.CharField()
    score = serializers.FloatField()
    page = serializers.IntegerField(allow_null=True)
    heading = serializers.CharField()
    ordinal = serializers.IntegerField()
    source_url = serializers.CharField(help_text="The web page of a crawled document; else empty.")


@extend_schema(tags=["documents"], parameters=[TENANT_PARAMETER])
class DocumentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet
):
    model = Document
    serializer_class = DocumentOutput
    capabilities = {
        "list": Capability.READ_KNOWLEDGE,
        "retrieve": Capability.READ_KNOWLEDGE,
        "chunks": Capability.READ_KNOWLEDGE,
        "progress": Capability.READ_KNOWLEDGE,
        "upload": Capability.MANAGE_DOCUMENTS,
        "bulk": Capability.MANAGE_DOCUMENTS,
        "destroy": Capability.MANAGE_DOCUMENTS,
        "reindex": Capability.MANAGE_DOCUMENTS,
        "reindex_all": Capability.MANAGE_DOCUMENTS,
    }

    def get_serializer(self, *args, **kwargs):
        if self.serializer_class is DocumentOutput and args:
            listed = list(args[0]) if kwargs.get("many") else [args[0]]
            kwargs["context"] = {
                **self.get_serializer_context(),
                "queue_positions": selectors.queue_positions(tenant=self.request.tenant, documents=listed),
            }
            return DocumentOutput(*args, **kwargs)
        return super().get_serializer(*args, **kwargs)

    def scope_queryset(self, queryset):
        params = self.request.query_params
        return selectors.document_filter(
            queryset, status=params.get("status") or None, search=params.get("search") or None
        )

    @extend_schema(
        summary="List documents",
        parameters=[
            OpenApiParameter("status", str, enum=[value for value, _ in Document.Status.choices]),
            OpenApiParameter("search", str, description="Part of the title."),
        ],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Upload a document (ingested in the background)",
        request={"multipart/form-data": UploadInput},
        responses={202: DocumentOutput},
    )
    @action(
        detail=False,
        methods=["post"],
        parser_classes=[MultiPartParser],
        throttle_classes=[TenantUploadThrottle],
    )
    def upload(self, request, tenant_id):
        # Refuse an oversized body from its declared length, before reading it.
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > _MULTIPART_OVERHEAD:
            services.check_upload_size(tenant=request.tenant, size=int(declared) - _MULTIPART_OVERHEAD)
        data = validated_input(UploadInput, request.data)
        if isinstance(request.data.get("file"), str) or len(request.FILES.getlist("file")) != 1:
            raise APIError("Send exactly one file in the `file` field.", code="validation_error")
        document = services.document_upload(
            tenant=request.tenant, uploaded_by=request.user, upload=data["file"], title=data["title"]
        )
        return Response(
            document_output(document, tenant=request.tenant).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(
        summary="Upload many documents at once: repeated `files`, or ZIP archives opened entry by entry",
        description="Each file is checked as a single upload (type, size, duplicate, quota), and an "
        "archive's entries against ZIP bombs (entry count, uncompressed size, compression ratio, "
        "nested archives, unsafe names). `results` holds every file's outcome in order; `accepted` "
        "the documents created, `refused` the others with their error. 202 when any document was "
        "created, else 200. The files and bytes count against the plan's hourly upload budget.",
        request={"multipart/form-data": BulkUploadInput},
        responses={202: BULK_OUTPUT, 200: BULK_OUTPUT},
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser])
    def bulk(self, request, tenant_id):
        # An empty body parses to a plain dict (no parser ran): no parts, so the "no file" answer.
        form = request.data if hasattr(request.data, "getlist") else QueryDict()
        if any(isinstance(part, str) for name in ("files", "file") for part in form.getlist(name)):
            raise APIError("Send files in the `files` field, not text.", code="validation_error")
        uploads = [part for name in ("files", "file") for part in request.FILES.getlist(name)]
        outcomes = bulk_upload.bulk_upload(tenant=request.tenant, uploaded_by=request.user, uploads=uploads)
        body = bulk_response(outcomes, tenant=request.tenant, context=self.get_serializer_context())
        created = body["counts"]["created"]
        return Response(body, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="Reindex a document (nothing is queued for one already pending or processing)",
        operation_id="documents_reindex",
        request=None,
        responses={202: DocumentOutput},
    )
    @action(detail=True, methods=["post"], throttle_classes=[TenantUploadThrottle])
    def reindex(self, request, tenant_id, pk):
        document = services.document_reindex(document=self.get_object())
        return Response(
            document_output(document, tenant=request.tenant).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(
        summary="Reindex every document of the tenant (after a change of embedding model); "
        "`queued` leaves out documents already pending or processing",
        operation_id="documents_reindex_all",
        request=None,
        responses={202: inline_serializer("ReindexAll", {"queued": serializers.IntegerField()})},
    )
    @action(detail=False, methods=["post"], url_path="reindex", throttle_classes=[TenantUploadThrottle])
    def reindex_all(self, request, tenant_id):
        return Response(
            {"queued": services.tenant_reindex(tenant=request.tenant)}, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(
        summary="How far the tenant's current wave of ingestion has gone (a bulk upload, a reindex)",
        description="The wave: every document pending or processing, and those finished since the "
        "oldest of them was uploaded or queued again (a wave just finished stays for ten minutes, then "
        "`total` is 0). `rate_per_minute` counts documents finished over the last five minutes; "
        "`seconds_left` is `remaining` at that rate, an estimate.",
        responses=ProgressOutput,
    )
    @action(detail=False, methods=["get"])
    def progress(self, request, tenant_id):
        return Response(progress_output(selectors.ingestion_progress(tenant=request.tenant)))

    @extend_schema(summary="A document's chunks, in order", responses=ChunkOutput(many=True))
    @action(detail=True, methods=["get"])
    def chunks(self, request, tenant_id, pk):
        chunks = selectors.chunk_list(tenant=request.tenant, document=self.get_object())
        page = self.paginate_queryset(chunks)
        return self.get_paginated_response(ChunkOutput(page, many=True).data)

    @extend_schema(summary="Delete a document, its file, chunks and vectors", responses={204: None})
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        services.document_delete(document=instance)


def bulk_response(outcomes, *, tenant, context=None) -> dict:
    # As they are now: the dispatch may have queued some since they were created.
    ids = [outcome.document.pk for outcome in outcomes if outcome.document is not None]
    documents = list(selectors.document_list(tenant=tenant).filter(pk__in=ids))
    shown = {
        document.pk: data
        for document, data in zip(
            documents, document_output(documents, tenant=tenant, context=context, many=True).data, strict=True
        )
    }
    results = [
        {
            "filename": outcome.filename,
            "outcome": outcome.outcome,
            "document": shown.get(outcome.document.pk) if outcome.document else None,
            "error": outcome.error,
        }
        for outcome in outcomes
    ]
    counts = {name: 0 for name in (bulk_upload.CREATED, bulk_upload.DUPLICATE, bulk_upload.REFUSED)}
    for outcome in outcomes:
        counts[outcome.outcome] += 1
    return {
        "results": results,
        "accepted": [result["document"] for result in results if result["document"]],
        "refused": [
            {"filename": result["filename"], "error": result["error"]}
            for result in results
            if result["error"]
        ],
        "counts": counts,
    }


@extend_schema(tags=["knowledge"], parameters=[TENANT_PARAMETER])
class KnowledgeSearchView(TenantScopedAPIView):
    capability = Capability.READ_KNOWLEDGE

    @extend_schema(
        summary="Search the tenant's knowledge",
        request=SearchInput,
        responses=inline_serializer(
            "SearchResponse",
            {
                "mode": serializers.CharField(),
                "results": SearchResultOutput(many=True),
                "took_ms": serializers.FloatField(),
            },
        ),
    )
    def post(self, request, tenant_id):
        data = validated_input(SearchInput, request.data)
        config = retrieval.RetrievalSettings.for_tenant(request.tenant)
        mode = data.get("mode") or config.mode
        results, timings = retrieval.search(
            tenant=request.tenant, query=data["query"], mode=mode, top_k=data.get("top_k")
        )
        return Response(
            {
                "mode": mode,
                "results": SearchResultOutput([result.as_dict() for result in results], many=True).data,
                "took_ms": round(timings["total_ms"], 2),
            }
        )
