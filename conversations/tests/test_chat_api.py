"""Chat over REST and SSE with no configuration (the offline provider), grounded in documents
ingested for real (Milvus Lite, the embedding model); conversations, feedback, limits, usage."""

import json

import pytest

from conversations.models import Conversation, Feedback, Message
from knowledge.models import Chunk
from llm.models import UsageDay
from llm.services import assistant_update
from tenants.services import membership_create
from testsupport.api import assert_error
from testsupport.llm import use_provider
from testsupport.people import client_for, make_user
from testsupport.wire_server import wire_server

pytestmark = pytest.mark.django_db


def chat(people, message: str, role: str = "end_user", client=None, **extra):
    return (client or people.client(role)).post(
        f"/v1/tenants/{people.tenant.pk}/chat", {"message": message, **extra}, format="json"
    )


def stream(people, message: str, role: str = "end_user", **extra):
    return people.client(role).post(
        f"/v1/tenants/{people.tenant.pk}/chat/stream",
        {"message": message, **extra},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )


def sse_events(response) -> list[tuple[str, dict]]:
    """(event, data) pairs of a text/event-stream body."""
    body = b"".join(response).decode()
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_rest_chat_answers_from_the_documents_with_citations_to_real_chunks(tenant_a, knowledge_a):
    response = chat(tenant_a, "How long is the battery covered by the warranty?")

    assert response.status_code == 200, response.content
    body = response.json()
    message = body["message"]
    assert message["role"] == "assistant"
    assert message["status"] == "complete"
    assert "not generated" in message["content"]  # the offline provider says what it is
    assert "one year" in message["content"]
    assert body["knowledge"] == "found"
    assert message["citations"], message
    warranty = knowledge_a[1]
    for citation in message["citations"]:
        chunk = Chunk.objects.get(pk=citation["chunk_id"])
        assert chunk.tenant_id == tenant_a.tenant.pk
        assert citation["document_id"] == chunk.document_id
        assert citation["text"] == chunk.text
    assert message["citations"][0]["document_id"] == warranty.pk
    assert body["usage"]["provider"] == "offline"
    assert body["usage"]["completion_tokens"] > 0

    # The conversation and both messages are kept.
    conversation = Conversation.objects.get(pk=body["conversation_id"])
    assert conversation.user == tenant_a.user("end_user")
    assert [m.role for m in conversation.messages.all()] == ["user", "assistant"]
    listed = tenant_a.client("end_user").get(f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations").json()
    assert [item["id"] for item in listed["results"]] == [str(conversation.pk)]
    detail = tenant_a.client("end_user").get(
        f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation.pk}"
    )
    assert [m["role"] for m in detail.json()["messages"]] == ["user", "assistant"]


def test_traditional_chinese_question_gets_a_traditional_chinese_answer(tenant_a, knowledge_a):
    response = chat(tenant_a, "運費怎麼算？離島要多少錢？")

    assert response.status_code == 200, response.content
    message = response.json()["message"]
    assert "知識庫" in message["content"]  # the offline label, in Traditional Chinese
    assert "一百五十元" in message["content"]
    assert message["citations"][0]["document_id"] == knowledge_a[0].pk


def test_a_question_the_knowledge_does_not_cover_is_answered_with_no_invention(tenant_a, knowledge_a):
    response = chat(tenant_a, "What is the capital of Mongolia?")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["knowledge"] == "no_match"
    assert body["message"]["citations"] == []
    assert "Ulaanbaatar" not in body["message"]["content"]


def test_sse_streams_tokens_then_one_done_event_with_the_whole_message(tenant_a, knowledge_a, settings):
    settings.CHAT_STREAM_COALESCE_MS = 0  # every delta its own event (coalesced: test_websocket.py)
    response = stream(tenant_a, "What does the warranty not cover?")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    events = sse_events(response)
    kinds = [kind for kind, _ in events]
    assert kinds.count("done") == 1 and kinds[-1] == "done"
    assert kinds.count("token") >= 5 and set(kinds[:-1]) == {"token"}
    done = events[-1][1]
    assert "".join(data["delta"] for kind, data in events if kind == "token") == done["message"]["content"]
    assert done["message"]["citations"]
    assert Message.objects.filter(pk=done["message"]["id"], role="assistant").exists()


