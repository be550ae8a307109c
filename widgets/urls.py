from django.urls import path

from widgets import api

widgets = api.WidgetViewSet
prefix = "tenants/<uuid:tenant_id>/widgets"
conversation = "widget/conversations/<uuid:pk>"

urlpatterns = [
    path(prefix, widgets.as_view({"get": "list", "post": "create"}), name="widget-list"),
    path(
        f"{prefix}/<int:pk>",
        widgets.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="widget-detail",
    ),
    path(
        f"{prefix}/<int:pk>/rotate-secret",
        widgets.as_view({"post": "rotate_secret"}),
        name="widget-rotate-secret",
    ),
    path("widget/sessions", api.WidgetSessionView.as_view(), name="widget-session"),
    path("widget/chat", api.VisitorChatView.as_view(), name="widget-chat"),
    path("widget/chat/stream", api.VisitorChatStreamView.as_view(), name="widget-chat-stream"),
    path("widget/conversations", api.VisitorConversationListView.as_view(), name="widget-conversation-list"),
    path(conversation, api.VisitorConversationDetailView.as_view(), name="widget-conversation-detail"),
    path(f"{conversation}/handoff", api.VisitorHandoffView.as_view(), name="widget-conversation-handoff"),
    path(
        f"{conversation}/messages/<int:message_id>/feedback",
        api.VisitorFeedbackView.as_view(),
        name="widget-message-feedback",
    ),
]
