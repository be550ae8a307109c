"""The widget's API. Tenant admins manage widgets under /v1/tenants/{tenant_id}/widgets; a page
opens a visitor session (POST /v1/widget/sessions, publishable key + allowed Origin) and the
visitor token then opens /v1/widget/… only. Thin: validate, call a service or selector, shape."""

import json
import re

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, permissions, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import chat
from conversations import selectors as conversation_selectors
from conversations import services as conversation_services
from conversations.api import ChatInput, FeedbackInput, HandoffInput, MessageOutput, TokenUsageOutput
from conversations.models import Conversation, Message
from tenants import rls
from tenants.authentication import PublicEndpointAuthentication
from tenants.errors import NotFound, ServiceUnavailable, TenantSuspended
from tenants.pagination import Pagination
from tenants.roles import Capability
from tenants.scoping import TenantScopedViewSet, validated_input
from tenants.throttling import ClientAddressThrottle
from widgets import limits, selectors, services
from widgets.errors import OriginNotAllowed, WidgetDisabled
from widgets.models import MAX_DAILY_MESSAGE_CAP, Widget
from widgets.origins import MAX_ORIGINS, origin_allowed, origins_normalize
from widgets.tokens import VisitorTokenAuthentication, visitor_token_for

TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)
PUBLIC_KEY_PATTERN = re.compile(r"^pk_[A-Za-z0-9]{20,60}$")


# --- Tenant admins: widgets --------------------------------------------------------------------


class OriginListField(serializers.ListField):
    child = serializers.CharField(max_length=300)

    def to_internal_value(self, data):
        normalized, errors = origins_normalize(super().to_internal_value(data))
        if errors:
            raise serializers.ValidationError(errors)
        return normalized


class WidgetInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    allowed_origins = OriginListField(
        min_length=1,
        max_length=MAX_ORIGINS,
        help_text="Exact origins (scheme, host and port) whose pages may use the widget.",
    )
    greeting = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    locale = serializers.ChoiceField(
        choices=Widget.Locale.choices, required=False, default=Widget.Locale.AUTO
    )
    identity_verification = serializers.BooleanField(required=False, default=False)
    enabled = serializers.BooleanField(required=False, default=True)
    daily_message_cap = serializers.IntegerField(
        min_value=0, max_value=MAX_DAILY_MESSAGE_CAP, required=False, default=1000, help_text="0: unlimited."
    )


class WidgetOutput(serializers.ModelSerializer):
    embed_snippet = serializers.SerializerMethodField()
    identity_secret = serializers.SerializerMethodField(
        help_text="Only in the answer that made it (create, enabling verification, rotate-secret)."
    )

    class Meta:
        model = Widget
        fields = [
            "id",
            "name",
            "public_key",
            "allowed_origins",
            "greeting",
            "locale",
            "identity_verification",
            "enabled",
            "daily_message_cap",
            "embed_snippet",
            "identity_secret",
            "created_at",
            "updated_at",
        ]

    def get_embed_snippet(self, widget) -> str:
        return embed_snippet(widget, base_url=self.context.get("base_url", ""))

    def get_identity_secret(self, widget) -> str | None:
        return self.context.get("identity_secret")


def script_url(base_url: str) -> str:
    return f"{(settings.PUBLIC_BASE_URL or base_url).rstrip('/')}/widget.js"


def embed_snippet(widget: Widget, *, base_url: str) -> str:
    """The one tag an enterprise pastes into its pages. A fixed language goes into the tag too:
    widget.js labels its launcher before the visitor's session (which names the language) opens."""
    locale = f' data-locale="{widget.locale}"' if widget.locale != Widget.Locale.AUTO else ""
    return f'<script src="{script_url(base_url)}" data-key="{widget.public_key}"{locale} async></script>'


