"""Every dashboard page against every role: allowed roles 200, refused roles 403, another
tenant's people 404; and the conversation pages (list, detail, take, reply, close, inbox,
live chat token, overview, usage)."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Message
from llm.base import Usage
from llm.services import usage_record
from reports.views import usage_chart
from testsupport.api import assert_error
from testsupport.dashboard import signed_in

pytestmark = pytest.mark.django_db

ADMINS = {"tenant_admin", "platform_admin"}
STAFF = {"tenant_admin", "agent", "platform_admin"}
PAGES = {
    "overview": STAFF,
    "documents": STAFF,
    "documents-status": STAFF,
    "knowledge-search": STAFF,
    "conversations": STAFF,
    "live-chat": STAFF,
    "inbox": STAFF,
    "members": ADMINS,
    "settings": ADMINS,
    "settings-retrieval": ADMINS,
    "usage": ADMINS,
    "widgets": ADMINS,
    "widget-create": ADMINS,
    "widget-preview": ADMINS,
}
ROLES = ["tenant_admin", "agent", "end_user", "platform_admin"]


def person(people, platform_admin, role):
    return platform_admin if role == "platform_admin" else people.user(role)


def page(name: str, tenant, **kwargs) -> str:
    return reverse(f"dashboard:{name}", kwargs={"tenant_id": tenant.pk, **kwargs})


def conversation_of(people, text="Where is my parcel?", role="end_user") -> Conversation:
    user = people.user(role)
    conversation = services.conversation_open(
        tenant=people.tenant, user=user, role=role, conversation_id=None, channel="api", first_message=text
    )
    services.message_user_add(conversation=conversation, user=user, content=text)
    return conversation


@pytest.mark.parametrize("name", sorted(PAGES))
@pytest.mark.parametrize("role", ROLES)
def test_each_page_answers_by_role(tenant_a, platform_admin, name, role):
    response = signed_in(person(tenant_a, platform_admin, role)).get(page(name, tenant_a.tenant))
    assert response.status_code == (200 if role in PAGES[name] else 403), response.content[:300]


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_page_hides_another_tenant(tenant_a, tenant_b, name):
    response = signed_in(tenant_b.tenant_admin).get(page(name, tenant_a.tenant))
    assert response.status_code == 404


def test_a_conversation_of_another_tenant_is_not_found(tenant_a, tenant_b):
    conversation = conversation_of(tenant_a)
    client = signed_in(tenant_b.tenant_admin)
    assert (
        client.get(page("conversation", tenant_b.tenant, conversation_id=conversation.pk)).status_code == 404
    )
    for action in ("take", "reply", "close"):
        response = client.post(
            page(f"conversation-{action}", tenant_b.tenant, conversation_id=conversation.pk),
            {"content": "hi"},
        )
        assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.status == "active" and conversation.messages.count() == 1


def test_the_conversation_detail_shows_messages_citations_and_feedback(tenant_a):
    conversation = conversation_of(tenant_a)
    answer = services.message_answer_save(
        conversation=conversation,
        content="It ships within two days [1].",
        citations=[
            {"document_id": 1, "document_title": "Shipping", "chunk_id": 7, "text": "We ship in 2 days."}
        ],
        usage=None,
        status="complete",
        latency_ms=10,
        first_token_ms=5,
    )
    services.feedback_give(message=answer, user=tenant_a.end_user, rating="down", comment="Too vague")
    response = signed_in(tenant_a.agent).get(
        page("conversation", tenant_a.tenant, conversation_id=conversation.pk)
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Where is my parcel?" in html and "It ships within two days" in html
    assert '<details class="citation">' in html and "We ship in 2 days." in html
    assert "Too vague" in html


def test_the_conversation_list_filters_and_paginates_without_n_plus_one(
    tenant_a, django_assert_max_num_queries
):
    for number in range(30):
        conversation_of(tenant_a, text=f"Question {number}")
    handed = conversation_of(tenant_a, text="I want a human", role="agent")
    services.conversation_handoff(conversation=handed)
    client = signed_in(tenant_a.agent)
    url = page("conversations", tenant_a.tenant)
    with django_assert_max_num_queries(12):
        first = client.get(url)
    assert len(first.context["page"].object_list) == 25
    assert first.context["page"].paginator.count == 31
    second = client.get(url, {"page": 2})
    assert len(second.context["page"].object_list) == 6
    by_status = client.get(url, {"status": "handoff"})
    assert [item.pk for item in by_status.context["page"]] == [handed.pk]
    by_user = client.get(url, {"user": tenant_a.agent.email})
    assert [item.pk for item in by_user.context["page"]] == [handed.pk]
    nobody = client.get(url, {"user": "stranger@example.com"})
    assert nobody.context["page"].paginator.count == 0
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert client.get(url, {"since": tomorrow}).context["page"].paginator.count == 0
    invalid = client.get(url, {"since": tomorrow, "until": "2020-01-01"})
    assert invalid.status_code == 200 and invalid.context["form"].errors


def test_an_agent_takes_replies_and_closes_from_the_inbox(tenant_a):
    conversation = conversation_of(tenant_a)
    services.conversation_handoff(conversation=conversation, reason="asked for a human")
    client = signed_in(tenant_a.agent)
    inbox = client.get(page("inbox", tenant_a.tenant), {"conversation": str(conversation.pk)})
    assert [item.pk for item in inbox.context["page"]] == [conversation.pk]
    assert inbox.context["conversation"] == conversation

    taken = client.post(
        page("conversation-take", tenant_a.tenant, conversation_id=conversation.pk), {"next": "inbox"}
    )
    assert taken.status_code == 302 and "inbox" in taken["Location"]
    reply = client.post(
        page("conversation-reply", tenant_a.tenant, conversation_id=conversation.pk),
        {"content": "I am on it."},
        HTTP_ACCEPT="application/json",
    )
    assert reply.status_code == 200
    assert reply.json()["reply"]["content"] == "I am on it."
    message = Message.objects.get(pk=reply.json()["reply"]["id"])
    assert message.role == "agent" and message.author == tenant_a.agent

    other_agent = signed_in(tenant_a.tenant_admin)
    refused = other_agent.post(
        page("conversation-reply", tenant_a.tenant, conversation_id=conversation.pk),
        {"content": "Me too"},
        HTTP_ACCEPT="application/json",
    )
    assert refused.status_code == 409 and not refused.json()["ok"]

    closed = client.post(page("conversation-close", tenant_a.tenant, conversation_id=conversation.pk))
    assert closed.status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == "closed" and conversation.assigned_agent == tenant_a.agent


def test_actions_need_csrf(tenant_a):
    conversation = conversation_of(tenant_a)
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_a.agent)
    response = client.post(page("conversation-close", tenant_a.tenant, conversation_id=conversation.pk))
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.status == "active"


def test_live_chat_renders_a_socket_token_for_the_tenant_and_renews_it(tenant_a, settings):
    from tenants.websocket import SocketToken

    client = signed_in(tenant_a.agent)
    response = client.get(page("live-chat", tenant_a.tenant))
    socket = response.context["socket"]
    token = SocketToken(socket["token"])
    assert token["tenant_id"] == str(tenant_a.tenant.pk) and token["role"] == "agent"
    assert token["exp"] - token["iat"] == settings.SOCKET_TOKEN_SECONDS
    assert socket["path"] == f"/ws/tenants/{tenant_a.tenant.pk}/chat/"
    assert socket["renew_seconds"] == settings.SOCKET_TOKEN_SECONDS // 2
    assert socket["token"] in response.content.decode()
    assert client.get(page("socket-token", tenant_a.tenant)).status_code == 405
    fresh = client.post(page("socket-token", tenant_a.tenant)).json()
    assert SocketToken(fresh["token"])["user_id"] == str(tenant_a.agent.pk)
    assert fresh["renew_seconds"] == settings.SOCKET_TOKEN_SECONDS // 2


def test_the_dashboards_socket_token_is_refused_by_the_api(tenant_a):
    from rest_framework.test import APIClient

    client = signed_in(tenant_a.tenant_admin)
    tokens = [
        client.get(page("live-chat", tenant_a.tenant)).context["socket"]["token"],
        client.get(page("inbox", tenant_a.tenant)).context["socket"]["token"],
        client.post(page("socket-token", tenant_a.tenant)).json()["token"],
    ]
    for token in tokens:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert_error(api.get(f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations"), 401)
        assert_error(api.get("/v1/auth/me"), 401)
        assert_error(api.post("/v1/auth/refresh", {"refresh": token}, format="json"), 401)


def test_a_dashboard_page_view_stores_no_refresh_token(tenant_a):
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    client = signed_in(tenant_a.agent)
    for name in ("live-chat", "inbox"):
        assert client.get(page(name, tenant_a.tenant)).status_code == 200
    assert client.post(page("socket-token", tenant_a.tenant)).status_code == 200
    assert not OutstandingToken.objects.exists()


def test_the_overview_shows_this_month_against_the_quotas_with_a_chart(tenant_a):
    conversation_of(tenant_a)
    usage_record(
        tenant=tenant_a.tenant,
        usage=Usage(prompt_tokens=1200, completion_tokens=300, provider="offline", model=""),
    )
    response = signed_in(tenant_a.tenant_admin).get(page("overview", tenant_a.tenant))
    html = response.content.decode()
    assert response.context["cards"][0]["used"] == 1500
    assert response.context["conversations_this_month"] == 1
    assert "<svg" in html and 'class="chart-bar"' in html and "<polyline" in html


def test_the_chart_scales_bars_and_line_to_their_maxima():
    today = dt.date(2026, 1, 2)
    chart = usage_chart(
        [
            {"day": today - dt.timedelta(days=1), "conversations": 2, "tokens": 0},
            {"day": today, "conversations": 4, "tokens": 100},
        ]
    )
    assert chart["bars"][1]["height"] == 150 and chart["bars"][0]["height"] == 75
    assert chart["line"].endswith(",10.0") and chart["max_tokens"] == 100


def test_usage_shows_the_days_and_totals(tenant_a):
    usage_record(
        tenant=tenant_a.tenant,
        usage=Usage(prompt_tokens=10, completion_tokens=5, provider="offline", model=""),
    )
    response = signed_in(tenant_a.tenant_admin).get(page("usage", tenant_a.tenant), {"days": 7})
    assert response.status_code == 200
    assert len(response.context["days"]) == 7
    assert response.context["report"]["totals"]["tokens"] == 15


def test_pages_follow_the_browsers_language(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    response = client.get(page("overview", tenant_a.tenant), HTTP_ACCEPT_LANGUAGE="zh-TW,zh;q=0.9")
    html = response.content.decode()
    assert '<html lang="zh-hant">' in html
    assert "總覽" in html and "文件" in html and "對話" in html and "登出" in html and "設定" in html
    assert "Overview" not in html
    login = Client().get("/dashboard/login/", HTTP_ACCEPT_LANGUAGE="zh-TW")
    assert "登入" in login.content.decode()


def test_the_language_switch_overrides_the_browser(tenant_a):
    client = signed_in(tenant_a.agent)
    overview = page("overview", tenant_a.tenant)
    switched = client.post("/dashboard/language/", {"language": "zh-hant", "next": overview})
    assert switched.status_code == 302 and switched["Location"] == overview
    html = client.get(overview, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "總覽" in html
    client.post("/dashboard/language/", {"language": "en", "next": overview})
    assert "Overview" in client.get(overview, HTTP_ACCEPT_LANGUAGE="zh-TW").content.decode()


def test_platform_admins_get_a_socket_token_that_the_consumer_accepts(tenant_a, platform_admin):
    from tenants.websocket import SocketToken

    response = signed_in(platform_admin).get(page("live-chat", tenant_a.tenant))
    token = SocketToken(response.context["socket"]["token"])
    assert token["role"] == "platform_admin" and token["tenant_id"] is None


def test_tenant_pages_are_never_cached(tenant_a):
    response = signed_in(tenant_a.agent).get(page("live-chat", tenant_a.tenant))
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_the_inbox_lists_the_queue_without_n_plus_one(tenant_a, django_assert_max_num_queries):
    for number in range(12):
        services.conversation_handoff(conversation=conversation_of(tenant_a, text=f"Help {number}"))
    conversation_of(tenant_a, text="Still with the bot")
    client = signed_in(tenant_a.agent)
    with django_assert_max_num_queries(12):
        response = client.get(page("inbox", tenant_a.tenant))
    assert response.context["page"].paginator.count == 12
    missing = client.get(page("inbox", tenant_a.tenant), {"conversation": "not-a-uuid"})
    assert missing.status_code == 200 and "conversation" not in missing.context


def test_an_empty_reply_is_refused_and_nothing_changes(tenant_a):
    conversation = conversation_of(tenant_a)
    response = signed_in(tenant_a.agent).post(
        page("conversation-reply", tenant_a.tenant, conversation_id=conversation.pk),
        {"content": ""},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400 and response.json()["message"] == "Write a reply first."
    conversation.refresh_from_db()
    assert conversation.assigned_agent is None and conversation.messages.count() == 1
