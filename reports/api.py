"""Reports on a tenant's use of the platform, for its admins: usage, analytics, exports and
personal-data erasure. Thin: validate, call a report or a service, answer."""

import datetime as dt

from django.http import FileResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from conversations import selectors as conversation_selectors
from conversations.models import Conversation
from reports import analytics, selectors, services, usage
from reports.models import Export
from tenants.errors import APIError, Conflict
from tenants.roles import Capability
from tenants.scoping import TenantScopedAPIView, TenantScopedViewSet, validated_input

TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)
EXPORT_PARAMETER = OpenApiParameter("export_id", str, OpenApiParameter.PATH)
# The longest period one report or export covers.
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 30


class UsageFilter(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=366, required=False, default=30)


@extend_schema(tags=["usage"], parameters=[TENANT_PARAMETER])
class UsageView(TenantScopedAPIView):
    capability = Capability.VIEW_USAGE

    @extend_schema(
        summary="Tokens, messages, documents and storage per day, against the plan's quotas",
        parameters=[OpenApiParameter("days", int, description="How many days back (1-366, default 30).")],
        responses=usage.TenantUsageOutput,
    )
    def get(self, request, tenant_id):
        days = validated_input(UsageFilter, request.query_params)["days"]
        return Response(usage.tenant_usage(tenant=request.tenant, days=days))


class PeriodInput(serializers.Serializer):
    """A period of whole days, `until` included; by default the last 30 days."""

    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)
    channel = serializers.ChoiceField(choices=Conversation.Channel.choices, required=False)

    def validate(self, attrs):
        until = attrs.get("until") or timezone.localdate()
        since = attrs.get("since") or until - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        if since > until:
            raise serializers.ValidationError({"since": [_("The period starts after it ends.")]})
        if (until - since).days + 1 > MAX_PERIOD_DAYS:
            raise serializers.ValidationError(
                {"until": [_("A period covers at most %(days)s days.") % {"days": MAX_PERIOD_DAYS}]}
            )
        return {**attrs, "since": since, "until": until}


PERIOD_PARAMETERS = [
    OpenApiParameter("since", OpenApiTypes.DATE, description="First day (default: 29 days before until)."),
    OpenApiParameter("until", OpenApiTypes.DATE, description="Last day, included (default: today)."),
    OpenApiParameter("channel", str, enum=Conversation.Channel.values, description="Only this channel."),
]


@extend_schema(tags=["analytics"], parameters=[TENANT_PARAMETER])
class AnalyticsView(TenantScopedAPIView):
    capability = Capability.VIEW_USAGE

    @extend_schema(
        summary="Conversations, answers by grounding, handoffs, resolution, feedback, agents' "
        "first-response time and the top unanswered questions, per day and per channel",
        parameters=PERIOD_PARAMETERS,
        responses=analytics.TenantAnalyticsOutput,
    )
    def get(self, request, tenant_id):
        period = validated_input(PeriodInput, request.query_params)
        return Response(
            analytics.tenant_analytics(
                tenant=request.tenant,
                since=period["since"],
                until=period["until"],
                channel=period.get("channel"),
            )
        )


# --- Exports -----------------------------------------------------------------------------------


class ExportInput(PeriodInput):
    format = serializers.ChoiceField(choices=Export.Format.choices)


class ExportOutput(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id",
            "status",
            "format",
            "since",
            "until",
            "channel",
            "row_count",
            "size_bytes",
            "error",
            "created_at",
            "finished_at",
            "expires_at",
            "download_url",
        ]

    def get_download_url(self, export) -> str | None:
        if export.status != Export.Status.READY or selectors.export_is_expired(export):
            return None
        return f"/v1/tenants/{export.tenant_id}/exports/{export.pk}/download"


class ExportExpired(APIError):
    status_code = status.HTTP_410_GONE
    default_code = "export_expired"
    default_detail = "This export has expired and its file was deleted. Request a new one."


