"""Delivery of a conversation's events to channels that are not a socket of this platform.

A member's or a widget visitor's socket receives a conversation's events through the channel
layer (`events`). A channel whose customer sits elsewhere (LINE: the reply must be pushed
through LINE's API) registers a deliverer for its `Conversation.Channel` when its app is ready;
the conversation services hand it every event of such a conversation once committed: an agent's
reply to push, a status change to announce. `conversations` never imports the channel's app.

Such a channel may fail to deliver a message long after it was saved (LINE down for minutes, a
revoked access token). It registers a lookup of the messages it could not deliver, so that the
pages showing a conversation mark them "not delivered" without knowing the channel's records.
"""

import logging
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)

# Takes the conversation's tenant id, its id and the event ({"type": "agent_message", ...}).
Deliverer = Callable[[object, object, dict], None]

# Takes the tenant and message ids; answers {message id: why it was not delivered}.
UndeliveredLookup = Callable[..., dict[int, str]]

_deliverers: dict[str, Deliverer] = {}
_undelivered_lookups: dict[str, UndeliveredLookup] = {}


def register(channel: str, deliverer: Deliverer, *, undelivered: UndeliveredLookup | None = None) -> None:
    """Called once by a channel's AppConfig.ready()."""
    _deliverers[channel] = deliverer
    if undelivered is not None:
        _undelivered_lookups[channel] = undelivered


def undelivered(*, tenant, channel: str, message_ids: list[int]) -> dict[int, str]:
    """Of these messages of a `channel` conversation, those its channel could not deliver, with
    the reason; empty for the channels that deliver through this platform's own sockets."""
    lookup = _undelivered_lookups.get(channel)
    if lookup is None or not message_ids:
        return {}
    return lookup(tenant=tenant, message_ids=message_ids)


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
