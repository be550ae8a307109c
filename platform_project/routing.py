"""WebSocket routes, behind the JWT tenant resolution and the Origin check."""

from channels.routing import URLRouter
from django.urls import path

from conversations.consumers import ChatConsumer
from tenants.websocket import JWTAuthMiddleware, browser_origin_validator

websocket_urlpatterns = [
    path("ws/tenants/<uuid:tenant_id>/chat/", ChatConsumer.as_asgi(), name="ws-chat"),
]

websocket_application = browser_origin_validator(JWTAuthMiddleware(URLRouter(websocket_urlpatterns)))
