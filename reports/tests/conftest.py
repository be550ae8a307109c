"""Hand-counted conversations for the analytics and export tests (see `counted_a`)."""

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from conversations.models import Contact, Conversation
from testsupport.history import conversation, message, rate


@dataclass
class Counted:
    conversations: dict = field(default_factory=dict)
    contacts: dict = field(default_factory=dict)


@pytest.fixture
def counted_a(tenant_a, tenant_b) -> Counted:
    """Tenant A, counted by hand:

    1. api, end user, resolved by the bot: "退貨政策是什麼？" → knowledge (thumbs up)
    2. widget visitor, handed off, agent after 60 s, resolved after handoff:
       "營業時間？" → faq; "請問火星車票怎麼買" → no_knowledge; agent reply
    3. api, end user, handed off, agent after 300 s, still open:
       "火星车票怎么买" (Simplified) → no_knowledge (thumbs down); agent reply
    4. LINE user, idle two days, never closed (abandoned): "退費要多久？" → knowledge (thumbs down)

    Totals: 4 conversations, 12 messages, 5 questions, 5 answers (1 faq, 2 knowledge,
    2 no_knowledge), 2 agent messages, 2 handoffs; 1 by the bot, 1 after handoff, 1 abandoned,
    1 open; feedback 1 up, 2 down; first response 60 s and 300 s. Tenant B has one
    conversation with the same unanswered question, never counted for A.
    """
    now = timezone.now()
    # An hour ago, but today (local) even just after midnight, so that "today" holds three.
    midnight = dt.datetime.combine(timezone.localdate(), dt.time.min, tzinfo=timezone.get_current_timezone())
    hour_ago = max(now - dt.timedelta(hours=1), midnight + dt.timedelta(minutes=1))
    tenant = tenant_a.tenant
    counted = Counted()
    visitor = Contact.objects.create(tenant=tenant, channel="widget", name="王小明")
    line_user = Contact.objects.create(tenant=tenant, channel="line", name="")
    counted.contacts = {"visitor": visitor, "line_user": line_user}

    first = conversation(
        tenant,
        at=hour_ago,
        channel="api",
        user=tenant_a.end_user,
        status="closed",
        resolution="bot",
        resolved_at=hour_ago,
        closed_at=hour_ago,
    )
    message(first, at=hour_ago, role="user", content="退貨政策是什麼？")
    answer = message(
        first,
        at=hour_ago + dt.timedelta(seconds=2),
        role="assistant",
        content="七天內可退貨，=請保留發票。",
        grounding="knowledge",
        citations=[{"document_id": 1, "document_title": "退貨政策", "chunk_id": 1, "text": "七天"}],
    )
    rate(answer, rating="up", user=tenant_a.end_user)

    handoff = hour_ago + dt.timedelta(minutes=5)
    second = conversation(
        tenant,
        at=hour_ago + dt.timedelta(minutes=1),
        channel="widget",
        contact=visitor,
        status="closed",
        handoff_at=handoff,
        first_agent_reply_at=handoff + dt.timedelta(seconds=60),
        resolution="after_handoff",
        resolved_at=handoff + dt.timedelta(minutes=10),
    )
    message(second, at=hour_ago + dt.timedelta(minutes=1), role="user", content="營業時間？")
    message(
        second,
        at=hour_ago + dt.timedelta(minutes=1, seconds=1),
        role="assistant",
        content="每天 9 點到 18 點。",
        grounding="faq",
    )
    message(second, at=hour_ago + dt.timedelta(minutes=2), role="user", content="請問火星車票怎麼買")
    message(
        second,
        at=hour_ago + dt.timedelta(minutes=2, seconds=1),
        role="assistant",
        content="資料中找不到。",
        grounding="no_knowledge",
    )
    message(
        second,
        at=handoff + dt.timedelta(seconds=60),
        role="agent",
        content="我們不賣火星車票。",
        grounding="agent",
        author=tenant_a.agent,
    )

    handoff = hour_ago + dt.timedelta(minutes=20)
    third = conversation(
        tenant,
        at=hour_ago + dt.timedelta(minutes=15),
        channel="api",
        user=tenant_a.end_user,
        status="handoff",
        handoff_at=handoff,
        first_agent_reply_at=handoff + dt.timedelta(seconds=300),
    )
    Conversation.objects.filter(pk=third.pk).update(updated_at=now)
    message(third, at=hour_ago + dt.timedelta(minutes=15), role="user", content="火星车票怎么买")
    unanswered = message(
        third,
        at=hour_ago + dt.timedelta(minutes=15, seconds=1),
        role="assistant",
        content="找不到。",
        grounding="no_knowledge",
    )
    rate(unanswered, rating="down", user=tenant_a.end_user)
    message(
        third,
        at=handoff + dt.timedelta(seconds=300),
        role="agent",
        content="請稍候。",
        grounding="agent",
        author=tenant_a.agent,
    )

    two_days_ago = now - dt.timedelta(days=2)
    fourth = conversation(tenant, at=two_days_ago, channel="line", contact=line_user)
    message(fourth, at=two_days_ago, role="user", content="退費要多久？")
    slow = message(
        fourth,
        at=two_days_ago + dt.timedelta(seconds=3),
        role="assistant",
        content="約七個工作天。",
        grounding="knowledge",
    )
    rate(slow, rating="down", contact=line_user)

    counted.conversations = {"bot": first, "after_handoff": second, "open": third, "abandoned": fourth}

    other = conversation(tenant_b.tenant, at=hour_ago, channel="api", user=tenant_b.end_user)
    message(other, at=hour_ago, role="user", content="火星車票怎麼買")
    b_answer = message(other, at=hour_ago, role="assistant", content="找不到。", grounding="no_knowledge")
    rate(b_answer, rating="down", user=tenant_b.end_user)
    return counted
