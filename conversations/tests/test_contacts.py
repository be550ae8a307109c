"""Contacts: customers who reach a tenant without an account (widget visitors, LINE users), served
by the same chat service as members, each seeing only their own conversations."""

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction

from conversations import chat, outbound, selectors, services
from conversations.models import Contact, Conversation, Feedback, Message
from tenants.errors import NotFound, TooManyRequests

pytestmark = pytest.mark.django_db


def ask(people, contact: Contact, text: str, conversation_id=None, channel="widget"):
    turn = chat.turn_start(
        tenant=people.tenant, contact=contact, text=text, conversation_id=conversation_id, channel=channel
    )
    final, message = async_to_sync(chat.turn_answer_whole)(turn)
    return turn, final, message


def test_a_contact_asks_and_the_answer_is_saved_in_their_own_conversation(tenant_a, knowledge_a):
    visitor = services.contact_create(tenant=tenant_a.tenant, channel="widget", name="王小明")

    turn, final, message = ask(tenant_a, visitor, "How long is the battery covered by the warranty?")

    assert final["type"] == "done", final
    assert final["knowledge"] == "found"
    assert message.role == Message.Role.ASSISTANT and "one year" in message.content
    assert message.citations
    conversation = Conversation.objects.get(pk=turn.conversation.pk)
    assert conversation.contact == visitor and conversation.user is None
    assert conversation.channel == Conversation.Channel.WIDGET
    question = conversation.messages.get(role=Message.Role.USER)
    assert question.author is None and question.content.startswith("How long")
    assert list(selectors.contact_conversation_list(tenant=tenant_a.tenant, contact=visitor)) == [
        conversation
    ]

    # The history of a continued conversation reaches the answer: the same conversation goes on.
    again, final, _message = ask(tenant_a, visitor, "And the returns?", conversation_id=conversation.pk)
    assert final["type"] == "done" and again.conversation.pk == conversation.pk
    assert conversation.messages.count() == 4


def test_a_contact_never_reaches_another_contacts_or_a_members_or_another_tenants_conversation(
    tenant_a, tenant_b
):
    first = services.contact_create(tenant=tenant_a.tenant, channel="widget")
    second = services.contact_create(tenant=tenant_a.tenant, channel="widget")
    stranger = services.contact_create(tenant=tenant_b.tenant, channel="line")
    theirs = services.conversation_open_for_contact(
        tenant=tenant_a.tenant, contact=first, conversation_id=None, channel="widget", first_message="hello"
    )
    members = services.conversation_open(
        tenant=tenant_a.tenant,
        user=tenant_a.end_user,
        role="end_user",
        conversation_id=None,
        channel="api",
        first_message="hi",
    )

    for contact, tenant, conversation in [
        (second, tenant_a.tenant, theirs),
        (second, tenant_a.tenant, members),
        (stranger, tenant_b.tenant, theirs),
    ]:
        with pytest.raises(NotFound):
            selectors.contact_conversation_get(
                tenant=tenant, contact=contact, conversation_id=conversation.pk
            )
        with pytest.raises(NotFound):
            chat.turn_start(
                tenant=tenant,
                contact=contact,
                text="let me in",
                conversation_id=conversation.pk,
                channel="widget",
            )
    assert list(selectors.contact_conversation_list(tenant=tenant_a.tenant, contact=second)) == []
    assert theirs.messages.count() == 0  # nothing was written by the refused attempts


def test_the_per_sender_chat_limit_counts_each_contact_on_its_own(tenant_a, settings):
    settings.CHAT_USER_REQUESTS_PER_MINUTE = 2
    chatty = services.contact_create(tenant=tenant_a.tenant, channel="widget")
    quiet = services.contact_create(tenant=tenant_a.tenant, channel="widget")
    for _ in range(2):
        chat.turn_start(tenant=tenant_a.tenant, contact=chatty, text="hello", channel="widget")

    with pytest.raises(TooManyRequests):
        chat.turn_start(tenant=tenant_a.tenant, contact=chatty, text="hello again", channel="widget")
    chat.turn_start(tenant=tenant_a.tenant, contact=quiet, text="hello", channel="widget")


def test_an_agents_reply_reaches_the_deliverer_of_the_conversations_channel_once_committed(
    tenant_a, django_capture_on_commit_callbacks
):
    delivered = []
    installed = outbound._deliverers.get("line")  # the LINE channel app's own deliverer
    outbound.register(
        "line", lambda tenant_id, conversation_id, event: delivered.append((conversation_id, event))
    )
    try:
        line_user = services.contact_create(tenant=tenant_a.tenant, channel="line", name="LINE user")
        on_line = services.conversation_open_for_contact(
            tenant=tenant_a.tenant,
            contact=line_user,
            conversation_id=None,
            channel="line",
            first_message="hi",
        )
        visitor = services.contact_create(tenant=tenant_a.tenant, channel="widget")
        on_widget = services.conversation_open_for_contact(
            tenant=tenant_a.tenant,
            contact=visitor,
            conversation_id=None,
            channel="widget",
            first_message="hi",
        )
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            with transaction.atomic():
                services.agent_reply(conversation=on_line, agent=tenant_a.agent, content="您好，我是客服。")
        assert delivered == []  # nothing before the commit
        for callback in callbacks:
            callback()
        agent_messages = [event for _id, event in delivered if event["type"] == "agent_message"]
        assert [event["message"]["content"] for event in agent_messages] == ["您好，我是客服。"]
        assert {conversation_id for conversation_id, _event in delivered} == {on_line.pk}

        delivered.clear()
        with django_capture_on_commit_callbacks(execute=True):
            services.agent_reply(conversation=on_widget, agent=tenant_a.agent, content="Hello")
        assert delivered == []  # the widget has no outbound deliverer: its socket gets the event
    finally:
        outbound._deliverers.pop("line", None)
        if installed is not None:
            outbound.register("line", installed)


def test_a_contact_rates_an_answer_once_and_forgetting_the_contact_removes_their_conversations(tenant_a):
    visitor = services.contact_create(tenant=tenant_a.tenant, channel="widget")
    conversation = services.conversation_open_for_contact(
        tenant=tenant_a.tenant, contact=visitor, conversation_id=None, channel="widget", first_message="hi"
    )
    answer = services.message_answer_save(
        conversation=conversation,
        content="Hello!",
        citations=[],
        usage=None,
        status=Message.Status.COMPLETE,
        latency_ms=1,
        first_token_ms=1,
    )
    _feedback, created = services.feedback_give(message=answer, contact=visitor, rating="up", comment="")
    assert created
    feedback, created = services.feedback_give(message=answer, contact=visitor, rating="down", comment="no")
    assert not created and feedback.rating == "down"
    assert (
        selectors.feedback_for(tenant=tenant_a.tenant, messages=[answer], contact=visitor)[answer.pk]
        == feedback
    )

    services.contact_delete(contact=visitor)

    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(pk=answer.pk).exists()
    assert not Feedback.objects.filter(pk=feedback.pk).exists()
