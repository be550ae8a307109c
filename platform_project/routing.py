"""WebSocket routes, behind the JWT tenant resolution and the Origin check."""

from channels.routing import URLRouter
from django.urls import path

from conversations.consumers import ChatConsumer
from platform_project.observability import count_open_websockets
from tenants.websocket import JWTAuthMiddleware, browser_origin_validator
from widgets.consumers import WidgetConsumer

websocket_urlpatterns = [
    path("ws/tenants/<uuid:tenant_id>/chat/", ChatConsumer.as_asgi(), name="ws-chat"),
]

member_websocket_application = count_open_websockets(
    browser_origin_validator(JWTAuthMiddleware(URLRouter(websocket_urlpatterns))), "member"
)
# The widget's socket is opened from the enterprises' own sites: it checks the page's Origin
# against its widget's allowed origins and takes a visitor token (widgets/consumers.py), so it
# sits outside the member sockets' same-site Origin check and JWT middleware.
widget_websocket_application = count_open_websockets(
    URLRouter([path("ws/widget/", WidgetConsumer.as_asgi(), name="ws-widget")]), "widget"
)


async def websocket_application(scope, receive, send):
    if scope.get("path", "").startswith("/ws/widget/"):
        return await widget_websocket_application(scope, receive, send)
    return await member_websocket_application(scope, receive, send)