@extend_schema(tags=["widgets"], parameters=[TENANT_PARAMETER])
class WidgetViewSet(TenantScopedViewSet):
    model = Widget
    serializer_class = WidgetOutput
    capability = Capability.UPDATE_TENANT

    def scope_queryset(self, queryset):
        return queryset.order_by("name", "id")

    def _widget(self) -> Widget:
        return selectors.widget_get(tenant=self.request.tenant, widget_id=self.kwargs["pk"])

    def _out(self, widget: Widget, secret: str | None = None, code=status.HTTP_200_OK) -> Response:
        context = {"base_url": self.request.build_absolute_uri("/"), "identity_secret": secret}
        return Response(WidgetOutput(widget, context=context).data, status=code)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "base_url": self.request.build_absolute_uri("/")}

    @extend_schema(summary="List the tenant's website widgets")
    def list(self, request, tenant_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(summary="Create a website widget", request=WidgetInput, responses={201: WidgetOutput})
    def create(self, request, tenant_id):
        data = validated_input(WidgetInput, request.data)
        widget, secret = services.widget_create(tenant=request.tenant, **data)
        return self._out(widget, secret, status.HTTP_201_CREATED)

    @extend_schema(summary="A website widget", responses=WidgetOutput)
    def retrieve(self, request, tenant_id, pk):
        return self._out(self._widget())

    @extend_schema(
        summary="Change a website widget", request=WidgetInput(partial=True), responses=WidgetOutput
    )
    def partial_update(self, request, tenant_id, pk):
        serializer = WidgetInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        widget, secret = services.widget_update(widget=self._widget(), **serializer.validated_data)
        return self._out(widget, secret)

    @extend_schema(summary="Delete a website widget", responses={204: None})
    def destroy(self, request, tenant_id, pk):
        services.widget_delete(widget=self._widget())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Make a new identity secret (the old one stops verifying at once)",
        request=None,
        responses=WidgetOutput,
    )
    def rotate_secret(self, request, tenant_id, pk):
        widget, secret = services.widget_rotate_secret(widget=self._widget())
        return self._out(widget, secret)


# --- Visitors: sessions ---------------------------------------------------------------------------


class WidgetSessionThrottle(ClientAddressThrottle):
    """Visitor sessions per client address."""

    scope = "widget_session"


class SessionInput(serializers.Serializer):
    public_key = serializers.CharField(max_length=100)
    visitor_id = serializers.CharField(max_length=200, required=False, allow_blank=True, allow_null=True)
    visitor_hash = serializers.CharField(max_length=128, required=False, allow_blank=True, allow_null=True)
    resume_token = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    locale = serializers.ChoiceField(choices=["zh-Hant", "en"], required=False, allow_null=True)
    page_url = serializers.URLField(max_length=1000, required=False, allow_blank=True, default="")


class SessionWidgetOutput(serializers.Serializer):
    name = serializers.CharField()
    greeting = serializers.CharField()
    locale = serializers.CharField()


class SessionOutput(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.IntegerField(help_text="Unix time; open a new session before it.")
    visitor_id = serializers.CharField()
    resume_token = serializers.CharField(
        allow_null=True, help_text="Anonymous visitors: keep it (localStorage) to come back."
    )
    widget = SessionWidgetOutput()


@extend_schema(tags=["widget"])
class WidgetSessionView(APIView):
    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [permissions.AllowAny]
    throttle_classes = [WidgetSessionThrottle]

    @extend_schema(
        summary="Open a visitor session (from a page whose Origin the widget allows)",
        request=SessionInput,
        responses={
            201: SessionOutput,
            401: OpenApiResponse(description="identity_invalid"),
            403: OpenApiResponse(description="origin_not_allowed, widget_disabled, tenant_suspended"),
            404: OpenApiResponse(description="No widget has this key."),
        },
    )
    def post(self, request):
        data = validated_input(SessionInput, request.data)
        # Cheap checks first: the key's shape, then one indexed read, then the Origin.
        if not PUBLIC_KEY_PATTERN.match(data["public_key"]):
            raise NotFound(_("No widget has this key."), code="unknown_widget")
        widget = selectors.widget_by_public_key(public_key=data["public_key"])
        if widget is None:
            raise NotFound(_("No widget has this key."), code="unknown_widget")
        if not origin_allowed(request.headers.get("Origin"), widget.allowed_origins):
            raise OriginNotAllowed()
        if not widget.tenant.is_active:
            raise TenantSuspended()
        if not widget.enabled:
            raise WidgetDisabled()
        with rls.scope(widget.tenant_id):
            visitor, resume_token = services.visitor_session_open(
                widget=widget,
                visitor_id=data.get("visitor_id"),
                visitor_hash=data.get("visitor_hash"),
                resume_token=data.get("resume_token"),
                name=data["name"],
                email=data["email"],
                page_url=data["page_url"],
            )
        token = visitor_token_for(visitor)
        locale = widget.locale if widget.locale != Widget.Locale.AUTO else (data.get("locale") or "auto")
        body = {
            "token": str(token),
            "expires_at": token["exp"],
            "visitor_id": visitor.visitor_id,
            "resume_token": resume_token,
            "widget": {"name": widget.name, "greeting": widget.greeting, "locale": locale},
        }
        return Response(SessionOutput(body).data, status=status.HTTP_201_CREATED)


# --- Visitors: chat and their own conversations -----------------------------------------------------


class VisitorMessageOutput(MessageOutput):
    """A message as its visitor sees it: a person is shown by name only (never an email)."""

    def get_author(self, message) -> str | None:
        if not message.author_id:
            return None
        return message.author.name or _("Customer service")


class VisitorConversationOutput(serializers.ModelSerializer):
    # Counted in lists; null where a single conversation is shown (its messages are there).
    message_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "title",
            "status",
            "channel",
            "handoff_at",
            "closed_at",
            "message_count",
            "created_at",
            "updated_at",
        ]


