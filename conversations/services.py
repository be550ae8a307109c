"""Every write to conversations: opening one, adding messages, handoff to a human, feedback."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import events, outbound, selectors
from conversations.models import Contact, Conversation, Feedback, Message
from llm.base import Usage
from tenants.audit import audit_record, person_for_tenant
from tenants.errors import APIError, Conflict
from tenants.models import Tenant

TITLE_LENGTH = 80


def message_as_event(message: Message) -> dict:
    """The shape every channel (REST, SSE, WebSocket) uses for one message."""
    return {
        "id": message.pk,
        "conversation_id": str(message.conversation_id),
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "grounding": message.grounding or None,
        "faq_id": message.faq_id,
        "citations": message.citations,
        "usage": message.usage,
        "author": (
            person_for_tenant(message.author, tenant_id=message.tenant_id, name_first=True)
            if message.author_id
            else None
        ),
        "created_at": message.created_at.isoformat(),
    }


def _announce(conversation: Conversation, event: dict, *, to_staff: bool = False) -> None:
    """An event of the conversation, to its sockets (and the staff's) and to its channel."""
    events.publish(
        tenant_id=conversation.tenant_id, conversation_id=conversation.pk, event=event, to_staff=to_staff
    )
    outbound.deliver(
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.pk,
        channel=conversation.channel,
        event=event,
    )


def contact_create(
    *, tenant: Tenant, channel: str, name: str = "", email: str = "", details: dict | None = None
) -> Contact:
    return Contact.objects.create(
        tenant=tenant, channel=channel, name=name[:200], email=email, details=details or {}
    )


def contact_update(*, contact: Contact, **fields) -> Contact:
    """Change what the channel learned of a contact (name, email, details); a call with nothing
    new still marks the contact as seen now."""
    changed = [
        name for name, value in fields.items() if value is not None and getattr(contact, name) != value
    ]
    for name in changed:
        setattr(contact, name, fields[name])
    contact.save(update_fields=[*changed, "last_seen_at"])
    return contact


def contact_delete(*, contact: Contact) -> None:
    """Forget a contact on request: their conversations, messages and ratings go with them."""
    audit_record(
        tenant=contact.tenant,
        action="contact.delete",
        target=contact,
        details={"channel": contact.channel, "conversations": contact.conversations.count()},
    )
    contact.delete()


@transaction.atomic
def contact_merge(*, source: Contact, target: Contact) -> int:
    """Give `target` everything `source` has (conversations, ratings), then forget `source`:
    the same customer, first known under one contact and now under another. Both must be of
    one tenant. Returns how many conversations moved. The caller decides whether the two are
    the same person and audits it."""
    if source.tenant_id != target.tenant_id or source.pk == target.pk:
        raise ValueError("contact_merge() merges two contacts of one tenant")
    # `update()` leaves `updated_at` alone: the conversations keep their place in every list.
    moved = Conversation.objects.for_tenant_id(source.tenant_id).filter(contact=source).update(contact=target)
    Feedback.objects.for_tenant_id(source.tenant_id).filter(contact=source).update(contact=target)
    source.delete()
    return moved


def conversation_open_for_contact(
    *, tenant: Tenant, contact: Contact, conversation_id, channel: str, first_message: str
) -> Conversation:
    """The contact's conversation a message continues (404 for anyone else's), or a new one."""
    if conversation_id:
        conversation = selectors.contact_conversation_get(
            tenant=tenant, contact=contact, conversation_id=conversation_id
        )
        if conversation.status == Conversation.Status.CLOSED:
            raise Conflict(
                "This conversation is closed. Start a new one by sending no conversation_id.",
                code="conversation_closed",
            )
        return conversation
    title = " ".join(first_message.split())[:TITLE_LENGTH]
    return Conversation.objects.create(tenant=tenant, contact=contact, channel=channel, title=title)


def conversation_open(
    *, tenant: Tenant, user, role: str, conversation_id, channel: str, first_message: str
) -> Conversation:
    """The conversation a chat message continues, or a new one when no id is given."""
    if conversation_id:
        conversation = selectors.conversation_get(
            tenant=tenant, viewer=user, role=role, conversation_id=conversation_id
        )
        if conversation.user_id != user.pk:
            # Staff see the tenant's conversations, but a chat message is the customer's own
            # words (role `user`): staff answer a customer as agents, through the reply endpoint.
            raise APIError(
                _(
                    "Only the customer writes as the customer in this conversation. Answer as an "
                    "agent: POST …/chat/conversations/{id}/reply."
                ),
                code="reply_as_agent",
                details={"conversation_id": [_("Not your conversation: reply as an agent instead.")]},
            )
        if conversation.status == Conversation.Status.CLOSED:
            raise Conflict(
                "This conversation is closed. Start a new one by sending no conversation_id.",
                code="conversation_closed",
            )
        return conversation
    title = " ".join(first_message.split())[:TITLE_LENGTH]
    return Conversation.objects.create(tenant=tenant, user=user, channel=channel, title=title)


@transaction.atomic
def message_user_add(*, conversation: Conversation, user, content: str) -> Message:
    """The customer's message: `user` is the member who wrote it, None for a contact (the
    conversation's contact wrote it)."""
    message = Message.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        role=Message.Role.USER,
        author=user,
        content=content,
    )
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    if conversation.status == Conversation.Status.HANDOFF:
        # A human holds the conversation: the agents watching it see the message live.
        _announce(conversation, {"type": "user_message", "message": message_as_event(message)}, to_staff=True)
    return message


