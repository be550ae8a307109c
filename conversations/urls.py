from django.urls import path

from conversations import api

conversations = api.ConversationViewSet
prefix = "tenants/<uuid:tenant_id>"
conversation = f"{prefix}/chat/conversations/<uuid:pk>"

urlpatterns = [
    path(f"{prefix}/chat", api.ChatView.as_view(), name="chat"),
    path(f"{prefix}/chat/stream", api.ChatStreamView.as_view(), name="chat-stream"),
    path(f"{prefix}/chat/conversations", conversations.as_view({"get": "list"}), name="conversation-list"),
    path(
        conversation,
        conversations.as_view({"get": "retrieve", "delete": "destroy"}),
        name="conversation-detail",
    ),
    path(
        f"{conversation}/messages/<int:message_id>/feedback",
        conversations.as_view({"post": "feedback"}),
        name="message-feedback",
    ),
    path(f"{conversation}/handoff", conversations.as_view({"post": "handoff"}), name="conversation-handoff"),
    path(f"{conversation}/take", conversations.as_view({"post": "take"}), name="conversation-take"),
    path(f"{conversation}/reply", conversations.as_view({"post": "reply"}), name="conversation-reply"),
    path(f"{conversation}/close", conversations.as_view({"post": "close"}), name="conversation-close"),
]
