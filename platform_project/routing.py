"""WebSocket routes. The chat consumer arrives with the chat issue."""

websocket_urlpatterns: list = []
