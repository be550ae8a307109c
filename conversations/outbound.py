"""Delivery of a conversation's events to channels that are not a socket of this platform.

A member's or a widget visitor's socket receives a conversation's events through the channel
layer (`events`). A channel whose customer sits elsewhere (LINE: the reply must be pushed
through LINE's API) registers a deliverer for its `Conversation.Channel` when its app is ready;
the conversation services hand it every event of such a conversation once committed: an agent's
reply to push, a status change to announce. `conversations` never imports the channel's app.
"""

import logging
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)

# Takes the conversation's tenant id, its id and the event ({"type": "agent_message", ...}).
Deliverer = Callable[[object, object, dict], None]

_deliverers: dict[str, Deliverer] = {}


def register(channel: str, deliverer: Deliverer) -> None:
    """Called once by a channel's AppConfig.ready()."""
    _deliverers[channel] = deliverer


def deliver(*, tenant_id, conversation_id, channel: str, event: dict) -> None:
    """Hand `event` to the channel's deliverer after the commit (nothing for socket channels)."""
    deliverer = _deliverers.get(channel)
    if deliverer is None:
        return

    def send() -> None:
        try:
            deliverer(tenant_id, conversation_id, event)
        except Exception:  # noqa: BLE001 - the change is saved; the deliverer records its own failures
            logger.exception("Could not hand a %s event to the %s channel", event.get("type"), channel)

    transaction.on_commit(send)
