"""One ASGI application for HTTP and WebSocket, served by uvicorn (platform_project/webserver.py)."""

import os
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_project.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from knowledge.warmup import warm_up  # noqa: E402
from platform_project.request_limits import RequestBodyLimit  # noqa: E402
from platform_project.routing import websocket_application  # noqa: E402

# Load the embedding model and the index in the background, so the first search is not slow.
threading.Thread(target=warm_up, name="warm-up", daemon=True).start()

application = ProtocolTypeRouter(
    {
        # Oversized bodies are refused here, before Django spools any of them to disk.
        "http": RequestBodyLimit(django_asgi_app),
        "websocket": websocket_application,
    }
)
