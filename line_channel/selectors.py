"""Reads of the LINE channel; each takes the tenant explicitly, except the webhook's lookup of a
channel by its id (the caller is LINE: the tenant is what the channel says, checked by the
signature before anything else is read)."""

import datetime as dt

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from conversations.models import Conversation
from line_channel.models import LineChannel, LineDelivery, LineUser
from llm.crypto import decrypt_secret
from tenants import rls
from tenants.errors import NotFound
from tenants.models import Tenant

# The dashboard counts a channel's recent delivery failures over this window.
FAILURE_WINDOW = dt.timedelta(days=7)


def line_channel_list(*, tenant: Tenant) -> QuerySet:
    return LineChannel.objects.for_tenant(tenant).order_by("created_at", "id")


def line_channel_list_with_failures(*, tenant: Tenant) -> QuerySet:
    """The channels, each with `recent_failures`: its messages not delivered in FAILURE_WINDOW."""
    since = timezone.now() - FAILURE_WINDOW
    return line_channel_list(tenant=tenant).annotate(
        recent_failures=Count(
            "deliveries",
            filter=Q(deliveries__status=LineDelivery.Status.FAILED, deliveries__created_at__gte=since),
        )
    )


def webhook_url(*, channel: LineChannel, request=None) -> str:
    """The address to paste as the Webhook URL in the LINE Developers console: on
    `PUBLIC_BASE_URL` when it is set (behind a proxy the request's own host may be internal)."""
    path = f"/v1/line/{channel.pk}/webhook"
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL + path
    return request.build_absolute_uri(path) if request is not None else path


def line_channel_get(*, tenant: Tenant, channel_id) -> LineChannel:
    channel = LineChannel.objects.for_tenant(tenant).filter(pk=channel_id).first()
    if channel is None or channel.tenant_id != tenant.pk:
        raise NotFound("No such LINE channel.")
    return channel


def line_channel_for_webhook(*, channel_id) -> LineChannel | None:
    """The enabled channel a webhook URL names, whatever its tenant; None if there is none."""
    with rls.unscoped():
        return LineChannel.objects.filter(pk=channel_id, enabled=True).select_related("tenant").first()


def channel_secret(*, channel: LineChannel) -> str:
    return decrypt_secret(channel.channel_secret_encrypted)


def channel_access_token(*, channel: LineChannel) -> str:
    return decrypt_secret(channel.access_token_encrypted)


def line_user_for_contact(*, tenant: Tenant, contact_id) -> LineUser | None:
    return LineUser.objects.for_tenant(tenant).filter(contact_id=contact_id).select_related("channel").first()


def open_conversation(*, tenant: Tenant, line_user: LineUser) -> Conversation | None:
    """The LINE user's conversation still going on (a closed one is history: the next message
    starts a new one, so closing hands the user back to the bot)."""
    return (
        Conversation.objects.for_tenant(tenant)
        .filter(contact_id=line_user.contact_id, channel=Conversation.Channel.LINE)
        .exclude(status=Conversation.Status.CLOSED)
        .order_by("-created_at")
        .first()
    )


def delivery_list(*, tenant: Tenant, channel: LineChannel | None = None) -> QuerySet:
    deliveries = LineDelivery.objects.for_tenant(tenant)
    if channel is not None:
        deliveries = deliveries.filter(channel=channel)
    return deliveries


def recent_failed_deliveries(*, tenant: Tenant, channel: LineChannel, limit: int = 10) -> list[LineDelivery]:
    """The channel's latest messages that were not delivered, newest first, with their user."""
    return list(
        delivery_list(tenant=tenant, channel=channel)
        .filter(status=LineDelivery.Status.FAILED)
        .select_related("line_user")
        .order_by("-created_at", "-id")[:limit]
    )


def undelivered_messages(*, tenant: Tenant, message_ids: list[int]) -> dict[int, str]:
    """Of these conversation messages, those whose delivery to LINE failed (and was not sent by a
    later attempt), with LINE's reason: the `conversations.outbound` lookup of the "line" channel."""
    deliveries = (
        delivery_list(tenant=tenant)
        .filter(message_id__in=message_ids)
        .exclude(status=LineDelivery.Status.PENDING)
        .order_by("created_at", "id")
        .values_list("message_id", "status", "error")
    )
    outcome: dict[int, str] = {}
    for message_id, status, error in deliveries:
        if status == LineDelivery.Status.SENT:
            outcome.pop(message_id, None)
        else:
            outcome[message_id] = error or "Not delivered"
    return outcome
