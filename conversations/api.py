"""Chat (REST and SSE), conversations, feedback and handoff endpoints. Thin: validate,
call the chat service, a service or a selector, shape the output."""

import json

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from conversations import chat, selectors, services
from conversations.models import Conversation, Feedback, Message
from tenants import rls
from tenants.audit import hidden_operators_in, person_shown
from tenants.errors import APIError, ServiceUnavailable
from tenants.roles import Capability
from tenants.scoping import TenantScopedAPIView, TenantScopedViewSet, validated_input

TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)


class ChatInput(serializers.Serializer):
    message = serializers.CharField(max_length=settings.CHAT_MAX_MESSAGE_CHARACTERS, trim_whitespace=True)
    conversation_id = serializers.UUIDField(required=False, allow_null=True)


class CitationOutput(serializers.Serializer):
    document_id = serializers.IntegerField()
    document_title = serializers.CharField()
    chunk_id = serializers.IntegerField()
    text = serializers.CharField()
    source_url = serializers.CharField(
        required=False, allow_blank=True, help_text="The web page cited, for a crawled page; else empty."
    )


class TokenUsageOutput(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    provider = serializers.CharField()
    model = serializers.CharField()


class MessageOutput(serializers.ModelSerializer):
    citations = CitationOutput(many=True)
    usage = TokenUsageOutput(allow_null=True)
    author = serializers.SerializerMethodField()
    feedback = serializers.SerializerMethodField()
    # What an answer stands on; null for the customer's own messages.
    grounding = serializers.ChoiceField(
        choices=Message.Grounding.choices, allow_null=True, source="grounding_or_none"
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "content",
            "status",
            "grounding",
            "faq_id",
            "citations",
            "usage",
            "author",
            "latency_ms",
            "first_token_ms",
            "feedback",
            "created_at",
        ]

    def get_author(self, message) -> str | None:
        if not message.author_id:
            return None
        hidden = hidden_operators_in(self.context, tenant_id=message.tenant_id)
        return person_shown(message.author, hidden=hidden, name_first=True)

    def get_feedback(self, message) -> dict | None:
        feedback = self.context.get("feedback", {}).get(message.pk)
        return {"rating": feedback.rating, "comment": feedback.comment} if feedback else None


class ContactOutput(serializers.Serializer):
    id = serializers.IntegerField()
    channel = serializers.CharField()
    name = serializers.CharField()


class ConversationOutput(serializers.ModelSerializer):
    user = serializers.EmailField(source="user.email", allow_null=True, default=None)
    # The customer when it is not a member: a widget visitor, a LINE user.
    contact = ContactOutput(allow_null=True)
    # An email, or "platform operator" for an operator the caller may not see by name.
    assigned_agent = serializers.SerializerMethodField()
    # Counted in lists; null where a single conversation is shown (its messages are there).
    message_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "title",
            "status",
            "channel",
            "user",
            "contact",
            "assigned_agent",
            "handoff_reason",
            "handoff_at",
            "first_agent_reply_at",
            "closed_at",
            "resolved_at",
            "resolution",
            "message_count",
            "created_at",
            "updated_at",
        ]

    def get_assigned_agent(self, conversation) -> str | None:
        if not conversation.assigned_agent_id:
            return None
        hidden = hidden_operators_in(self.context, tenant_id=conversation.tenant_id)
        return person_shown(conversation.assigned_agent, hidden=hidden)


class ConversationDetailOutput(ConversationOutput):
    messages = serializers.SerializerMethodField()

    class Meta(ConversationOutput.Meta):
        fields = [*ConversationOutput.Meta.fields, "messages"]

    @extend_schema_field(MessageOutput(many=True))
    def get_messages(self, conversation) -> list[dict]:
        return MessageOutput(self.context["messages"], many=True, context=self.context).data


ChatResponse = inline_serializer(
    "ChatResponse",
    {
        "conversation_id": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=Conversation.Status.choices),
        "message": MessageOutput(allow_null=True),
        "usage": TokenUsageOutput(allow_null=True),
        "knowledge": serializers.ChoiceField(
            choices=["found", "no_match", "knowledge_unavailable", "faq"], required=False
        ),
        "handed_off": serializers.BooleanField(required=False),
    },
)