def test_a_conversation_continues_and_keeps_its_history(tenant_a, knowledge_a):
    first = chat(tenant_a, "How long is the warranty?").json()
    second = chat(tenant_a, "And the batteries?", conversation_id=first["conversation_id"])

    assert second.status_code == 200
    assert second.json()["conversation_id"] == first["conversation_id"]
    assert Message.objects.filter(conversation_id=first["conversation_id"]).count() == 4


def test_end_users_see_only_their_own_conversations_and_staff_see_all(tenant_a, knowledge_a):
    mine = chat(tenant_a, "How long is the warranty?").json()["conversation_id"]
    other = make_user("other.end.user@example.com")
    membership_create(tenant=tenant_a.tenant, user=other, role="end_user")
    other_client = client_for(other, tenant_a.tenant)
    theirs = chat(tenant_a, "Is accidental damage covered?", client=other_client).json()["conversation_id"]

    def listed(client):
        return {
            item["id"]
            for item in client.get(f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations").json()["results"]
        }

    assert listed(tenant_a.client("end_user")) == {mine}
    assert listed(tenant_a.client("agent")) == {mine, theirs}
    response = tenant_a.client("end_user").get(
        f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{theirs}"
    )
    assert_error(response, 404)
    # Nor may they continue it.
    assert_error(chat(tenant_a, "hello", conversation_id=theirs), 404)


def test_tenant_b_cannot_read_or_continue_tenant_a_conversations(tenant_a, tenant_b, knowledge_a):
    conversation = chat(tenant_a, "How long is the warranty?").json()["conversation_id"]

    for role in ("tenant_admin", "agent", "end_user"):
        client = tenant_b.client(role)
        # Through tenant A's URL (not theirs) and through their own URL with A's id.
        assert_error(client.get(f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation}"), 404)
        assert_error(client.get(f"/v1/tenants/{tenant_b.tenant.pk}/chat/conversations/{conversation}"), 404)
        assert_error(chat(tenant_b, "hello", role=role, conversation_id=conversation), 404)
        if role != "agent":  # agents may not delete at all: 403 before any lookup
            url = f"/v1/tenants/{tenant_b.tenant.pk}/chat/conversations/{conversation}"
            assert_error(client.delete(url), 404)
    assert Conversation.objects.filter(pk=conversation).exists()


def test_feedback_on_an_answer_is_saved_once_per_user(tenant_a, knowledge_a):
    body = chat(tenant_a, "How long is the warranty?").json()
    base = f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{body['conversation_id']}/messages"
    url = f"{base}/{body['message']['id']}/feedback"
    client = tenant_a.client("end_user")

    assert client.post(url, {"rating": "up", "comment": "清楚"}, format="json").status_code == 201
    assert client.post(url, {"rating": "down"}, format="json").status_code == 200
    assert Feedback.objects.get().rating == "down"
    assert_error(client.post(url, {"rating": "5"}, format="json"), 400)
    user_message = Message.objects.get(conversation_id=body["conversation_id"], role="user")
    assert_error(client.post(f"{base}/{user_message.pk}/feedback", {"rating": "up"}, format="json"), 400)
    assert_error(client.post(f"{base}/999999/feedback", {"rating": "up"}, format="json"), 404)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": ""},
        {"message": "   "},
        {"message": ["a"]},
        {"message": "x" * 4001},
        {"message": "hi", "conversation_id": "nope"},
    ],
)
def test_bad_chat_input_is_a_400_and_saves_nothing(tenant_a, body):
    for path in ("chat", "chat/stream"):
        response = tenant_a.client("end_user").post(
            f"/v1/tenants/{tenant_a.tenant.pk}/{path}", body, format="json"
        )
        assert_error(response, 400)
    assert not Conversation.objects.exists()


def test_monthly_token_quota_gives_429_with_retry_after_on_rest_and_sse(tenant_a, knowledge_a):
    plan = tenant_a.tenant.plan
    plan.monthly_token_quota = 10
    plan.save()
    assert chat(tenant_a, "How long is the warranty?").status_code == 200  # uses more than 10

    for response in (chat(tenant_a, "And batteries?"), stream(tenant_a, "And batteries?")):
        assert_error(response, 429, "quota_exceeded")
        assert int(response["Retry-After"]) > 0
    assert Message.objects.filter(role="user").count() == 1


