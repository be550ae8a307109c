"""Writes of the LINE channel: the channels themselves (audited), the events LINE sends, and
answering them through the conversation services (the incoming-message half; `delivery` is the
send-reply half)."""

import datetime as dt
import logging
import re
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from linebot.v3.webhooks import (
    Event,
    FollowEvent,
    MessageEvent,
    TextMessageContent,
    UnfollowEvent,
)

from conversations import chat
from conversations import services as conversation_services
from conversations.models import Conversation
from line_channel import client as line_api
from line_channel import selectors
from line_channel.delivery import (
    channel_mark_token_refused,
    delivery_create,
    delivery_send,
    split_for_line,
)
from line_channel.models import LineChannel, LineEvent, LineUser
from llm.crypto import encrypt_secret
from tenants.audit import audit_record
from tenants.errors import APIError, TooManyRequests
from tenants.models import Tenant

logger = logging.getLogger(__name__)

_CITATION_MARK = re.compile(r"\[\d{1,2}\]")

_AUDITED_FIELDS = (
    "name",
    "channel_id",
    "greeting",
    "handoff_keywords",
    "language",
    "enabled",
    "allow_groups",
)


# --- Channels ------------------------------------------------------------------------------


@transaction.atomic
def line_channel_create(
    *, tenant: Tenant, name: str, channel_id: str, channel_secret: str, channel_access_token: str, **fields
) -> LineChannel:
    channel = LineChannel(
        tenant=tenant,
        name=name,
        channel_id=channel_id,
        channel_secret_encrypted=encrypt_secret(channel_secret),
        access_token_encrypted=encrypt_secret(channel_access_token),
        **fields,
    )
    channel.save()
    audit_record(
        tenant=tenant,
        action="line_channel.create",
        target=channel,
        details={"name": name, "channel_id": channel_id},
    )
    return channel


@transaction.atomic
def line_channel_update(*, channel: LineChannel, **fields) -> LineChannel:
    """Change what is given; a new secret or access token replaces the stored one (and clears the
    channel's "needs attention" state, which an invalid token set)."""
    changed = []
    secret = fields.pop("channel_secret", None)
    token = fields.pop("channel_access_token", None)
    if secret:
        channel.channel_secret_encrypted = encrypt_secret(secret)
        changed.append("channel_secret")
    if token:
        channel.access_token_encrypted = encrypt_secret(token)
        channel.needs_attention, channel.attention_reason = False, ""
        changed.append("channel_access_token")
    for name, value in fields.items():
        if getattr(channel, name) != value:
            setattr(channel, name, value)
            changed.append(name)
    if changed:
        channel.save()
        audit_record(
            tenant=channel.tenant,
            action="line_channel.update",
            target=channel,
            details={"name": channel.name, "changed": sorted(changed)},
        )
    return channel


@transaction.atomic
def line_channel_delete(*, channel: LineChannel) -> None:
    audit_record(
        tenant=channel.tenant,
        action="line_channel.delete",
        target=channel,
        details={"name": channel.name, "channel_id": channel.channel_id},
    )
    channel.delete()


@dataclass(frozen=True)
class VerifyOutcome:
    """What LINE said of a channel's access token: `ok`, or why not (`token_refused`: an admin must
    enter a new token; `unreachable`: LINE did not answer, try again)."""

    ok: bool
    reason: str = ""
    display_name: str = ""
    basic_id: str = ""
    error: str = ""


def line_channel_verify(*, channel: LineChannel) -> VerifyOutcome:
    """Ask LINE which Official Account the stored access token belongs to. A refused token marks
    the channel as needing attention; an accepted one clears that state."""
    try:
        info = line_api.LineClient.for_channel(channel).bot_info()
    except line_api.TokenRefused as error:
        channel_mark_token_refused(channel, error)
        return VerifyOutcome(ok=False, reason="token_refused", error=str(error))
    except line_api.LineAPIError as error:
        return VerifyOutcome(ok=False, reason="unreachable", error=str(error))
    if channel.needs_attention:
        channel.needs_attention, channel.attention_reason = False, ""
        channel.save(update_fields=["needs_attention", "attention_reason", "updated_at"])
    return VerifyOutcome(ok=True, display_name=info["display_name"], basic_id=info["basic_id"])


