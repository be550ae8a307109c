"""Reads of conversations. Each takes the tenant, and the viewer's role decides what it sees:
an end user only their own conversations, staff all of the tenant's."""

import datetime as dt
from collections import defaultdict

from django.db.models import Count, QuerySet

from conversations.models import Contact, Conversation, Feedback, Message
from tenants.errors import NotFound
from tenants.models import Tenant
from tenants.roles import Role


def _visible(*, tenant: Tenant, viewer, role: str) -> QuerySet:
    conversations = Conversation.objects.for_tenant(tenant)
    if role == Role.END_USER:
        conversations = conversations.filter(user=viewer)
    return conversations


def conversation_list(
    *,
    tenant: Tenant,
    viewer,
    role: str,
    status: str | None = None,
    user_id: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    assigned_to=None,
    unassigned: bool = False,
) -> QuerySet:
    conversations = _visible(tenant=tenant, viewer=viewer, role=role)
    if status:
        conversations = conversations.filter(status=status)
    if user_id is not None:
        conversations = conversations.filter(user_id=user_id)
    if since:
        conversations = conversations.filter(created_at__date__gte=since)
    if until:
        conversations = conversations.filter(created_at__date__lte=until)
    if assigned_to is not None:
        conversations = conversations.filter(assigned_agent=assigned_to)
    if unassigned:
        conversations = conversations.filter(assigned_agent__isnull=True)
    # Explicit order: an aggregate's GROUP BY drops the model's default ordering.
    return (
        conversations.select_related("user", "contact", "assigned_agent")
        .annotate(message_count=Count("messages"))
        .order_by("-updated_at", "id")
    )


def conversation_get(*, tenant: Tenant, viewer, role: str, conversation_id) -> Conversation:
    """The conversation if the viewer may see it; 404 otherwise (another tenant's, another end
    user's, or none), so that existence is not revealed."""
    conversation = (
        _visible(tenant=tenant, viewer=viewer, role=role)
        .select_related("user", "contact", "assigned_agent")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def contact_conversation_list(*, tenant: Tenant, contact: Contact) -> QuerySet:
    """A contact's own conversations, newest first: what a widget visitor may list."""
    return (
        Conversation.objects.for_tenant(tenant)
        .filter(contact=contact)
        .annotate(message_count=Count("messages"))
        .order_by("-updated_at", "id")
    )


def contact_conversation_get(*, tenant: Tenant, contact: Contact, conversation_id) -> Conversation:
    """The contact's conversation; 404 for any other (another contact's, a member's, another
    tenant's), so that existence is not revealed."""
    conversation = Conversation.objects.for_tenant(tenant).filter(contact=contact, pk=conversation_id).first()
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def contact_get(*, tenant: Tenant, contact_id: int) -> Contact:
    contact = Contact.objects.for_tenant(tenant).filter(pk=contact_id).first()
    if contact is None:
        raise NotFound("No such contact.")
    return contact


def message_list(*, tenant: Tenant, conversation: Conversation) -> QuerySet:
    return Message.objects.for_tenant(tenant).filter(conversation=conversation).select_related("author")


def message_get(*, tenant: Tenant, conversation: Conversation, message_id: int) -> Message:
    message = message_list(tenant=tenant, conversation=conversation).filter(pk=message_id).first()
    if message is None:
        raise NotFound("No such message in this conversation.")
    return message


def history(*, tenant: Tenant, conversation: Conversation, before: Message, limit: int) -> list[Message]:
    """The latest `limit` messages before `before`, oldest first, for the prompt's window."""
    earlier = (
        message_list(tenant=tenant, conversation=conversation)
        .filter(created_at__lte=before.created_at)
        .exclude(pk=before.pk)
        .exclude(role=Message.Role.SYSTEM)
        .order_by("-created_at", "-id")[:limit]
    )
    return list(reversed(earlier))


def feedback_for(
    *, tenant: Tenant, messages: list[Message], user=None, contact: Contact | None = None
) -> dict[int, Feedback]:
    """The ratings a member (or a contact) gave these messages."""
    rows = Feedback.objects.for_tenant(tenant).filter(message__in=messages)
    rows = rows.filter(contact=contact) if contact is not None else rows.filter(user=user)
    return {row.message_id: row for row in rows}


def feedback_by_message(*, tenant: Tenant, messages: list[Message]) -> dict[int, list[Feedback]]:
    """Every rating of these messages, by any user (staff review them all)."""
    grouped: dict[int, list[Feedback]] = defaultdict(list)
    rows = Feedback.objects.for_tenant(tenant).filter(message__in=messages).select_related("user", "contact")
    for row in rows:
        grouped[row.message_id].append(row)
    return grouped
