"""The LINE channel through a real Celery worker process over Redis (not eager tasks): the webhook
answers at once, the worker answers the event from the tenant's knowledge and replies through the
fake LINE API; a redelivery queues nothing; a handoff, then an agent's reply pushed by the worker."""

import time

import pytest

from conversations.models import Conversation, Message
from line_channel.models import LineDelivery, LineEvent
from platform_project.celery import app
from testsupport.environment import committed, wait_for
from testsupport.line import post_webhook, text_event

pytestmark = pytest.mark.service


def test_a_real_worker_answers_on_line_and_pushes_an_agents_reply(
    anonymous, tenant_a, channel_a, fake_line, knowledge_a, celery_worker_process
):
    app.conf.task_always_eager = False  # `knowledge_a` ingested in this process; the rest is the worker's
    celery_worker_process(LINE_API_BASE=fake_line.base_url, LINE_RETRY_DELAYS="0.05,0.1")

    question = text_event("退貨政策是什麼？商品到貨後幾天內可以退貨？")
    started = time.monotonic()
    response = post_webhook(anonymous, channel_a, [question])
    acknowledged = time.monotonic() - started
    assert response.status_code == 200 and response.json() == {"accepted": 1}
    assert acknowledged < 2, f"the webhook took {acknowledged:.2f} s to answer"

    replies = wait_for(lambda: fake_line.texts("reply"), seconds=120)
    assert replies, LineEvent.objects.values("status", "error")
    assert "七天" in "\n".join(replies[0]) and "[1]" not in "\n".join(replies[0])
    event = wait_for(lambda: LineEvent.objects.filter(status="done").first(), seconds=10)
    assert event is not None
    conversation = Conversation.objects.get(channel="line")
    answer = conversation.messages.get(role=Message.Role.ASSISTANT)
    assert answer.grounding == Message.Grounding.KNOWLEDGE
    assert LineDelivery.objects.get(message=answer).status == LineDelivery.Status.SENT

    # LINE redelivers the same event: nothing is queued for it.
    redelivered = {**question, "deliveryContext": {"isRedelivery": True}}
    assert post_webhook(anonymous, channel_a, [redelivered]).json() == {"accepted": 0}

    # The user asks for a person; the worker queues the conversation and says so.
    post_webhook(anonymous, channel_a, [text_event("我要找真人客服")])
    assert wait_for(lambda: len(fake_line.sent("reply")) == 2, seconds=60)
    assert fake_line.texts("reply")[1] == ["客服人員將盡快在這裡回覆您。"]
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.HANDOFF

    # The agent's reply is pushed by the worker, not by the agent's request.
    with committed():
        reply = tenant_a.client("agent").post(
            f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation.pk}/reply",
            {"message": "您好，七天內都可以退貨。"},
            format="json",
        )
    assert reply.status_code == 201, reply.content
    assert wait_for(lambda: fake_line.texts("push"), seconds=60) == [["您好，七天內都可以退貨。"]]
    assert fake_line.sent("push")[0].body["to"] == "U-alice"
    assert len(fake_line.sent("reply")) == 2  # the redelivered question was never answered again