class VisitorConversationDetailOutput(VisitorConversationOutput):
    messages = serializers.SerializerMethodField()

    class Meta(VisitorConversationOutput.Meta):
        fields = [*VisitorConversationOutput.Meta.fields, "messages"]

    @extend_schema_field(VisitorMessageOutput(many=True))
    def get_messages(self, conversation) -> list[dict]:
        return VisitorMessageOutput(self.context["messages"], many=True, context=self.context).data


class VisitorChatInput(ChatInput):
    page_url = serializers.URLField(max_length=1000, required=False, allow_blank=True, default="")


VisitorChatResponse = inline_serializer(
    "VisitorChatResponse",
    {
        "conversation_id": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=Conversation.Status.choices),
        "message": VisitorMessageOutput(allow_null=True),
        "usage": TokenUsageOutput(allow_null=True),
        "knowledge": serializers.ChoiceField(
            choices=["found", "no_match", "knowledge_unavailable"], required=False
        ),
        "handed_off": serializers.BooleanField(required=False),
    },
)


class VisitorAPIView(APIView):
    """Base of /v1/widget/… behind the session: a visitor token only (a member's JWT is not
    one), the widget's origins only, and the database scoped to the visitor's tenant."""

    authentication_classes = [VisitorTokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]

    def dispatch(self, request, *args, **kwargs):
        with rls.unscoped():
            return super().dispatch(request, *args, **kwargs)

    def check_permissions(self, request):
        super().check_permissions(request)
        origin = request.headers.get("Origin")
        # A browser names the page's origin: it must be one the widget allows. A client that
        # sends none is not a browser; the token alone speaks for it.
        if origin is not None and not origin_allowed(origin, request.visitor.widget.allowed_origins):
            raise OriginNotAllowed()
        rls.enter(request.tenant.pk)

    @property
    def visitor(self):
        return self.request.visitor

    def _conversation(self, conversation_id) -> Conversation:
        return conversation_selectors.contact_conversation_get(
            tenant=self.request.tenant, contact=self.visitor.contact, conversation_id=conversation_id
        )


def _start(request) -> chat.Turn:
    data = validated_input(VisitorChatInput, request.data)
    visitor = request.visitor
    limits.visitor_message_admit(visitor=visitor)
    services.visitor_page_seen(visitor=visitor, page_url=data["page_url"])
    return chat.turn_start(
        tenant=request.tenant,
        contact=visitor.contact,
        text=data["message"],
        conversation_id=data.get("conversation_id"),
        channel=Conversation.Channel.WIDGET,
    )


