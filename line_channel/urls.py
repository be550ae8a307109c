from django.urls import path

from line_channel import api

channels = api.LineChannelViewSet
prefix = "tenants/<uuid:tenant_id>"

urlpatterns = [
    path(
        f"{prefix}/line-channels",
        channels.as_view({"get": "list", "post": "create"}),
        name="line-channel-list",
    ),
    path(
        f"{prefix}/line-channels/<uuid:pk>",
        channels.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="line-channel-detail",
    ),
    path("line/<uuid:line_channel_id>/webhook", api.LineWebhookView.as_view(), name="line-webhook"),
]
