"""What goes back to LINE: answers split to LINE's limits, sent by reply token while it is good
and by push otherwise, retried on 429/5xx with backoff, and recorded (`LineDelivery`) so the
inbox can show what was not delivered.

Design: the bot's answer is sent from the task that answered the event (it holds the reply
token); an agent's reply arrives through `conversations.outbound` (on commit), becomes a pending
`LineDelivery` and is pushed by a Celery task, so a slow LINE never holds up the agent's request.
"""

import logging
import re
import time

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from line_channel import client as line_api
from line_channel.models import LineChannel, LineDelivery, LineUser
from tenants import rls
from tenants.models import Tenant

# Queued by name: tasks.py imports this module (line_channel/apps.py registers the tasks).
SEND_TASK = "line_channel.tasks.send_delivery"

logger = logging.getLogger(__name__)

# LINE's limits: 5,000 characters a text message, 5 messages a reply or push request.
MESSAGE_LIMIT = 5000
MESSAGES_PER_REQUEST = 5
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])|(?<=\.\s)")


def split_for_line(text: str, *, limit: int = MESSAGE_LIMIT, most: int = MESSAGES_PER_REQUEST) -> list[str]:
    """`text` as at most `most` messages of at most `limit` characters, cut at sentence ends
    (Chinese and English) where one falls in the second half of a message, else hard."""
    pieces: list[str] = []
    remaining = text.strip()
    while remaining:
        if len(remaining) <= limit:
            pieces.append(remaining)
            break
        window = remaining[:limit]
        cut = 0
        for match in _SENTENCE_END.finditer(window):
            cut = match.start()
        if cut < limit // 2:
            cut = limit
        pieces.append(remaining[:cut].rstrip())
        remaining = remaining[cut:].lstrip()
    if len(pieces) > most:
        pieces = pieces[:most]
        pieces[-1] = pieces[-1][: limit - 1] + "…"
    return [piece for piece in pieces if piece] or [text[:limit] or "…"]


def channel_mark_token_refused(channel: LineChannel, error: Exception) -> None:
    """LINE refused the access token: the dashboard asks an admin for a new one."""
    channel.needs_attention = True
    channel.attention_reason = f"LINE refused the channel access token: {error}"[:300]
    LineChannel.objects.filter(pk=channel.pk).update(
        needs_attention=True, attention_reason=channel.attention_reason, updated_at=timezone.now()
    )


def _with_retries(delivery: LineDelivery, send) -> None:
    """Call `send()` until it succeeds, retrying what is transient after each configured delay."""
    delays = list(settings.LINE_RETRY_DELAYS)
    while True:
        delivery.attempts += 1
        try:
            send()
            return
        except line_api.Transient:
            if not delays:
                raise
            time.sleep(delays.pop(0))


def delivery_send(
    *, delivery: LineDelivery, reply_token: str | None = None, received_at=None
) -> LineDelivery:
    """Send one delivery: by reply while `reply_token` is fresh, else (or when LINE refuses the
    token) by push. Records the outcome on the delivery; never raises for LINE's answers."""
    channel = delivery.channel
    api = line_api.LineClient.for_channel(channel)
    fresh = (
        reply_token
        and received_at is not None
        and (timezone.now() - received_at).total_seconds() < settings.LINE_REPLY_WINDOW_SECONDS
    )
    try:
        if fresh:
            try:
                delivery.kind = LineDelivery.Kind.REPLY
                _with_retries(delivery, lambda: api.reply(reply_token=reply_token, texts=delivery.texts))
            except line_api.ReplyTokenRefused:
                fresh = False
        if not fresh:
            delivery.kind = LineDelivery.Kind.PUSH
            _with_retries(
                delivery,
                lambda: api.push(
                    to=delivery.line_user.line_user_id, texts=delivery.texts, retry_key=str(delivery.pk)
                ),
            )
    except line_api.TokenRefused as error:
        channel_mark_token_refused(channel, error)
        delivery.status, delivery.error = LineDelivery.Status.FAILED, str(error)[:300]
    except line_api.LineAPIError as error:
        logger.warning("LINE delivery %s failed: %s", delivery.pk, error)
        delivery.status, delivery.error = LineDelivery.Status.FAILED, str(error)[:300]
    else:
        delivery.status, delivery.error, delivery.sent_at = LineDelivery.Status.SENT, "", timezone.now()
    delivery.save(update_fields=["kind", "status", "error", "attempts", "sent_at"])
    return delivery


def delivery_create(*, line_user: LineUser, texts: list[str], message_id: int | None = None) -> LineDelivery:
    return LineDelivery.objects.create(
        tenant_id=line_user.tenant_id,
        channel=line_user.channel,
        line_user=line_user,
        message_id=message_id,
        kind=LineDelivery.Kind.PUSH,
        texts=texts,
    )


def deliver_conversation_event(tenant_id, conversation_id, event: dict) -> None:
    """The `conversations.outbound` deliverer of the "line" channel: an agent's reply is pushed
    to the LINE user (queued: the agent's request does not wait for LINE)."""
    if event.get("type") != "agent_message":
        return
    from conversations.models import Conversation
    from line_channel import selectors

    with rls.scope(tenant_id):
        tenant = Tenant.objects.get(pk=tenant_id)
        conversation = Conversation.objects.for_tenant(tenant).filter(pk=conversation_id).first()
        if conversation is None or conversation.contact_id is None:
            return
        line_user = selectors.line_user_for_contact(tenant=tenant, contact_id=conversation.contact_id)
        if line_user is None:
            return
        message = event["message"]
        delivery = delivery_create(
            line_user=line_user, texts=split_for_line(message["content"]), message_id=message["id"]
        )
    send = current_app.tasks[SEND_TASK]
    transaction.on_commit(lambda: send.delay(str(tenant_id), str(delivery.pk)))
