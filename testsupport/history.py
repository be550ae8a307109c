"""Conversations, messages and ratings written at a chosen time, as history: for the analytics,
export and retention tests that count them by hand."""

from conversations.models import Conversation, Feedback, Message


def conversation(tenant, *, at, channel, user=None, contact=None, title="", **fields):
    made = Conversation.objects.create(
        tenant=tenant, user=user, contact=contact, channel=channel, title=title
    )
    Conversation.objects.filter(pk=made.pk).update(created_at=at, updated_at=at, **fields)
    made.refresh_from_db()
    return made


def message(made, *, at, role, content, grounding="", citations=None, author=None):
    added = Message.objects.create(
        tenant_id=made.tenant_id,
        conversation=made,
        role=role,
        content=content,
        grounding=grounding,
        citations=citations or [],
        author=author,
    )
    Message.objects.filter(pk=added.pk).update(created_at=at)
    return added


def rate(answer, *, rating, user=None, contact=None):
    return Feedback.objects.create(
        tenant_id=answer.tenant_id, message=answer, user=user, contact=contact, rating=rating
    )
