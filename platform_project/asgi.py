"""One ASGI application for HTTP and WebSocket, served by uvicorn (platform_project/webserver.py)."""

import os
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_project.settings")
# Web processes take their PostgreSQL connections from a pool (settings.py): a request's or a
# socket's database work runs in whichever thread is free, and each step opened a connection of
# its own without one. Workers and commands, one thread each, do not need it.
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "10")

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
