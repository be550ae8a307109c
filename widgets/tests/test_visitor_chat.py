"""Visitors chat through the same chat service as members (grounding, citations), see only their
own conversations, hand off, rate answers, and meet the open internet's limits."""

import json

import pytest

from conversations import services as conversation_services
from conversations.models import Conversation
from testsupport.people import client_for
from testsupport.widgets import open_session, visitor_client
from widgets.models import Visitor

pytestmark = pytest.mark.django_db


def test_a_visitor_asks_and_gets_a_grounded_answer_with_citations_in_a_widget_conversation(
    widget_a, knowledge_a, tenant_a
):
    session = open_session(widget_a).json()
    client = visitor_client(session)
    response = client.post(
        "/v1/widget/chat",
        {
            "message": "How long is the battery covered by the warranty?",
            "page_url": "https://shop.example.com.tw/p/1",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert "one year" in body["message"]["content"]
    assert body["message"]["citations"][0]["document_title"]
    assert body["knowledge"] == "found"
    conversation = Conversation.objects.get(pk=body["conversation_id"])
    assert conversation.channel == "widget" and conversation.user is None
    visitor = Visitor.objects.get(visitor_id=session["visitor_id"])
    assert conversation.contact == visitor.contact
    assert visitor.contact.details["page_url"] == "https://shop.example.com.tw/p/1"

    # Reload: a new session with the resume token sees the same conversation.
    again = visitor_client(open_session(widget_a, resume_token=session["resume_token"]).json())
    listed = again.get("/v1/widget/conversations").json()
    assert [item["id"] for item in listed["results"]] == [str(conversation.pk)]
    detail = again.get(f"/v1/widget/conversations/{conversation.pk}").json()
    assert [message["role"] for message in detail["messages"]] == ["user", "assistant"]

    # Agents see it in the tenant's inbox, marked as the widget's.
    staff = tenant_a.client("agent").get(f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations").json()
    assert (
        staff["results"][0]["channel"] == "widget" and staff["results"][0]["contact"]["channel"] == "widget"
    )


def test_a_visitor_streams_the_answer_as_server_sent_events(widget_a, knowledge_a):
    client = visitor_client(open_session(widget_a).json())
    response = client.post("/v1/widget/chat/stream", {"message": "退貨要幾天內申請？"}, format="json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    text = b"".join(response).decode()
    assert "event: token" in text and "event: done" in text
    done = json.loads(text.split("event: done\ndata: ")[1].split("\n\n")[0])
    assert done["message"]["citations"]


def test_one_visitor_never_reaches_another_visitors_conversation(widget_a, tenant_a):
    first = visitor_client(open_session(widget_a).json())
    second = visitor_client(open_session(widget_a).json())
    conversation_id = first.post("/v1/widget/chat", {"message": "hello"}, format="json").json()[
        "conversation_id"
    ]
    assert second.get(f"/v1/widget/conversations/{conversation_id}").status_code == 404
    assert (
        second.post(f"/v1/widget/conversations/{conversation_id}/handoff", {}, format="json").status_code
        == 404
    )
    reply = second.post(
        "/v1/widget/chat", {"message": "mine?", "conversation_id": conversation_id}, format="json"
    )
    assert reply.status_code == 404
    assert second.get("/v1/widget/conversations").json()["count"] == 0
    # Nor a member's conversation.
    members = Conversation.objects.create(tenant=tenant_a.tenant, user=tenant_a.end_user, title="x")
    assert first.get(f"/v1/widget/conversations/{members.pk}").status_code == 404


def test_tenant_b_widget_never_reaches_tenant_a_knowledge_or_conversations(widget_a, widget_b, knowledge_a):
    a_client = visitor_client(open_session(widget_a).json())
    a_conversation = a_client.post("/v1/widget/chat", {"message": "hello"}, format="json").json()[
        "conversation_id"
    ]
    b_client = visitor_client(
        open_session(widget_b, origin="https://b.example.com").json(), origin="https://b.example.com"
    )
    answer = b_client.post(
        "/v1/widget/chat", {"message": "How long is the battery covered by the warranty?"}, format="json"
    ).json()
    assert answer["knowledge"] != "found"
    assert answer["message"]["citations"] == []
    assert "one year" not in answer["message"]["content"]
    assert b_client.get(f"/v1/widget/conversations/{a_conversation}").status_code == 404


def test_handoff_feedback_and_an_agents_reply_the_visitor_can_read(widget_a, tenant_a):
    client = visitor_client(open_session(widget_a).json())
    answer = client.post("/v1/widget/chat", {"message": "我要找真人"}, format="json").json()
    conversation_id = answer["conversation_id"]
    rated = client.post(
        f"/v1/widget/conversations/{conversation_id}/messages/{answer['message']['id']}/feedback",
        {"rating": "down", "comment": "沒幫助"},
        format="json",
    )
    assert rated.status_code == 201
    handed = client.post(
        f"/v1/widget/conversations/{conversation_id}/handoff", {"reason": "真人"}, format="json"
    )
    assert handed.status_code == 200 and handed.json()["status"] == "handoff"
    agent = client_for(tenant_a.agent, tenant=tenant_a.tenant)
    agent_reply = agent.post(
        f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation_id}/reply",
        {"message": "您好，我是客服小美。"},
        format="json",
    )
    assert agent_reply.status_code == 201
    messages = client.get(f"/v1/widget/conversations/{conversation_id}").json()["messages"]
    assert messages[-1]["role"] == "agent" and messages[-1]["content"] == "您好，我是客服小美。"
    assert "@" not in (messages[-1]["author"] or "")  # an agent's email is not the visitor's business
    assert messages[1]["feedback"] == {"rating": "down", "comment": "沒幫助"}


def test_visitor_messages_per_minute_are_limited(widget_a, settings):
    settings.WIDGET_VISITOR_MESSAGES_PER_MINUTE = 2
    client = visitor_client(open_session(widget_a).json())
    statuses = [
        client.post("/v1/widget/chat", {"message": "hi"}, format="json").status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    refused = client.post("/v1/widget/chat", {"message": "hi"}, format="json")
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    # Another visitor is not held back by the first.
    other = visitor_client(open_session(widget_a).json())
    assert other.post("/v1/widget/chat", {"message": "hi"}, format="json").status_code == 200


def test_the_widgets_daily_cap_is_a_429_until_tomorrow(widget_a):
    widget_a.daily_message_cap = 2
    widget_a.save()
    clients = [visitor_client(open_session(widget_a).json()) for _ in range(3)]
    statuses = [
        client.post("/v1/widget/chat", {"message": "hi"}, format="json").status_code for client in clients
    ]
    assert statuses == [200, 200, 429]
    refused = clients[0].post("/v1/widget/chat", {"message": "hi"}, format="json")
    assert refused.json()["error"]["code"] == "daily_cap_reached"
    assert int(refused.headers["Retry-After"]) > 0


def test_the_plans_monthly_token_quota_reaches_visitors(widget_a, tenant_a):
    plan = tenant_a.tenant.plan
    plan.monthly_token_quota = 1
    plan.save()
    client = visitor_client(open_session(widget_a).json())
    first = client.post("/v1/widget/chat", {"message": "hi"}, format="json")
    assert first.status_code == 200
    refused = client.post("/v1/widget/chat", {"message": "hi"}, format="json")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_exceeded"


@pytest.mark.parametrize(
    "body", [{}, {"message": ""}, {"message": "x" * 5000}, {"message": "hi", "conversation_id": "x"}]
)
def test_bad_messages_are_400(widget_a, body):
    client = visitor_client(open_session(widget_a).json())
    response = client.post("/v1/widget/chat", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_a_closed_conversation_is_not_continued(widget_a):
    client = visitor_client(open_session(widget_a).json())
    conversation_id = client.post("/v1/widget/chat", {"message": "hi"}, format="json").json()[
        "conversation_id"
    ]
    conversation_services.conversation_close(conversation=Conversation.objects.get(pk=conversation_id))
    again = client.post(
        "/v1/widget/chat", {"message": "hi", "conversation_id": conversation_id}, format="json"
    )
    assert again.status_code == 409


def test_agents_see_a_widget_conversation_marked_as_from_the_website_with_the_page(
    widget_a, tenant_a, client
):
    session = open_session(widget_a, name="陳先生", page_url="https://shop.example.com.tw/cart").json()
    conversation_id = (
        visitor_client(session)
        .post("/v1/widget/chat", {"message": "運費多少？"}, format="json")
        .json()["conversation_id"]
    )
    client.force_login(tenant_a.agent)
    listing = client.get(f"/dashboard/t/{tenant_a.tenant.pk}/conversations/").content.decode()
    assert "陳先生" in listing
    detail = client.get(
        f"/dashboard/t/{tenant_a.tenant.pk}/conversations/{conversation_id}/"
    ).content.decode()
    assert "陳先生" in detail and "https://shop.example.com.tw/cart" in detail