@extend_schema(tags=["widget"])
class VisitorChatView(VisitorAPIView):
    @extend_schema(
        summary="A visitor asks (the whole answer at once)",
        request=VisitorChatInput,
        responses={200: VisitorChatResponse, 503: OpenApiResponse(description="No provider could answer.")},
    )
    def post(self, request):
        turn = _start(request)
        final, message = async_to_sync(chat.turn_answer_whole)(turn)
        if final["type"] == "error":
            error = final["error"]
            raise ServiceUnavailable(error["message"], code=error["code"], details=error["details"])
        return Response(
            {
                "conversation_id": final["conversation_id"],
                "status": final["status"],
                "message": VisitorMessageOutput(message).data if message else None,
                "usage": final["usage"],
                "knowledge": final.get("knowledge"),
                "handed_off": final.get("handed_off", False),
            }
        )


def _sse(event: dict) -> str:
    kind = event["type"]
    payload = {key: value for key, value in event.items() if key != "type"}
    return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _event_stream(turn: chat.Turn):
    # The stream runs after the view has returned: it enters the tenant's scope itself.
    with rls.scope(turn.tenant.pk):
        async for event in chat.turn_answer(turn):
            yield _sse(event)


@extend_schema(tags=["widget"])
class VisitorChatStreamView(VisitorAPIView):
    def perform_content_negotiation(self, request, force=False):
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        summary="A visitor asks; the answer comes as server-sent events",
        description="As the tenant's chat/stream: `token` events `{delta}`, then `done` (or `error`).",
        request=VisitorChatInput,
        responses={(200, "text/event-stream"): OpenApiTypes.OBJECT},
    )
    def post(self, request):
        turn = _start(request)
        response = StreamingHttpResponse(_event_stream(turn), content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response


@extend_schema(tags=["widget"])
class VisitorConversationListView(VisitorAPIView, generics.ListAPIView):
    serializer_class = VisitorConversationOutput
    pagination_class = Pagination

    def get_queryset(self):
        return conversation_selectors.contact_conversation_list(
            tenant=self.request.tenant, contact=self.visitor.contact
        )

    @extend_schema(summary="The visitor's own conversations")
    def get(self, request):
        return self.list(request)


def _detail(request, conversation: Conversation) -> dict:
    messages = list(
        conversation_selectors.message_list(tenant=request.tenant, conversation=conversation).exclude(
            role=Message.Role.SYSTEM
        )
    )
    feedback = conversation_selectors.feedback_for(
        tenant=request.tenant, messages=messages, contact=request.visitor.contact
    )
    return VisitorConversationDetailOutput(
        conversation, context={"messages": messages, "feedback": feedback}
    ).data


@extend_schema(tags=["widget"])
class VisitorConversationDetailView(VisitorAPIView):
    @extend_schema(
        summary="One of the visitor's conversations, with its messages",
        responses=VisitorConversationDetailOutput,
    )
    def get(self, request, pk):
        return Response(_detail(request, self._conversation(pk)))


@extend_schema(tags=["widget"])
class VisitorHandoffView(VisitorAPIView):
    @extend_schema(summary="Ask for a person", request=HandoffInput, responses=VisitorConversationOutput)
    def post(self, request, pk):
        data = validated_input(HandoffInput, request.data)
        conversation = conversation_services.conversation_handoff(
            conversation=self._conversation(pk), reason=data["reason"]
        )
        return Response(VisitorConversationOutput(conversation).data)


@extend_schema(tags=["widget"])
class VisitorFeedbackView(VisitorAPIView):
    @extend_schema(
        summary="Rate an answer",
        request=FeedbackInput,
        responses={
            201: inline_serializer(
                "VisitorFeedbackOutput",
                {
                    "message_id": serializers.IntegerField(),
                    "rating": serializers.CharField(),
                    "comment": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request, pk, message_id):
        data = validated_input(FeedbackInput, request.data)
        conversation = self._conversation(pk)
        message = conversation_selectors.message_get(
            tenant=request.tenant, conversation=conversation, message_id=message_id
        )
        feedback, created = conversation_services.feedback_give(
            message=message, contact=self.visitor.contact, rating=data["rating"], comment=data["comment"]
        )
        return Response(
            {"message_id": message.pk, "rating": feedback.rating, "comment": feedback.comment},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
