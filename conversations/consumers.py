"""WebSocket chat: `/ws/tenants/{tenant_id}/chat/`, JWT in the `token` query parameter or the
subprotocol pair `["bearer", token]`.

Client to server:
    {"type": "message", "message": "...", "conversation_id": "..."?}
    {"type": "handoff", "conversation_id": "...", "reason": "..."?}   ask for a human
    {"type": "subscribe", "conversation_id": "..."}                   receive a conversation's live events
    {"type": "stop"}                                                  stop the answer being generated
    {"type": "ping"}
    {"type": "renew", "token": "..."}                                 a fresh token before the first expires
Server to client:
    {"type": "token", "delta"} ... {"type": "done", "message", ...} or {"type": "error", "error"}
    {"type": "agent_message", "message"}, {"type": "user_message", "message"} (staff),
    {"type": "status", "conversation_id", "status", "assigned_agent"}, {"type": "pong"},
    {"type": "renewed", "expires_at"}

Access is checked before every frame and every group event, not only at connect: an expired
token, a deactivated user (4401), a removed member, a changed role or a suspended tenant (4403)
get an error event and the socket is closed, as at connect (tenants/websocket.py).

One answer is generated at a time per socket, in its own task: closing the socket cancels it,
which closes the provider's stream and saves what was generated.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from conversations import chat, events, selectors, services
from conversations.models import Conversation
from tenants import blocking, logcontext, rls
from tenants.errors import APIError, dependency_error
from tenants.roles import Role
from tenants.websocket import BEARER_SUBPROTOCOL, SocketAccess, SocketRefused, resolve_socket_tenant

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024


def error_event(code: str, message: str, details: dict | None = None) -> dict:
    """An error frame of the chat sockets (member and widget)."""
    return {"type": "error", "error": {"code": code, "message": message, "details": details or {}}}


class ChatSocket(AsyncJsonWebsocketConsumer):
    """What the member socket and the widget's visitor socket share: reading frames, dispatching
    them, starting a turn and streaming its answer, handoff, subscribe, stop. A subclass says who
    the customer is (`_start_turn`, `_conversation_for`), whether the socket is still open to it
    (`_is_open`, `_still_allowed`) and how a token is renewed (`_renew`)."""

    generation: asyncio.Task | None = None
    # The route named in this socket's log lines (never the path: it holds the tenant's id).
    log_route = "ws/tenants/<uuid:tenant_id>/chat/"

    def _is_open(self) -> bool:
        raise NotImplementedError

    async def _still_allowed(self, *, check_expiry: bool = True) -> bool:
        raise NotImplementedError

    def _start_turn(self, text: str, conversation_id, content: dict) -> chat.Turn:
        raise NotImplementedError

    def _conversation_for(self, conversation_id) -> Conversation:
        """The conversation this socket may see (404 otherwise)."""
        raise NotImplementedError

    async def _renew(self, content):
        raise NotImplementedError

    async def disconnect(self, code):
        if self.generation and not self.generation.done():
            self.generation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.generation
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if not self._is_open():
            return
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw.encode()) > MAX_FRAME_BYTES:
            await self.send_json(error_event("payload_too_large", "Messages are limited to 64 KB."))
            return
        try:
            content = json.loads(raw)
        except ValueError:
            await self.send_json(error_event("malformed_request", "Send JSON objects."))
            return
        if not isinstance(content, dict):
            await self.send_json(error_event("malformed_request", "Send JSON objects."))
            return
        # A renewal brings its own token: the first one may have just expired.
        if not await self._still_allowed(check_expiry=content.get("type") != "renew"):
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        handlers = {
            "message": self._message,
            "handoff": self._handoff,
            "subscribe": self._subscribe,
            "stop": self._stop,
            "ping": self._ping,
            "renew": self._renew,
        }
        handler = handlers.get(content.get("type"))
        if handler is None:
            await self.send_json(
                error_event(
                    "validation_error",
                    f"`type` must be one of: {', '.join(handlers)}.",
                    {"type": ["Invalid."]},
                )
            )
            return
        try:
            await handler(content)
        except Exception as exc:  # noqa: BLE001 - a refusal or a dependency down: an error event
            refusal = exc if isinstance(exc, APIError) else dependency_error(exc)
            if refusal is None:
                raise
            await self.send_json(error_event(refusal.error_code, str(refusal.detail), refusal.details))

    # --- client messages ------------------------------------------------------------------

    async def _message(self, content):
        if self.generation and not self.generation.done():
            raise APIError('Wait for the current answer to finish, or send {"type": "stop"}.', code="busy")
        text = content.get("message")
        if not isinstance(text, str) or not text.strip():
            raise APIError("`message` must be a non-empty string.", code="validation_error")
        if len(text) > settings.CHAT_MAX_MESSAGE_CHARACTERS:
            raise APIError(
                f"`message` is limited to {settings.CHAT_MAX_MESSAGE_CHARACTERS} characters.",
                code="validation_error",
            )
        conversation_id = self._conversation_id(content, required=False)
        # A turn is this socket's request: its own id on every line it logs (tenants/logcontext.py).
        user, visitor = getattr(self, "user", None), getattr(self, "visitor", None)
        logcontext.replace(
            {
                "request_id": logcontext.new_request_id(),
                "tenant_id": self.tenant.pk,
                "user_id": user.pk if user is not None and visitor is None else None,
                "visitor_id": visitor.pk if visitor is not None else None,
                "route": self.log_route,
            }
        )
        turn = await blocking.to_pool(self._start_turn)(text, conversation_id, content)
        # Agent replies and status changes for this conversation now reach this socket.
        await self._join(events.conversation_group(self.tenant.pk, turn.conversation.pk))
        self.generation = asyncio.create_task(self._answer(turn))

    async def _answer(self, turn: chat.Turn):
        # This task's blocking work (retrieval, saving) runs in the worker threads, beside other
        # sockets' answers rather than one after the other (tenants/blocking.py).
        blocking.offload()
        conversation_id = str(turn.conversation.pk)
        outcome = "cancelled"
        try:
            async with contextlib.aclosing(chat.turn_answer(turn)) as answer:
                async for event in answer:
                    if event["type"] in ("done", "error"):
                        outcome = event["type"] if event["type"] == "done" else event["error"]["code"]
                    try:
                        await self.send_json({**event, "conversation_id": conversation_id})
                    except OSError:
                        # The client went away mid-answer and the server said so on this send
                        # (uvicorn's ClientDisconnected) before the disconnect event came: as on
                        # a disconnect, the answer is closed here and keeps what was said.
                        outcome = "disconnected"
                        return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the socket gets an error event, not a dead connection
            outcome = "internal_error"
            logger.exception("Chat answer failed for conversation %s", conversation_id)
            with contextlib.suppress(OSError):  # unless the client has gone too
                await self.send_json(
                    error_event(
                        "internal_error",
                        "Something went wrong while answering.",
                        {"conversation_id": conversation_id},
                    )
                )
        finally:
            logger.info(
                "WebSocket turn %s",
                outcome,
                extra={
                    "outcome": outcome,
                    "duration_ms": round((time.perf_counter() - turn.started) * 1000, 1),
                },
            )

    async def _handoff(self, content):
        conversation_id = self._conversation_id(content, required=True)
        reason = content.get("reason") if isinstance(content.get("reason"), str) else ""
        conversation = await blocking.to_pool(self._handoff_sync)(conversation_id, reason)
        await self._join(events.conversation_group(self.tenant.pk, conversation.pk))
        await self.send_json(
            {"type": "status", "conversation_id": str(conversation.pk), "status": conversation.status}
        )

    def _handoff_sync(self, conversation_id, reason):
        return services.conversation_handoff(
            conversation=self._conversation_for(conversation_id), reason=reason
        )

    async def _subscribe(self, content):
        conversation_id = self._conversation_id(content, required=True)
        conversation = await blocking.to_pool(self._conversation_for)(conversation_id)
        await self._join(events.conversation_group(self.tenant.pk, conversation.pk))
        await self.send_json({"type": "subscribed", "conversation_id": str(conversation.pk)})

    async def _stop(self, content):
        if self.generation and not self.generation.done():
            self.generation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.generation
            await self.send_json({"type": "stopped"})

    async def _ping(self, content):
        await self.send_json({"type": "pong"})

    # --- helpers ------------------------------------------------------------------------------

    def _conversation_id(self, content, *, required: bool):
        raw = content.get("conversation_id")
        if raw in (None, ""):
            if required:
                raise APIError("`conversation_id` is required.", code="validation_error")
            return None
        try:
            return uuid.UUID(str(raw))
        except ValueError:
            raise APIError("`conversation_id` must be a UUID.", code="validation_error") from None

    async def _join(self, group: str):
        if group not in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.add(group)


class ChatConsumer(ChatSocket):
    async def connect(self):
        self.tenant = None
        self.generation: asyncio.Task | None = None
        self.joined: set[str] = set()
        subprotocols = self.scope.get("subprotocols") or []
        subprotocol = BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in subprotocols else None
        try:
            self.tenant, self.role = await blocking.to_pool(resolve_socket_tenant)(
                self.scope, self.scope["url_route"]["kwargs"]["tenant_id"]
            )
        except SocketRefused as refused:
            # Accept first so that the client can read why, then close with 4000 + HTTP status.
            await self.accept(subprotocol)
            await self._refuse(refused)
            return
        self.user = self.scope["user"]
        self.access = SocketAccess(self.scope, tenant_id=self.tenant.pk, role=self.role)
        # The consumer's task (and the answers it starts) run in this tenant's scope: the
        # database shows nothing of another tenant (tenants/rls.py).
        rls.enter(self.tenant.pk, self.user.pk)
        await self.accept(subprotocol)
        if self.role != Role.END_USER:
            await self._join(events.staff_group(self.tenant.pk))

    async def _refuse(self, refused: SocketRefused) -> None:
        """Tell the client why, then close; nothing this socket receives is acted on after."""
        self.tenant = None
        await self.send_json(error_event(refused.code, refused.message))
        await self.close(code=refused.close_code)

    async def _still_allowed(self, *, check_expiry: bool = True) -> bool:
        """Whether the socket's access still holds; if not, it is refused and closed."""
        if self.tenant is None:
            return False
        try:
            refused = await blocking.to_pool(self.access.refusal)(check_expiry=check_expiry)
        except Exception as exc:  # noqa: BLE001 - access cannot be confirmed: do not act, say why
            unavailable = dependency_error(exc)
            if unavailable is None:
                raise
            await self.send_json(error_event(unavailable.error_code, str(unavailable.detail)))
            return False
        if refused is None:
            return True
        if self.generation and not self.generation.done():
            self.generation.cancel()
        await self._refuse(refused)
        return False

    async def chat_event(self, message):
        """An event published to one of this socket's groups, if the socket may still have it."""
        if await self._still_allowed():
            await self.send_json(message["event"])

    async def _renew(self, content):
        expires_at = self.access.renew(content.get("token"))
        if await self._still_allowed():
            await self.send_json({"type": "renewed", "expires_at": expires_at})

    def _is_open(self) -> bool:
        return self.tenant is not None

    def _start_turn(self, text: str, conversation_id, content: dict) -> chat.Turn:
        return chat.turn_start(
            tenant=self.tenant,
            user=self.user,
            role=self.role,
            text=text,
            conversation_id=conversation_id,
            channel=Conversation.Channel.WEBSOCKET,
        )

    def _conversation_for(self, conversation_id) -> Conversation:
        return selectors.conversation_get(
            tenant=self.tenant, viewer=self.user, role=self.role, conversation_id=conversation_id
        )
