"""Reads of the LINE channel; each takes the tenant explicitly, except the webhook's lookup of a
channel by its id (the caller is LINE: the tenant is what the channel says, checked by the
signature before anything else is read)."""

from django.db.models import QuerySet

from conversations.models import Conversation
from line_channel.models import LineChannel, LineDelivery, LineUser
from llm.crypto import decrypt_secret
from tenants import rls
from tenants.errors import NotFound
from tenants.models import Tenant


def line_channel_list(*, tenant: Tenant) -> QuerySet:
    return LineChannel.objects.for_tenant(tenant).order_by("created_at", "id")


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