# --- Webhook events ------------------------------------------------------------------------


def line_events_store(*, channel: LineChannel, events: list[dict]) -> list[int]:
    """Store the events of one webhook call; the ids of those not seen before (a redelivered
    event, same `webhookEventId`, is stored and answered once) to hand to the task."""
    new_ids = []
    for raw in events:
        try:
            with transaction.atomic():
                event = LineEvent.objects.create(
                    tenant_id=channel.tenant_id,
                    channel=channel,
                    webhook_event_id=raw["webhookEventId"],
                    event_type=raw["type"][:32],
                    payload=raw,
                )
        except IntegrityError:
            continue
        new_ids.append(event.pk)
    return new_ids


def _fixed_text(channel: LineChannel, kind: str) -> str:
    """The fixed replies, in the channel's language."""
    with translation.override("zh-hant" if channel.language == LineChannel.Language.ZH_HANT else "en"):
        texts = {
            "not_text": _(
                "Thank you! I can only read text messages: please type your question and I will answer."
            ),
            "handoff": _("A person will answer you here shortly."),
            "quota": _(
                "Sorry, the assistant cannot answer more questions this month. "
                "Please contact us another way, or ask for a person."
            ),
            "busy": _("You are sending messages quickly. Please wait a moment and ask again."),
            "failed": _("Sorry, the assistant cannot answer right now. Please try again shortly."),
            "sources": _("Sources: %(titles)s"),
            "greeting": _("Hello! Ask me anything, or type “agent” to talk to a person."),
        }
    return texts[kind]


def _line_user_for(*, channel: LineChannel, source) -> LineUser:
    """The LINE user (or group) an event comes from, with a contact, created on first contact;
    the display name is asked of LINE's profile API once."""
    source_type = getattr(source, "type", "user")
    line_id = (
        getattr(source, "group_id", None) or getattr(source, "room_id", None)
        if source_type in ("group", "room")
        else getattr(source, "user_id", None)
    )
    if not line_id:
        raise ValueError("event without a source id")
    line_user = (
        LineUser.objects.for_tenant(channel.tenant).filter(channel=channel, line_user_id=line_id).first()
    )
    if line_user is None:
        with transaction.atomic():
            contact = conversation_services.contact_create(
                tenant=channel.tenant, channel="line", name="", details={"line_channel": channel.name}
            )
            line_user = LineUser.objects.create(
                tenant=channel.tenant,
                channel=channel,
                line_user_id=line_id,
                source_type=source_type,
                contact=contact,
            )
    if not line_user.profile_fetched and source_type == "user":
        _fetch_display_name(line_user)
    return line_user


def _fetch_display_name(line_user: LineUser) -> None:
    try:
        name = line_api.LineClient.for_channel(line_user.channel).display_name(user_id=line_user.line_user_id)
    except line_api.TokenRefused as error:
        channel_mark_token_refused(line_user.channel, error)
        return
    except line_api.Transient as error:
        logger.info("LINE profile of %s not fetched, asked again next time: %s", line_user.pk, error)
        return
    except line_api.LineAPIError as error:
        logger.info("No LINE profile for %s: %s", line_user.pk, error)
        name = ""
    line_user.display_name = name[:200]
    line_user.profile_fetched = True
    line_user.save(update_fields=["display_name", "profile_fetched"])
    if name:
        conversation_services.contact_update(contact=line_user.contact, name=name[:200])


def _send(line_user: LineUser, event: Event, received_at, texts: list[str], message_id=None) -> None:
    delivery = delivery_create(line_user=line_user, texts=texts, message_id=message_id)
    delivery_send(delivery=delivery, reply_token=getattr(event, "reply_token", None), received_at=received_at)


def _event_time(event: Event, stored: LineEvent):
    """When LINE saw the event (its timestamp, ms): the reply token's minute runs from there."""
    stamp = getattr(event, "timestamp", None)
    if isinstance(stamp, int) and stamp > 0:
        return dt.datetime.fromtimestamp(stamp / 1000, tz=dt.UTC)
    return stored.received_at


def _mentioned(message) -> bool:
    mention = getattr(message, "mention", None)
    return bool(mention and any(getattr(m, "is_self", False) for m in (mention.mentionees or [])))


