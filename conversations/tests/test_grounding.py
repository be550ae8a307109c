"""Every answer records what it stands on, and a closed conversation how it was resolved: the
figures analytics is built from."""

import pytest
from asgiref.sync import async_to_sync

from conversations import chat, services
from conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db


def answer(people, text: str):
    turn = chat.turn_start(
        tenant=people.tenant, user=people.end_user, role="end_user", text=text, channel="api"
    )
    final, message = async_to_sync(chat.turn_answer_whole)(turn)
    assert final["type"] == "done", final
    return turn.conversation, message


def test_an_answer_from_the_documents_is_grounded_in_knowledge(tenant_a, knowledge_a):
    _conversation, message = answer(tenant_a, "How long is the battery covered by the warranty?")
    assert message.grounding == Message.Grounding.KNOWLEDGE


def test_an_answer_without_a_matching_passage_is_recorded_as_no_knowledge(tenant_a, knowledge_a):
    _conversation, message = answer(tenant_a, "Do you sell helicopters to penguins on Mars?")
    assert message.grounding == Message.Grounding.NO_KNOWLEDGE
    response = tenant_a.client("end_user").get(
        f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{message.conversation_id}"
    )
    assert [m["grounding"] for m in response.json()["messages"]] == [None, "no_knowledge"]


def test_a_conversation_closed_by_the_bot_alone_or_after_a_person_records_its_resolution(tenant_a):
    open_args = {"tenant": tenant_a.tenant, "role": "end_user", "conversation_id": None, "channel": "api"}
    by_bot = services.conversation_open(user=tenant_a.end_user, first_message="hi", **open_args)
    services.conversation_close(conversation=by_bot)
    by_bot.refresh_from_db()
    assert by_bot.resolution == Conversation.Resolution.BOT and by_bot.resolved_at is not None
    assert by_bot.first_agent_reply_at is None

    by_person = services.conversation_open(user=tenant_a.end_user, first_message="help", **open_args)
    services.conversation_handoff(conversation=by_person, reason="asked for a person")
    reply = services.agent_reply(conversation=by_person, agent=tenant_a.agent, content="I am here.")
    first_reply_at = Conversation.objects.get(pk=by_person.pk).first_agent_reply_at
    services.agent_reply(conversation=by_person, agent=tenant_a.agent, content="Anything else?")
    services.conversation_close(conversation=by_person)

    by_person.refresh_from_db()
    assert reply.grounding == Message.Grounding.AGENT
    assert by_person.first_agent_reply_at == first_reply_at is not None  # the first reply counts
    assert by_person.resolution == Conversation.Resolution.AFTER_HANDOFF
