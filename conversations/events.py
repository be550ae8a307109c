"""Live events to WebSocket clients through the channel layer.

Two groups per tenant, both named with the tenant id: one per conversation (its end user's
socket and any staff watching it) and one for the tenant's staff (the handoff queue). Events are
sent after the database commit, so a client that reacts by reading the API sees the change.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def conversation_group(tenant_id, conversation_id) -> str:
    return f"chat.{tenant_id}.conversation.{conversation_id}"


def staff_group(tenant_id) -> str:
    return f"chat.{tenant_id}.staff"


def _send(group: str, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "chat.event", "event": event})
    except Exception:  # noqa: BLE001 - the change is saved; a live client catches up on reconnect
        logger.exception("Could not publish a chat event to %s", group)


def publish(*, tenant_id, conversation_id, event: dict, to_staff: bool = False) -> None:
    """Send `event` to the conversation's sockets (and the tenant's staff) once committed."""

    def send() -> None:
        _send(conversation_group(tenant_id, conversation_id), event)
        if to_staff:
            _send(staff_group(tenant_id), event)

    transaction.on_commit(send)