def test_requests_per_minute_limit_gives_429(tenant_a, settings):
    plan = tenant_a.tenant.plan
    plan.requests_per_minute = 2
    plan.save()
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0  # no knowledge needed for this test

    codes = [chat(tenant_a, f"question {n}").status_code for n in range(3)]

    assert codes[:2] == [200, 200]
    assert codes[2] == 429


def test_usage_is_recorded_per_day_and_readable_by_tenant_admins_only(tenant_a, knowledge_a):
    body = chat(tenant_a, "How long is the warranty?").json()
    day = UsageDay.objects.get(tenant=tenant_a.tenant)
    assert day.completion_tokens == body["usage"]["completion_tokens"]
    assert day.messages == 1

    response = tenant_a.client("tenant_admin").get(f"/v1/tenants/{tenant_a.tenant.pk}/usage?days=7")
    assert response.status_code == 200
    usage = response.json()
    assert len(usage["days"]) == 7
    assert usage["totals"]["messages"] == 1
    assert usage["totals"]["conversations"] == 1
    assert usage["totals"]["documents_added"] == 2
    assert (
        usage["quotas"]["monthly_tokens"]["used"]
        == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    for role in ("agent", "end_user"):
        assert_error(tenant_a.client(role).get(f"/v1/tenants/{tenant_a.tenant.pk}/usage"), 403)
    assert_error(tenant_a.client("tenant_admin").get(f"/v1/tenants/{tenant_a.tenant.pk}/usage?days=0"), 400)


def test_handoff_silences_the_bot_until_an_agent_answers_and_closes(tenant_a, knowledge_a):
    conversation = chat(tenant_a, "How long is the warranty?").json()["conversation_id"]
    base = f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation}"
    end_user, agent = tenant_a.client("end_user"), tenant_a.client("agent")

    response = end_user.post(f"{base}/handoff", {"reason": "I want a person"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "handoff"
    queue = agent.get(
        f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations?status=handoff&assigned=none"
    ).json()
    assert [item["id"] for item in queue["results"]] == [conversation]

    silent = chat(tenant_a, "Hello? Anyone?", conversation_id=conversation).json()
    assert silent["message"] is None and silent["status"] == "handoff"

    assert_error(end_user.post(f"{base}/take"), 403)
    assert_error(end_user.post(f"{base}/reply", {"message": "hi"}, format="json"), 403)
    assert agent.post(f"{base}/take").json()["assigned_agent"] == tenant_a.user("agent").email
    reply = agent.post(f"{base}/reply", {"message": "您好，我是客服小王。"}, format="json")
    assert reply.status_code == 201 and reply.json()["role"] == "agent"
    # Another agent cannot reply over the one holding it.
    assert_error(tenant_a.client("tenant_admin").post(f"{base}/reply", {"message": "x"}, format="json"), 409)
    assert agent.post(f"{base}/close").json()["status"] == "closed"
    assert_error(chat(tenant_a, "one more", conversation_id=conversation), 409)

    roles = [m["role"] for m in end_user.get(base).json()["messages"]]
    assert roles == ["user", "assistant", "user", "agent"]


def test_the_tenant_rule_hands_off_when_the_knowledge_has_no_answer(tenant_a, knowledge_a):
    tenant = tenant_a.tenant
    tenant.settings = {**tenant.settings, "assistant": {"handoff_when_no_knowledge": True}}
    tenant.save()

    body = chat(tenant_a, "What is the capital of Mongolia?").json()

    assert body["handed_off"] is True
    assert Conversation.objects.get(pk=body["conversation_id"]).status == "handoff"


def test_deleting_a_conversation_owner_or_admin_only(tenant_a, knowledge_a):
    conversation = chat(tenant_a, "How long is the warranty?").json()["conversation_id"]
    url = f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation}"

    assert_error(tenant_a.client("agent").delete(url), 403)
    assert tenant_a.client("end_user").delete(url).status_code == 204
    assert not Message.objects.filter(conversation_id=conversation).exists()


@pytest.mark.faults
@pytest.mark.parametrize("failing_model", ["fail-500", "hang"])
def test_a_failing_provider_hands_the_question_to_the_fallback(tenant_a, knowledge_a, failing_model):
    with wire_server(hang_seconds=5) as server:
        assistant_update(
            tenant=tenant_a.tenant,
            data={
                "providers": [
                    {
                        "kind": "openai",
                        "model": failing_model,
                        "base_url": server.base_url,
                        "api_key": server.api_key,
                        "timeout_seconds": 1,
                    },
                    {
                        "kind": "anthropic",
                        "model": "claude-test",
                        "base_url": server.root_url,
                        "api_key": server.api_key,
                    },
                ]
            },
        )
        response = chat(tenant_a, "How long is the battery covered?")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["usage"]["provider"] == "anthropic"
    assert body["message"]["content"].startswith("Answer from claude-test [1]")
    assert body["message"]["citations"][0]["document_id"] == knowledge_a[1].pk
    # The grounded prompt reached the provider: the passage inside the reference delimiters.
    sent = server.requests_for("claude-test")[-1].body
    assert "<reference_data>" in json.dumps(sent, ensure_ascii=False)
    assert "Batteries are covered for one year" in json.dumps(sent, ensure_ascii=False)


@pytest.mark.faults
def test_with_no_fallback_the_user_gets_a_clear_error_and_the_question_is_kept(tenant_a, knowledge_a):
    with wire_server() as server:
        use_provider(tenant_a, server, "fail-500")
        response = chat(tenant_a, "How long is the battery covered?")
        events = sse_events(stream(tenant_a, "And the screen?"))

    assert_error(response, 503, "provider_unavailable")
    assert [kind for kind, _ in events] == ["error"]
    assert events[0][1]["error"]["code"] == "provider_unavailable"
    assert list(Message.objects.order_by("id").values_list("role", "content")) == [
        ("user", "How long is the battery covered?"),
        ("user", "And the screen?"),
    ]
    assert UsageDay.objects.get(tenant=tenant_a.tenant).requests == 2


@pytest.mark.faults
def test_a_stream_cut_half_way_keeps_the_partial_answer_and_says_so(tenant_a, knowledge_a):
    with wire_server() as server:
        use_provider(tenant_a, server, "cut-stream")
        events = sse_events(stream(tenant_a, "How long is the battery covered?"))

    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "error" and "token" in kinds
    assert events[-1][1]["error"]["code"] == "provider_interrupted"
    answer = Message.objects.get(role="assistant")
    assert answer.status == "interrupted"
    assert answer.content == "".join(data["delta"] for kind, data in events if kind == "token")


@pytest.mark.parametrize(
    ("question", "notice"),
    [("How long is the warranty?", "knowledge base is unavailable"), ("保固多久？", "知識庫暫時無法使用")],
)
@pytest.mark.faults
def test_with_the_index_unreachable_chat_answers_without_knowledge_and_says_so(
    tenant_a, knowledge_a, settings, question, notice
):
    from knowledge import vector_index

    settings.MILVUS_URI = "http://127.0.0.1:9"  # nothing listens there
    vector_index._forget_client()
    try:
        body = chat(tenant_a, question).json()
    finally:
        vector_index._forget_client()

    assert body["knowledge"] == "knowledge_unavailable"
    assert body["message"]["content"].startswith(("(", "（"))
    assert notice in body["message"]["content"]
    assert body["message"]["citations"] == []


@pytest.mark.parametrize("role", ["agent", "tenant_admin"])
def test_staff_cannot_post_into_a_customers_conversation_as_the_customer(tenant_a, settings, role):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    conversation = chat(tenant_a, "Where is my parcel?").json()["conversation_id"]

    for send in (chat, stream):
        response = send(tenant_a, "Cancel my order, please.", role=role, conversation_id=conversation)
        assert_error(response, 400, "reply_as_agent")
    assert list(Message.objects.filter(conversation_id=conversation).values_list("role", flat=True)) == [
        "user",
        "assistant",
    ]
    # Their own conversations they continue as before; a reply as an agent still goes through.
    own = chat(tenant_a, "Hello", role=role).json()["conversation_id"]
    assert chat(tenant_a, "Again", role=role, conversation_id=own).status_code == 200
    base = f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation}"
    reply = tenant_a.client(role).post(f"{base}/reply", {"message": "On its way."}, format="json")
    assert reply.status_code == 201 and reply.json()["role"] == "agent"
