"""The LINE channel's API: tenant admins manage their channels (secrets write-only); LINE's
platform calls the webhook. Thin: validate, call a service or selector, shape."""

import json
import logging

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from linebot.v3.webhook import SignatureValidator
from rest_framework import exceptions, mixins, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from line_channel import selectors, services, tasks
from line_channel.models import (
    ACCESS_TOKEN_LENGTH,
    CHANNEL_ID_PATTERN,
    CHANNEL_SECRET_PATTERN,
    GREETING_LENGTH,
    HANDOFF_KEYWORD_LENGTH,
    MAX_HANDOFF_KEYWORDS,
    LineChannel,
)
from line_channel.throttling import WebhookChannelThrottle, WebhookFailureThrottle
from tenants import rls
from tenants.errors import APIError, NotFound
from tenants.roles import Capability
from tenants.scoping import TenantScopedViewSet, validated_input

logger = logging.getLogger(__name__)

TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)
MAX_EVENTS = 100


class Unauthorized(APIError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "invalid_signature"
    default_detail = "The X-Line-Signature header is missing or does not match the body."


class TooLarge(APIError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The webhook body is too large."


class LineChannelFields(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    channel_id = serializers.RegexField(
        CHANNEL_ID_PATTERN,
        help_text="The Messaging API channel's Channel ID (digits), from the LINE Developers console.",
    )
    channel_secret = serializers.RegexField(
        CHANNEL_SECRET_PATTERN, write_only=True, help_text="Write-only. The channel secret (Basic settings)."
    )
    channel_access_token = serializers.CharField(
        min_length=ACCESS_TOKEN_LENGTH[0],
        max_length=ACCESS_TOKEN_LENGTH[1],
        write_only=True,
        help_text="Write-only. A long-lived channel access token (Messaging API tab).",
    )
    greeting = serializers.CharField(max_length=GREETING_LENGTH, required=False, allow_blank=True)
    handoff_keywords = serializers.ListField(
        child=serializers.CharField(max_length=HANDOFF_KEYWORD_LENGTH),
        max_length=MAX_HANDOFF_KEYWORDS,
        required=False,
    )
    language = serializers.ChoiceField(choices=LineChannel.Language.choices, required=False)
    enabled = serializers.BooleanField(required=False)
    allow_groups = serializers.BooleanField(required=False)


class LineChannelCreateInput(LineChannelFields):
    pass


class LineChannelUpdateInput(LineChannelFields):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class LineChannelOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    channel_id = serializers.CharField()
    webhook_url = serializers.SerializerMethodField(
        help_text="Paste it as the Webhook URL in the LINE Developers console."
    )
    handoff_keywords = serializers.ListField(child=serializers.CharField())
    greeting = serializers.CharField()
    language = serializers.ChoiceField(choices=LineChannel.Language.choices)
    enabled = serializers.BooleanField()
    allow_groups = serializers.BooleanField()
    needs_attention = serializers.BooleanField(
        help_text="LINE refused the access token: enter a new one (PATCH channel_access_token)."
    )
    attention_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_webhook_url(self, channel) -> str:
        return selectors.webhook_url(channel=channel, request=self.context.get("request"))


@extend_schema(tags=["line"], parameters=[TENANT_PARAMETER])
class LineChannelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = LineChannel
    capability = Capability.UPDATE_TENANT
    serializer_class = LineChannelOutput
    lookup_value_converter = "uuid"

    @extend_schema(
        summary="Connect a LINE Official Account",
        request=LineChannelCreateInput,
        responses={201: LineChannelOutput},
    )
    def create(self, request, tenant_id):
        data = validated_input(LineChannelCreateInput, request.data)
        channel = services.line_channel_create(tenant=request.tenant, **data)
        return Response(
            LineChannelOutput(channel, context={"request": request}).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Change a LINE channel (a new secret or token replaces the stored one)",
        request=LineChannelUpdateInput,
        responses=LineChannelOutput,
    )
    def partial_update(self, request, tenant_id, pk):
        data = validated_input(LineChannelUpdateInput, request.data)
        channel = services.line_channel_update(channel=self.get_object(), **data)
        return Response(LineChannelOutput(channel, context={"request": request}).data)

    @extend_schema(summary="Disconnect a LINE channel", responses={204: None})
    def destroy(self, request, tenant_id, pk):
        services.line_channel_delete(channel=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _events_of(body: bytes) -> list[dict]:
    """The events of a webhook body, checked for the shape LINE sends; 400 otherwise."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # deep nesting too
        raise APIError("The body is not JSON.", code="malformed_request") from error
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise APIError(
            "The body has no `events` list.", code="validation_error", details={"events": ["Required."]}
        )
    for event in events:
        if not (
            isinstance(event, dict)
            and isinstance(event.get("type"), str)
            and isinstance(event.get("webhookEventId"), str)
            and 0 < len(event["webhookEventId"]) <= 64
        ):
            raise APIError(
                "Every event needs a `type` and a `webhookEventId`.",
                code="validation_error",
                details={"events": ["Every event needs a `type` and a `webhookEventId`."]},
            )
    return events


@extend_schema(
    tags=["line"],
    summary="LINE's webhook (called by LINE's platform, signed with the channel secret)",
    parameters=[OpenApiParameter("X-Line-Signature", str, OpenApiParameter.HEADER, required=True)],
    request=inline_serializer(
        "LineWebhookBody",
        {
            "destination": serializers.CharField(required=False),
            "events": serializers.ListField(child=serializers.DictField()),
        },
    ),
    responses={
        200: inline_serializer("LineWebhookAccepted", {"accepted": serializers.IntegerField()}),
        400: OpenApiResponse(description="The body is not LINE's webhook JSON."),
        401: OpenApiResponse(description="invalid_signature: X-Line-Signature missing or wrong."),
        404: OpenApiResponse(description="No enabled channel has this id."),
        413: OpenApiResponse(description="The body is larger than LINE_WEBHOOK_MAX_BYTES."),
        429: OpenApiResponse(
            description="rate_limited, with Retry-After: too many failed calls from this address, "
            "or too many calls for this channel (nothing stored: LINE redelivers)."
        ),
    },
)
class LineWebhookView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def post(self, request, line_channel_id):
        failures = WebhookFailureThrottle()
        if failures.refused(request, self):
            raise exceptions.Throttled(wait=failures.wait())
        try:
            return self._accept(request, line_channel_id)
        except (Unauthorized, NotFound):
            failures.record_failure()
            raise

    def _accept(self, request, line_channel_id):
        signature = request.headers.get("X-Line-Signature", "")
        if not signature or len(signature) > 100:
            raise Unauthorized()
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > settings.LINE_WEBHOOK_MAX_BYTES:
            raise TooLarge()
        with rls.unscoped():
            channel = selectors.line_channel_for_webhook(channel_id=line_channel_id)
            if channel is None:
                raise NotFound("No such LINE channel.")
            body = request.body
            try:
                valid = SignatureValidator(selectors.channel_secret(channel=channel)).validate(
                    body.decode("utf-8"), signature
                )
            except UnicodeDecodeError:
                valid = False
            if not valid:
                raise Unauthorized()
            # Refused before anything is stored: LINE sends the call again later.
            throttle = WebhookChannelThrottle(channel)
            if not throttle.allow_request(request, self):
                raise exceptions.Throttled(wait=throttle.wait())
            events = _events_of(body)
            if not events or channel.tenant.status != "active":
                return Response({"accepted": 0})  # the console's "Verify", or a suspended tenant
            with rls.scope(channel.tenant_id):
                new_ids = services.line_events_store(channel=channel, events=events)
            if new_ids:
                tenant_id = str(channel.tenant_id)
                transaction.on_commit(lambda: tasks.process_events.delay(tenant_id, new_ids))
        return Response({"accepted": len(new_ids)})
