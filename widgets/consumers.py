"""The visitor's WebSocket: `/ws/widget/?token=<visitor token>` (or the subprotocol pair
`["bearer", token]`). The frames are the tenant socket's (conversations/consumers.py):

Client to server: `message` {message, conversation_id?, page_url?}, `handoff` {conversation_id,
reason?}, `subscribe` {conversation_id}, `stop`, `ping`, `renew` {token}.
Server to client: `token` … `done` or `error`; `agent_message` {message} when a person replies
(through the conversation's channel-layer group, so from any web process); `status`; `pong`;
`renewed`; `subscribed`.

A visitor reaches only their own conversations (404 otherwise). The page's Origin must be one
the widget allows. Before every frame and pushed event the token's expiry is checked, and the
widget and tenant are read again every SOCKET_ACCESS_RECHECK_SECONDS: a disabled widget or a
suspended tenant closes the socket (4403), an expired token too (4401).
"""

import asyncio
import logging
import time

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import TokenError

from conversations import chat
from conversations import selectors as conversation_selectors
from conversations.consumers import ChatSocket, error_event
from conversations.models import Conversation
from tenants import blocking, rls
from tenants.errors import APIError, dependency_error
from tenants.websocket import BEARER_SUBPROTOCOL, token_from_scope
from widgets import limits, services
from widgets.origins import origin_allowed
from widgets.tokens import VisitorToken, visitor_from_token

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def _origin(scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"origin":
            return value.decode("latin-1")
    return None


def _for_visitor(event: dict) -> dict:
    """An event as a visitor may see it: a person by name, never by email."""
    message = event.get("message")
    if isinstance(message, dict) and isinstance(message.get("author"), str) and "@" in message["author"]:
        event = {**event, "message": {**message, "author": _("Customer service")}}
    return event


class WidgetConsumer(ChatSocket):
    log_route = "ws/widget/"

    async def connect(self):
        self.visitor = None
        self.generation: asyncio.Task | None = None
        self.joined: set[str] = set()
        subprotocols = self.scope.get("subprotocols") or []
        subprotocol = BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in subprotocols else None
        try:
            visitor = await blocking.to_pool(visitor_from_token)(token_from_scope(self.scope) or "")
        except APIError as exc:
            await self.accept(subprotocol)
            close = CLOSE_UNAUTHENTICATED if exc.status_code == 401 else CLOSE_FORBIDDEN
            await self._refuse(close, exc.error_code, str(exc.detail))
            return
        origin = _origin(self.scope)
        if origin is not None and not origin_allowed(origin, visitor.widget.allowed_origins):
            await self.accept(subprotocol)
            await self._refuse(
                CLOSE_FORBIDDEN, "origin_not_allowed", _("This widget may not be used on this website.")
            )
            return
        self.visitor = visitor
        self.tenant = visitor.tenant
        self.expires_at = VisitorToken(token_from_scope(self.scope) or "")["exp"]
        self.checked_at = time.monotonic()
        rls.enter(self.tenant.pk)
        await self.accept(subprotocol)

    async def _refuse(self, close_code: int, code: str, message: str) -> None:
        self.visitor = None
        if self.generation and not self.generation.done():
            self.generation.cancel()
        await self.send_json(error_event(code, message))
        await self.close(code=close_code)

    def _recheck(self):
        """The visitor read again (widget, tenant), or the refusal (raises APIError)."""
        return visitor_from_token_claims(self.visitor)

    async def _still_allowed(self, *, check_expiry: bool = True) -> bool:
        if self.visitor is None:
            return False
        if check_expiry and time.time() >= self.expires_at:
            await self._refuse(
                CLOSE_UNAUTHENTICATED, "token_expired", _("Your session has expired; reconnect.")
            )
            return False
        if time.monotonic() - self.checked_at < settings.SOCKET_ACCESS_RECHECK_SECONDS:
            return True
        try:
            await blocking.to_pool(self._recheck)()
        except APIError as exc:
            close = CLOSE_UNAUTHENTICATED if exc.status_code == 401 else CLOSE_FORBIDDEN
            await self._refuse(close, exc.error_code, str(exc.detail))
            return False
        except Exception as exc:  # noqa: BLE001 - access cannot be confirmed: do not act, say why
            unavailable = dependency_error(exc)
            if unavailable is None:
                raise
            await self.send_json(error_event(unavailable.error_code, str(unavailable.detail)))
            return False
        self.checked_at = time.monotonic()
        return True

    async def chat_event(self, message):
        if await self._still_allowed():
            await self.send_json(_for_visitor(message["event"]))

    # --- client messages ------------------------------------------------------------------

    def _is_open(self) -> bool:
        return self.visitor is not None

    def _start_turn(self, text: str, conversation_id, content: dict) -> chat.Turn:
        page_url = content.get("page_url")
        limits.visitor_message_admit(visitor=self.visitor)
        if (
            isinstance(page_url, str)
            and page_url.startswith(("https://", "http://"))
            and len(page_url) <= 1000
        ):
            services.visitor_page_seen(visitor=self.visitor, page_url=page_url)
        return chat.turn_start(
            tenant=self.tenant,
            contact=self.visitor.contact,
            text=text,
            conversation_id=conversation_id,
            channel=Conversation.Channel.WIDGET,
        )

    def _conversation_for(self, conversation_id) -> Conversation:
        return conversation_selectors.contact_conversation_get(
            tenant=self.tenant, contact=self.visitor.contact, conversation_id=conversation_id
        )

    async def _renew(self, content):
        raw = content.get("token") if isinstance(content.get("token"), str) else ""
        try:
            token = VisitorToken(raw)
        except TokenError as exc:
            raise APIError(_("The new token is not valid."), code="token_invalid") from exc
        if token.get("visitor") != self.visitor.pk or token.get("widget_id") != self.visitor.widget_id:
            raise APIError(_("The new token belongs to another visitor."), code="token_invalid")
        self.expires_at = token["exp"]
        await self.send_json({"type": "renewed", "expires_at": self.expires_at})


def visitor_from_token_claims(visitor):
    """Read the visitor again and apply the token's checks (widget enabled, tenant active)."""
    from tenants.errors import TenantSuspended
    from widgets.errors import VisitorTokenInvalid, WidgetDisabled
    from widgets.selectors import visitor_for_token

    current = visitor_for_token(
        visitor_pk=visitor.pk, tenant_id=visitor.tenant_id, widget_id=visitor.widget_id
    )
    if current is None:
        raise VisitorTokenInvalid(
            _("This chat session has ended; open the chat again."), code="session_ended"
        )
    if not current.tenant.is_active:
        raise TenantSuspended()
    if not current.widget.enabled:
        raise WidgetDisabled()
    return current