def _answer_error(event: dict) -> APIError:
    error = event["error"]
    return ServiceUnavailable(error["message"], code=error["code"], details=error["details"])


def _start(request, channel: str) -> chat.Turn:
    data = validated_input(ChatInput, request.data)
    return chat.turn_start(
        tenant=request.tenant,
        user=request.user,
        role=request.role,
        text=data["message"],
        conversation_id=data.get("conversation_id"),
        channel=channel,
    )


@extend_schema(tags=["chat"], parameters=[TENANT_PARAMETER])
class ChatView(TenantScopedAPIView):
    capability = Capability.CHAT

    @extend_schema(
        summary="Ask the tenant's assistant (the whole answer at once)",
        request=ChatInput,
        responses={200: ChatResponse, 503: OpenApiResponse(description="No provider could answer.")},
    )
    def post(self, request, tenant_id):
        turn = _start(request, Conversation.Channel.API)
        final, message = async_to_sync(chat.turn_answer_whole)(turn)
        if final["type"] == "error":
            raise _answer_error(final)
        return Response(
            {
                "conversation_id": final["conversation_id"],
                "status": final["status"],
                "message": MessageOutput(message).data if message else None,
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
    with rls.scope(turn.tenant.pk, turn.user_message.author_id):
        async for event in chat.turn_answer(turn):
            yield _sse(event)


@extend_schema(tags=["chat"], parameters=[TENANT_PARAMETER])
class ChatStreamView(TenantScopedAPIView):
    capability = Capability.CHAT

    def perform_content_negotiation(self, request, force=False):
        # The answer is an event stream whatever the client accepts; refusals before it are JSON.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        summary="Ask the tenant's assistant and receive the answer as server-sent events",
        description=(
            "`text/event-stream`: `token` events `{delta}`, then one `done` event with the whole "
            "message (or one `error` event). Refusals (validation, limits, access) come before the "
            "stream as ordinary JSON errors."
        ),
        request=ChatInput,
        # Each event's `data` is a JSON object: `{delta}`, the `done` payload, or `{error}`.
        responses={(200, "text/event-stream"): OpenApiTypes.OBJECT},
    )
    def post(self, request, tenant_id):
        turn = _start(request, Conversation.Channel.STREAM)
        response = StreamingHttpResponse(_event_stream(turn), content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # proxies must not hold the stream back
        return response


class ConversationFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    user_id = serializers.IntegerField(required=False)
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)
    assigned = serializers.ChoiceField(choices=["me", "none"], required=False)


class FeedbackInput(serializers.Serializer):
    rating = serializers.ChoiceField(choices=Feedback.Rating.choices)
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class HandoffInput(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class ReplyInput(serializers.Serializer):
    message = serializers.CharField(max_length=settings.CHAT_MAX_MESSAGE_CHARACTERS)


@extend_schema(tags=["conversations"], parameters=[TENANT_PARAMETER])
class ConversationViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """End users see their own conversations; staff see the tenant's."""

    model = Conversation
    serializer_class = ConversationOutput
    lookup_value_converter = "uuid"
    capabilities = {
        "list": Capability.READ_CONVERSATIONS,
        "retrieve": Capability.READ_CONVERSATIONS,
        "destroy": Capability.DELETE_CONVERSATIONS,
        "feedback": Capability.CHAT,
        "handoff": Capability.CHAT,
        "take": Capability.HANDLE_CONVERSATIONS,
        "reply": Capability.HANDLE_CONVERSATIONS,
        "close": Capability.HANDLE_CONVERSATIONS,
    }

    def scope_queryset(self, queryset):
        if self.action != "list":
            return queryset.none()  # single objects go through selectors.conversation_get
        filters = validated_input(ConversationFilter, self.request.query_params)
        assigned = filters.get("assigned")
        return selectors.conversation_list(
            tenant=self.request.tenant,
            viewer=self.request.user,
            role=self.request.role,
            status=filters.get("status"),
            user_id=filters.get("user_id"),
            since=filters.get("since"),
            until=filters.get("until"),
            assigned_to=self.request.user if assigned == "me" else None,
            unassigned=assigned == "none",
        )

    def _conversation(self) -> Conversation:
        return selectors.conversation_get(
            tenant=self.request.tenant,
            viewer=self.request.user,
            role=self.request.role,
            conversation_id=self.kwargs["pk"],
        )

    def _detail(self, conversation: Conversation) -> dict:
        messages = list(selectors.message_list(tenant=self.request.tenant, conversation=conversation))
        feedback = selectors.feedback_for(
            tenant=self.request.tenant, messages=messages, user=self.request.user
        )
        context = {"messages": messages, "feedback": feedback}
        return ConversationDetailOutput(conversation, context=context).data

    @extend_schema(
        summary="List conversations (the handoff queue is `?status=handoff&assigned=none`)",
        parameters=[
            OpenApiParameter("status", str, enum=[value for value, _ in Conversation.Status.choices]),
            OpenApiParameter("user_id", int, description="Staff only: one user's conversations."),
            OpenApiParameter("since", OpenApiTypes.DATE, description="Started on or after."),
            OpenApiParameter("until", OpenApiTypes.DATE, description="Started on or before."),
            OpenApiParameter("assigned", str, enum=["me", "none"]),
        ],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="A conversation with its messages", responses=ConversationDetailOutput)
    def retrieve(self, request, tenant_id, pk):
        return Response(self._detail(self._conversation()))

    @extend_schema(summary="Delete a conversation and its messages", responses={204: None})
    def destroy(self, request, tenant_id, pk):
        services.conversation_delete(conversation=self._conversation())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rate an answer",
        request=FeedbackInput,
        responses={
            201: inline_serializer(
                "FeedbackOutput",
                {
                    "message_id": serializers.IntegerField(),
                    "rating": serializers.CharField(),
                    "comment": serializers.CharField(),
                },
            )
        },
        parameters=[OpenApiParameter("message_id", int, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["post"], url_path=r"messages/(?P<message_id>\d+)/feedback")
    def feedback(self, request, tenant_id, pk, message_id):
        data = validated_input(FeedbackInput, request.data)
        conversation = self._conversation()
        message = selectors.message_get(
            tenant=request.tenant, conversation=conversation, message_id=message_id
        )
        feedback, created = services.feedback_give(
            message=message, user=request.user, rating=data["rating"], comment=data["comment"]
        )
        return Response(
            {"message_id": message.pk, "rating": feedback.rating, "comment": feedback.comment},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(summary="Ask for a human agent", request=HandoffInput, responses=ConversationOutput)
    @action(detail=True, methods=["post"])
    def handoff(self, request, tenant_id, pk):
        data = validated_input(HandoffInput, request.data)
        conversation = services.conversation_handoff(conversation=self._conversation(), reason=data["reason"])
        return Response(ConversationOutput(conversation).data)

    @extend_schema(
        summary="Take over a conversation as a human agent", request=None, responses=ConversationOutput
    )
    @action(detail=True, methods=["post"])
    def take(self, request, tenant_id, pk):
        conversation = services.conversation_take(conversation=self._conversation(), agent=request.user)
        return Response(ConversationOutput(conversation).data)

    @extend_schema(
        summary="Reply as a human agent (delivered live to the end user)",
        request=ReplyInput,
        responses={201: MessageOutput},
    )
    @action(detail=True, methods=["post"])
    def reply(self, request, tenant_id, pk):
        data = validated_input(ReplyInput, request.data)
        message = services.agent_reply(
            conversation=self._conversation(), agent=request.user, content=data["message"]
        )
        return Response(MessageOutput(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Close a conversation", request=None, responses=ConversationOutput)
    @action(detail=True, methods=["post"])
    def close(self, request, tenant_id, pk):
        conversation = services.conversation_close(conversation=self._conversation())
        return Response(ConversationOutput(conversation).data)
