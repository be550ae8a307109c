"""Curated-answer (FAQ pair) endpoints: staff read, tenant admins write. Thin: validate, call a
service or selector, shape."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from knowledge import faq_selectors, faq_services
from knowledge.faq_services import MAX_ALTERNATIVES, MAX_ANSWER_LENGTH, MAX_QUESTION_LENGTH
from knowledge.models import Faq
from tenants.errors import APIError, PayloadTooLarge
from tenants.roles import Capability
from tenants.scoping import TenantScopedViewSet, validated_input

TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)
_MULTIPART_OVERHEAD = 64 * 1024


class FaqOutput(serializers.ModelSerializer):
    class Meta:
        model = Faq
        fields = [
            "id",
            "question",
            "alternatives",
            "answer",
            "enabled",
            "hit_count",
            "last_hit_at",
            "created_at",
            "updated_at",
        ]


def _question_field(**kwargs):
    return serializers.CharField(max_length=MAX_QUESTION_LENGTH, trim_whitespace=True, **kwargs)


class FaqInput(serializers.Serializer):
    question = _question_field()
    alternatives = serializers.ListField(
        child=_question_field(allow_blank=True), max_length=MAX_ALTERNATIVES, required=False, default=list
    )
    answer = serializers.CharField(max_length=MAX_ANSWER_LENGTH, trim_whitespace=True)
    enabled = serializers.BooleanField(required=False, default=True)


class FaqUpdateInput(serializers.Serializer):
    question = _question_field(required=False)
    alternatives = serializers.ListField(
        child=_question_field(allow_blank=True), max_length=MAX_ALTERNATIVES, required=False
    )
    answer = serializers.CharField(max_length=MAX_ANSWER_LENGTH, trim_whitespace=True, required=False)
    enabled = serializers.BooleanField(required=False)


class FaqImportInput(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="CSV with a header row: question, answer, alternatives (separated by |). "
        "UTF-8 with or without BOM, or Big5.",
    )


FaqImportReport = inline_serializer(
    "FaqImportReport",
    {
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "refused": serializers.IntegerField(),
        "rows": inline_serializer(
            "FaqImportRow",
            {
                "row": serializers.IntegerField(),
                "status": serializers.ChoiceField(choices=["created", "updated", "refused"]),
                "question": serializers.CharField(),
                "id": serializers.IntegerField(allow_null=True),
                "error": serializers.CharField(required=False),
            },
            many=True,
        ),
    },
)


@extend_schema(tags=["curated answers"], parameters=[TENANT_PARAMETER])
class FaqViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet
):
    model = Faq
    serializer_class = FaqOutput
    capabilities = {
        "list": Capability.READ_KNOWLEDGE,
        "retrieve": Capability.READ_KNOWLEDGE,
        "export": Capability.READ_KNOWLEDGE,
        "create": Capability.MANAGE_DOCUMENTS,
        "partial_update": Capability.MANAGE_DOCUMENTS,
        "destroy": Capability.MANAGE_DOCUMENTS,
        "import_csv": Capability.MANAGE_DOCUMENTS,
    }

    def scope_queryset(self, queryset):
        params = self.request.query_params
        enabled = {"true": True, "false": False}.get((params.get("enabled") or "").lower())
        return faq_selectors.faq_filter(queryset, search=params.get("search") or None, enabled=enabled)

    @extend_schema(
        summary="List curated answers",
        parameters=[
            OpenApiParameter("search", str, description="Part of the question or the answer."),
            OpenApiParameter("enabled", bool),
        ],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="A curated answer")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(summary="Add a curated answer", request=FaqInput, responses={201: FaqOutput})
    def create(self, request, tenant_id):
        data = validated_input(FaqInput, request.data)
        faq = faq_services.faq_create(tenant=request.tenant, **data)
        return Response(FaqOutput(faq).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change a curated answer", request=FaqUpdateInput, responses=FaqOutput)
    def partial_update(self, request, tenant_id, pk):
        data = validated_input(FaqUpdateInput, request.data)
        faq = faq_services.faq_update(faq=self.get_object(), data=data)
        return Response(FaqOutput(faq).data)

    @extend_schema(summary="Delete a curated answer", responses={204: None})
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        faq_services.faq_delete(faq=instance)

    @extend_schema(
        summary="Import curated answers from CSV (a report row by row: created, updated, refused)",
        operation_id="faqs_import",
        request={"multipart/form-data": FaqImportInput},
        responses={200: FaqImportReport},
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser], url_path="import")
    def import_csv(self, request, tenant_id):
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > faq_services.MAX_IMPORT_BYTES + _MULTIPART_OVERHEAD:
            raise PayloadTooLarge()
        data = validated_input(FaqImportInput, request.data)
        if isinstance(request.data.get("file"), str) or len(request.FILES.getlist("file")) != 1:
            raise APIError("Send exactly one file in the `file` field.", code="validation_error")
        upload = data["file"]
        if upload.size > faq_services.MAX_IMPORT_BYTES:
            raise PayloadTooLarge()
        text = faq_services.decode_import(upload.read())
        report = faq_services.faq_import(tenant=request.tenant, text=text)
        return Response(report.as_dict())

    @extend_schema(
        summary="Export curated answers as CSV (UTF-8 with BOM, opens in Excel)",
        operation_id="faqs_export",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
    )
    @action(detail=False, methods=["get"])
    def export(self, request, tenant_id):
        faqs = faq_selectors.faq_list(tenant=request.tenant).order_by("id")
        response = HttpResponse(faq_services.faq_export_csv(faqs), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="curated-answers.csv"'
        return response
