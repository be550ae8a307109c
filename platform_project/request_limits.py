"""The size of a request body, enforced before the application reads any of it.

Django's ASGI handler reads the whole body (spooling it to a temporary file on disk) before any
view, middleware or authentication runs, so a plan's upload limit checked in a view comes too
late: anyone, signed in or not, could make the server write gigabytes. `RequestBodyLimit` wraps
the HTTP application: a declared `Content-Length` over the limit is answered 413 without reading
a byte, and a body without one (chunked) or longer than it declared is counted as it arrives
and cut off, answered 413, once it passes the limit.

The reverse proxy in front of production should refuse such bodies itself (README, "Production").
"""

import json
from http.cookies import SimpleCookie

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from platform_project.errors import wants_html
from tenants.errors import error_body


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _declared_length(scope) -> int | None:
    raw = _header(scope, b"content-length")
    if raw is None or not raw.strip().isdigit():
        return None  # absent or malformed: the bytes are counted as they come instead
    return int(raw.strip())


def _language(scope) -> str:
    """The caller's language (its cookie, else Accept-Language), as LocaleMiddleware would
    choose it: this answer is sent before any Django middleware runs."""
    request = HttpRequest()
    request.META["HTTP_ACCEPT_LANGUAGE"] = _header(scope, b"accept-language") or ""
    cookie = SimpleCookie()
    try:
        cookie.load(_header(scope, b"cookie") or "")
    except Exception:  # noqa: BLE001 - a malformed cookie header: fall back to Accept-Language
        cookie = SimpleCookie()
    request.COOKIES = {name: morsel.value for name, morsel in cookie.items()}
    return translation.get_language_from_request(request)


def _too_large(scope, limit: int) -> tuple[str, bytes]:
    """The 413 answer: the platform's error format, or a plain page for a browser."""
    with translation.override(_language(scope)):
        message = _("The request is too large: at most %(megabytes)s MB can be sent at once.") % {
            "megabytes": round(limit / (1024 * 1024), 1)
        }
        if wants_html(scope["path"], _header(scope, b"accept") or ""):
            page = render_to_string("error.html", {"status": 413, "message": message})
            return "text/html; charset=utf-8", page.encode()
    body = error_body("payload_too_large", message, {"max_bytes": limit})
    return "application/json", json.dumps(body, ensure_ascii=False).encode()


async def _send_too_large(scope, send, limit: int) -> None:
    content_type, body = _too_large(scope, limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body will not be read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestBodyLimit:
    """ASGI middleware: refuse HTTP request bodies larger than `MAX_REQUEST_BODY_BYTES` (413)."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.application(scope, receive, send)
            return
        limit = settings.MAX_REQUEST_BODY_BYTES
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _send_too_large(scope, send, limit)
            return

        received = 0
        refused = False
        response_started = False

        async def counted_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not response_started:
                        await _send_too_large(scope, send, limit)
                    # To the application the client has gone: Django drops the request unread.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal response_started
            if refused:
                return  # the 413 has been sent; nothing of the application's may follow
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.application(scope, counted_receive, guarded_send)