@transaction.atomic
def message_answer_save(
    *,
    conversation: Conversation,
    content: str,
    citations: list[dict],
    usage: Usage | None,
    status: str,
    latency_ms: int | None,
    first_token_ms: int | None,
    grounding: str = "",
    faq_id: int | None = None,
) -> Message:
    message = Message.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content=content,
        status=status,
        grounding=grounding,
        faq_id=faq_id,
        citations=citations,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        provider=usage.provider if usage else "",
        model=usage.model if usage else "",
        latency_ms=latency_ms,
        first_token_ms=first_token_ms,
    )
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    return message


def _set_status(conversation: Conversation, **fields) -> Conversation:
    for name, value in fields.items():
        setattr(conversation, name, value)
    conversation.save(update_fields=[*fields, "updated_at"])
    event = {
        "type": "status",
        "conversation_id": str(conversation.pk),
        "status": conversation.status,
        "assigned_agent": (
            person_for_tenant(conversation.assigned_agent, tenant_id=conversation.tenant_id)
            if conversation.assigned_agent_id
            else None
        ),
    }
    _announce(conversation, event, to_staff=True)
    return conversation


@transaction.atomic
def conversation_handoff(*, conversation: Conversation, reason: str = "") -> Conversation:
    """Ask for a human: the conversation joins the tenant's queue and the bot falls silent."""
    if conversation.status == Conversation.Status.CLOSED:
        raise Conflict("This conversation is closed.", code="conversation_closed")
    if conversation.status == Conversation.Status.HANDOFF:
        return conversation
    return _set_status(
        conversation,
        status=Conversation.Status.HANDOFF,
        handoff_reason=reason[:300],
        handoff_at=timezone.now(),
    )


@transaction.atomic
def conversation_take(*, conversation: Conversation, agent) -> Conversation:
    if conversation.status == Conversation.Status.CLOSED:
        raise Conflict("This conversation is closed.", code="conversation_closed")
    if conversation.assigned_agent_id and conversation.assigned_agent_id != agent.pk:
        raise Conflict(
            f"{person_for_tenant(conversation.assigned_agent, tenant_id=conversation.tenant_id)} "
            "already holds this conversation.",
            code="already_assigned",
        )
    fields = {"status": Conversation.Status.HANDOFF, "assigned_agent": agent}
    if conversation.handoff_at is None:
        fields["handoff_at"] = timezone.now()
    return _set_status(conversation, **fields)


@transaction.atomic
def agent_reply(*, conversation: Conversation, agent, content: str) -> Message:
    """A human's answer, delivered live to the end user's socket. Replying takes the
    conversation if nobody holds it yet."""
    if conversation.status == Conversation.Status.CLOSED:
        raise Conflict("This conversation is closed.", code="conversation_closed")
    if conversation.assigned_agent_id is None or conversation.status != Conversation.Status.HANDOFF:
        conversation_take(conversation=conversation, agent=agent)
    elif conversation.assigned_agent_id != agent.pk:
        raise Conflict(
            f"{person_for_tenant(conversation.assigned_agent, tenant_id=conversation.tenant_id)} "
            "holds this conversation.",
            code="already_assigned",
        )
    message = Message.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        role=Message.Role.AGENT,
        grounding=Message.Grounding.AGENT,
        author=agent,
        content=content,
    )
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=now)
    # Only the first answer after the handoff counts for the agents' response time.
    Conversation.objects.filter(pk=conversation.pk, first_agent_reply_at__isnull=True).update(
        first_agent_reply_at=now
    )
    _announce(conversation, {"type": "agent_message", "message": message_as_event(message)})
    return message


@transaction.atomic
def conversation_close(*, conversation: Conversation) -> Conversation:
    """Close a conversation, as resolved: by a person if it was ever handed off, else by the bot."""
    if conversation.status == Conversation.Status.CLOSED:
        return conversation
    now = timezone.now()
    resolution = (
        Conversation.Resolution.AFTER_HANDOFF if conversation.handoff_at else Conversation.Resolution.BOT
    )
    return _set_status(
        conversation, status=Conversation.Status.CLOSED, closed_at=now, resolved_at=now, resolution=resolution
    )


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    audit_record(
        tenant=conversation.tenant,
        action="conversation.delete",
        target=conversation,
        details={
            "title": conversation.title,
            "user": conversation.user.email if conversation.user_id else None,
        },
    )
    conversation.delete()


@transaction.atomic
def feedback_give(
    *, message: Message, user=None, contact: Contact | None = None, rating: str, comment: str
) -> tuple[Feedback, bool]:
    """One rating per rater (a member, or a contact) and message; giving it again replaces it."""
    if message.role not in (Message.Role.ASSISTANT, Message.Role.AGENT):
        raise APIError("Only answers can be rated.", code="not_an_answer")
    if (user is None) == (contact is None):
        raise ValueError("feedback_give() takes a user or a contact")
    feedback, created = Feedback.objects.update_or_create(
        tenant_id=message.tenant_id,
        message=message,
        user=user,
        contact=contact,
        defaults={"rating": rating, "comment": comment},
    )
    return feedback, created