@extend_schema(tags=["exports"], parameters=[TENANT_PARAMETER])
class ExportViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """The tenant's exports, newest first, and new ones (tenant admins)."""

    model = Export
    capability = Capability.VIEW_USAGE
    serializer_class = ExportOutput

    def scope_queryset(self, queryset):
        return queryset.order_by("-created_at", "id")

    @extend_schema(summary="The tenant's exports, newest first")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Export the conversations of a period (one row a message) as CSV or JSON Lines",
        request=ExportInput,
        responses={202: ExportOutput},
    )
    def create(self, request, tenant_id):
        data = validated_input(ExportInput, request.data)
        export = services.export_request(
            tenant=request.tenant,
            requested_by=request.user,
            since=data["since"],
            until=data["until"],
            format=data["format"],
            channel=data.get("channel", ""),
        )
        return Response(ExportOutput(export).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["exports"], parameters=[TENANT_PARAMETER, EXPORT_PARAMETER])
class ExportDetailView(TenantScopedAPIView):
    capability = Capability.VIEW_USAGE

    @extend_schema(
        summary="An export's status (pending, running, ready, failed, expired)", responses=ExportOutput
    )
    def get(self, request, tenant_id, export_id):
        export = selectors.export_get(tenant=request.tenant, export_id=export_id)
        return Response(ExportOutput(export).data)


@extend_schema(tags=["exports"], parameters=[TENANT_PARAMETER, EXPORT_PARAMETER])
class ExportDownloadView(TenantScopedAPIView):
    capability = Capability.VIEW_USAGE

    @extend_schema(
        summary="Download a ready export (audited); 410 once expired",
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY),
        },
    )
    def get(self, request, tenant_id, export_id):
        export = selectors.export_get(tenant=request.tenant, export_id=export_id)
        if selectors.export_is_expired(export):
            raise ExportExpired(_("This export has expired and its file was deleted. Request a new one."))
        if export.status != Export.Status.READY:
            raise Conflict(_("This export is not ready yet."), code="export_not_ready")
        path = services.export_download_record(export=export)
        content_type = (
            "text/csv; charset=utf-8" if export.format == Export.Format.CSV else "application/x-ndjson"
        )
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"conversations-{export.since}-{export.until}.{export.format}",
            content_type=content_type,
        )


# --- Erasure on request ------------------------------------------------------------------------


class ErasureInput(serializers.Serializer):
    user_id = serializers.IntegerField(required=False, min_value=1)
    contact_id = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs):
        if ("user_id" in attrs) == ("contact_id" in attrs):
            raise serializers.ValidationError(
                {"user_id": [_("Name exactly one person: a user_id or a contact_id.")]}
            )
        return attrs


class ErasureOutput(serializers.Serializer):
    conversations = serializers.IntegerField()
    messages = serializers.IntegerField()
    feedback = serializers.IntegerField()
    exports = serializers.IntegerField(
        help_text="Exports already written (or being written) that held the person's messages: "
        "their files deleted, the exports marked expired."
    )


@extend_schema(tags=["privacy"], parameters=[TENANT_PARAMETER])
class ErasureView(TenantScopedAPIView):
    capability = Capability.MANAGE_MEMBERS

    @extend_schema(
        summary="Erase one customer's conversations (a member by user_id, a widget visitor or LINE "
        "user by contact_id) in every channel, with their messages and ratings and the export "
        "files that hold them; audited",
        request=ErasureInput,
        responses=ErasureOutput,
    )
    def post(self, request, tenant_id):
        data = validated_input(ErasureInput, request.data)
        if "contact_id" in data:
            contact = conversation_selectors.contact_get(tenant=request.tenant, contact_id=data["contact_id"])
            counts = services.personal_data_erase(tenant=request.tenant, contact=contact)
        else:
            user = selectors.customer_get(tenant=request.tenant, user_id=data["user_id"])
            counts = services.personal_data_erase(tenant=request.tenant, user=user)
        return Response(counts)