def _answer_text(*, channel: LineChannel, line_user: LineUser, event: MessageEvent, received_at) -> None:
    text = event.message.text.strip()
    conversation = selectors.open_conversation(tenant=channel.tenant, line_user=line_user)
    wants_person = any(
        keyword.casefold() in text.casefold() for keyword in channel.handoff_keywords if keyword
    )
    try:
        turn = chat.turn_start(
            tenant=channel.tenant,
            contact=line_user.contact,
            text=text,
            conversation_id=conversation.pk if conversation else None,
            channel=Conversation.Channel.LINE,
        )
    except TooManyRequests as refusal:
        kind = "quota" if refusal.error_code == "quota_exceeded" else "busy"
        _send(line_user, event, received_at, [_fixed_text(channel, kind)])
        return
    if wants_person and not turn.bot_silent:
        conversation_services.conversation_handoff(
            conversation=turn.conversation, reason="Asked for a person on LINE."
        )
        _send(line_user, event, received_at, [_fixed_text(channel, "handoff")])
        return
    final, message = async_to_sync(chat.turn_answer_whole)(turn)
    if final.get("type") == "error":
        _send(line_user, event, received_at, [_fixed_text(channel, "failed")])
        return
    if message is None:
        return  # a person holds the conversation: the bot is silent
    # Citations are shown as document titles: the [n] marks point at nothing on LINE.
    body = _CITATION_MARK.sub("", message.content).strip()
    titles = list(
        dict.fromkeys(c["document_title"] for c in message.citations or [] if c.get("document_title"))
    )
    if titles:
        body += "\n\n" + _fixed_text(channel, "sources") % {"titles": "、".join(titles)}
    _send(line_user, event, received_at, split_for_line(body), message_id=message.pk)


def line_event_process(*, stored: LineEvent) -> str:
    """Answer one stored event; returns what became of it (a `LineEvent.Status`)."""
    channel = stored.channel
    try:
        event = Event.from_dict(stored.payload)
    except (ValueError, TypeError) as error:
        logger.info("Unreadable LINE event %s: %s", stored.pk, error)
        return LineEvent.Status.IGNORED
    source = getattr(event, "source", None)
    if source is None:
        return LineEvent.Status.IGNORED
    in_group = getattr(source, "type", "user") in ("group", "room")
    if in_group and not channel.allow_groups:
        return LineEvent.Status.IGNORED
    received_at = _event_time(event, stored)
    if isinstance(event, MessageEvent):
        if in_group and not (isinstance(event.message, TextMessageContent) and _mentioned(event.message)):
            return LineEvent.Status.IGNORED
        line_user = _line_user_for(channel=channel, source=source)
        if isinstance(event.message, TextMessageContent) and event.message.text.strip():
            try:
                _answer_text(channel=channel, line_user=line_user, event=event, received_at=received_at)
            except APIError as error:  # a closed or missing conversation: nothing to answer
                logger.info("LINE event %s not answered: %s", stored.pk, error)
                return LineEvent.Status.IGNORED
        else:
            _send(line_user, event, received_at, [_fixed_text(channel, "not_text")])
        return LineEvent.Status.DONE
    if isinstance(event, FollowEvent):
        line_user = _line_user_for(channel=channel, source=source)
        if not line_user.following:
            LineUser.objects.filter(pk=line_user.pk).update(following=True)
        _send(
            line_user,
            event,
            received_at,
            split_for_line(channel.greeting or _fixed_text(channel, "greeting")),
        )
        return LineEvent.Status.DONE
    if isinstance(event, UnfollowEvent):
        line_user = (
            LineUser.objects.for_tenant(channel.tenant)
            .filter(channel=channel, line_user_id=getattr(source, "user_id", None))
            .first()
        )
        if line_user is None:
            return LineEvent.Status.IGNORED
        LineUser.objects.filter(pk=line_user.pk).update(following=False)
        conversation = selectors.open_conversation(tenant=channel.tenant, line_user=line_user)
        if conversation is not None:
            conversation_services.conversation_close(conversation=conversation)
        return LineEvent.Status.DONE
    return LineEvent.Status.IGNORED


def line_event_finish(*, stored: LineEvent, status: str, error: str = "") -> None:
    LineEvent.objects.filter(pk=stored.pk).update(
        status=status, error=error[:300], processed_at=timezone.now()
    )
