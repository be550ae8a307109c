"""A curated answer comes first: a question that matches an enabled pair of the tenant gets the
pair's text word for word, streamed, with grounding "faq", no provider call and no tokens."""

import pytest
from asgiref.sync import async_to_sync

from conversations import chat
from conversations.models import Message
from knowledge import faq_services
from knowledge.models import Faq
from testsupport.llm import use_provider
from testsupport.wire_server import wire_server

pytestmark = pytest.mark.django_db

RETURNS_ANSWER = "商品到貨後七天內可申請退貨，請保留發票與完整包裝。"


@pytest.fixture
def returns_faq(tenant_a):
    return faq_services.faq_create(
        tenant=tenant_a.tenant,
        question="退貨要在幾天內申請？",
        alternatives=["可以退貨嗎"],
        answer=RETURNS_ANSWER,
    )


def ask(people, text: str):
    turn = chat.turn_start(
        tenant=people.tenant, user=people.end_user, role="end_user", text=text, channel="api"
    )

    async def collect():
        return [event async for event in chat.turn_answer(turn)]

    events = async_to_sync(collect)()
    return events, Message.objects.filter(conversation=turn.conversation, role="assistant").last()


@pytest.mark.parametrize(
    "question",
    [
        "退貨要在幾天內申請？",  # exact
        "退货要在几天内申请？",  # Simplified for Traditional
        "退貨要在幾天內申請",  # no punctuation
        "請問退貨要幾天內申請",  # a paraphrase above the threshold
        "可以退貨嗎？",  # an alternative phrasing
    ],
)
def test_a_matching_question_gets_the_curated_text_verbatim_with_no_provider_call(
    question, tenant_a, returns_faq, milvus_uri, settings
):
    settings.CHAT_STREAM_COALESCE_MS = 0  # the pieces as they are cut (coalesced, they join in one)
    with wire_server() as server:
        use_provider(tenant_a, server, "gpt-test")
        events, message = ask(tenant_a, question)
        assert server.requests == []  # the provider never heard of it

    tokens = [event["delta"] for event in events if event["type"] == "token"]
    assert len(tokens) > 1 and "".join(tokens) == RETURNS_ANSWER
    done = events[-1]
    assert done["type"] == "done" and done["knowledge"] == "faq"
    assert done["message"]["grounding"] == "faq" and done["message"]["faq_id"] == returns_faq.pk
    assert message.content == RETURNS_ANSWER and message.grounding == Message.Grounding.FAQ
    assert message.faq_id == returns_faq.pk
    assert (message.prompt_tokens, message.completion_tokens, message.usage) == (0, 0, None)
    returns_faq.refresh_from_db()
    assert returns_faq.hit_count == 1 and returns_faq.last_hit_at is not None


def test_a_near_miss_goes_the_usual_way_to_the_provider(tenant_a, returns_faq, milvus_uri):
    with wire_server() as server:
        use_provider(tenant_a, server, "gpt-test")
        events, message = ask(tenant_a, "退貨的運費由誰負擔？")
        assert len(server.requests) == 1

    assert events[-1]["type"] == "done" and events[-1]["knowledge"] != "faq"
    assert message.grounding != Message.Grounding.FAQ and message.content != RETURNS_ANSWER
    assert message.completion_tokens > 0
    returns_faq.refresh_from_db()
    assert returns_faq.hit_count == 0


def test_a_disabled_pair_is_ignored(tenant_a, returns_faq, milvus_uri):
    faq_services.faq_update(faq=returns_faq, data={"enabled": False})
    with wire_server() as server:
        use_provider(tenant_a, server, "gpt-test")
        _events, message = ask(tenant_a, "退貨要在幾天內申請？")
        assert len(server.requests) == 1
    assert message.grounding != Message.Grounding.FAQ


def test_another_tenants_pair_is_never_matched(tenant_a, tenant_b, returns_faq, milvus_uri):
    with wire_server() as server:
        use_provider(tenant_b, server, "gpt-test")
        _events, message = ask(tenant_b, "退貨要在幾天內申請？")
        assert len(server.requests) == 1
    assert message.grounding != Message.Grounding.FAQ and message.content != RETURNS_ANSWER
    assert Faq.objects.get(pk=returns_faq.pk).hit_count == 0


def test_the_tenant_threshold_decides(tenant_a, returns_faq, milvus_uri):
    tenant_a.tenant.settings = {"faq": {"threshold": 1.0}}
    tenant_a.tenant.save()
    assert faq_services.faq_match(tenant=tenant_a.tenant, question="請問退貨要幾天內申請") is None
    assert (
        faq_services.faq_match(tenant=tenant_a.tenant, question="退货要在几天内申请").faq_id == returns_faq.pk
    )
    tenant_a.tenant.settings = {"faq": {"enabled": False}}
    tenant_a.tenant.save()
    assert faq_services.faq_match(tenant=tenant_a.tenant, question="退貨要在幾天內申請？") is None


def test_the_rest_endpoint_answers_with_the_curated_text(tenant_a, returns_faq, milvus_uri):
    with wire_server() as server:
        use_provider(tenant_a, server, "gpt-test")
        response = tenant_a.client("end_user").post(
            f"/v1/tenants/{tenant_a.tenant.pk}/chat", {"message": "退貨要在幾天內申請？"}, format="json"
        )
        assert server.requests == []
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"]["content"] == RETURNS_ANSWER
    assert body["message"]["grounding"] == "faq" and body["message"]["faq_id"] == returns_faq.pk
    assert body["usage"] is None and body["knowledge"] == "faq"
