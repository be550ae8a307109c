"""Dashboard pages of conversations, under /dashboard/t/<tenant_id>/."""

from django.urls import path

from conversations import views

conversation = "conversations/<uuid:conversation_id>/"

tenant = [
    path("conversations/", views.ConversationListView.as_view(), name="conversations"),
    path(conversation, views.ConversationDetailView.as_view(), name="conversation"),
    path(f"{conversation}take/", views.ConversationTakeView.as_view(), name="conversation-take"),
    path(f"{conversation}reply/", views.ConversationReplyView.as_view(), name="conversation-reply"),
    path(f"{conversation}close/", views.ConversationCloseView.as_view(), name="conversation-close"),
    path("chat/", views.LiveChatView.as_view(), name="live-chat"),
    path("chat/token/", views.SocketTokenView.as_view(), name="socket-token"),
    path("inbox/", views.InboxView.as_view(), name="inbox"),
]
