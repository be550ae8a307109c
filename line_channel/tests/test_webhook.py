"""The LINE webhook end to end: signed calls from LINE, answered through the chat service, sent
back to a local fake of LINE's Messaging API (tasks run eagerly, as the worker would run them)."""

import json

import pytest

from conversations import services as conversation_services
from conversations.models import Contact, Conversation, Message
from line_channel.models import LineChannel, LineDelivery, LineEvent, LineUser
from testsupport.environment import committed
from testsupport.line import (
    SECRET_A,
    SECRET_B,
    TOKEN_A,
    follow_event,
    post_webhook,
    sign,
    sticker_event,
    text_event,
)

pytestmark = pytest.mark.django_db


def test_only_a_correctly_signed_call_is_processed(anonymous, channel_a, fake_line, eager_ingestion):
    event = text_event("你好")
    body = json.dumps({"events": [event]}).encode()
    wrong = post_webhook(anonymous, channel_a, None, body=body, signature=sign(body, "another-secret-000000"))
    missing = post_webhook(anonymous, channel_a, None, body=body, signature=False)
    changed = post_webhook(
        anonymous, channel_a, None, body=body.replace(b"\\u4f60", b"\\u6211"), signature=sign(body, SECRET_A)
    )
    for response in (wrong, missing, changed):
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == "invalid_signature"
    assert LineEvent.objects.count() == 0 and fake_line.calls == []

    assert post_webhook(anonymous, channel_a, None, body=body).status_code == 200
    assert LineEvent.objects.count() == 1
    assert len(fake_line.sent("reply")) == 1


def test_the_consoles_verify_call_with_no_events_is_200(anonymous, channel_a, fake_line):
    response = post_webhook(anonymous, channel_a, [])
    assert response.status_code == 200 and response.json() == {"accepted": 0}
    assert LineEvent.objects.count() == 0


def test_a_chinese_question_gets_one_grounded_reply_and_a_redelivery_gets_none(
    anonymous, tenant_a, channel_a, fake_line, knowledge_a
):
    event = text_event("退貨政策是什麼？商品到貨後幾天內可以退貨？")
    assert post_webhook(anonymous, channel_a, [event]).status_code == 200

    replies = fake_line.texts("reply")
    assert len(replies) == 1, fake_line.calls
    answer = "\n".join(replies[0])
    assert "七天" in answer
    assert answer.endswith("來源：returns") and "[1]" not in answer
    assert fake_line.sent("reply")[0].token == TOKEN_A
    conversation = Conversation.objects.get(channel="line")
    assert conversation.tenant == tenant_a.tenant
    assert conversation.contact.name == "陳小美"  # the profile, asked once
    bot = conversation.messages.get(role=Message.Role.ASSISTANT)
    assert bot.grounding == Message.Grounding.KNOWLEDGE and bot.usage
    assert LineDelivery.objects.get(message=bot).status == LineDelivery.Status.SENT

    redelivered = {**event, "deliveryContext": {"isRedelivery": True}}
    assert post_webhook(anonymous, channel_a, [redelivered]).status_code == 200
    assert len(fake_line.sent("reply")) == 1 and fake_line.sent("push") == []
    assert conversation.messages.count() == 2

    # A second question continues the same conversation; the profile is not asked again.
    post_webhook(anonymous, channel_a, [text_event("運費多少？")])
    assert len(fake_line.sent("reply")) == 2
    assert Conversation.objects.filter(channel="line").count() == 1
    assert len(fake_line.sent("profile")) == 1


def test_a_late_answer_goes_by_push(anonymous, channel_a, fake_line, knowledge_a):
    post_webhook(anonymous, channel_a, [text_event("運費多少？", age_seconds=120)])
    assert fake_line.sent("reply") == []
    pushes = fake_line.sent("push")
    assert len(pushes) == 1 and pushes[0].body["to"] == "U-alice"
    assert "八十元" in "".join(fake_line.texts("push")[0])
    assert LineDelivery.objects.get().kind == LineDelivery.Kind.PUSH


def test_a_used_reply_token_falls_back_to_push(anonymous, channel_a, fake_line, knowledge_a):
    fake_line.used_reply_tokens.add("token-used-before")
    post_webhook(anonymous, channel_a, [text_event("運費多少？", reply_token="token-used-before")])
    assert fake_line.sent("reply") == [] and len(fake_line.sent("push")) == 1


def test_a_sticker_gets_the_fixed_reply_without_an_llm_call(anonymous, channel_a, fake_line, eager_ingestion):
    post_webhook(anonymous, channel_a, [sticker_event()])
    assert fake_line.texts("reply") == [["謝謝！我只看得懂文字訊息，請直接輸入您的問題，我會為您解答。"]]
    assert not Message.objects.exists()  # no question, no answer, no tokens


def test_the_handoff_keyword_queues_the_conversation_and_agents_replies_are_pushed(
    anonymous, tenant_a, channel_a, fake_line, knowledge_a
):
    post_webhook(anonymous, channel_a, [text_event("我要找真人客服")])
    conversation = Conversation.objects.get(channel="line")
    assert conversation.status == Conversation.Status.HANDOFF
    assert fake_line.texts("reply") == [["客服人員將盡快在這裡回覆您。"]]
    assert not conversation.messages.filter(role=Message.Role.ASSISTANT).exists()

    # The bot stays silent while the person holds the conversation.
    post_webhook(anonymous, channel_a, [text_event("運費多少？")])
    assert len(fake_line.sent("reply")) == 1
    assert conversation.messages.filter(role=Message.Role.USER).count() == 2

    # The agent answers from the dashboard: the reply is pushed to the LINE user.
    agent = tenant_a.client("agent")
    with committed():
        response = agent.post(
            f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation.pk}/reply",
            {"message": "您好，運費是八十元。"},
            format="json",
        )
    assert response.status_code == 201, response.content
    assert fake_line.texts("push") == [["您好，運費是八十元。"]]
    assert fake_line.sent("push")[0].body["to"] == "U-alice"
    delivery = LineDelivery.objects.get(kind="push")
    assert delivery.status == LineDelivery.Status.SENT and delivery.message.role == Message.Role.AGENT

    # Closing hands the user back to the bot: the next question is answered in a new conversation.
    with committed():
        agent.post(
            f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation.pk}/close", {}, format="json"
        )
    post_webhook(anonymous, channel_a, [text_event("運費多少？")])
    assert len(fake_line.sent("reply")) == 2 and "八十元" in "".join(fake_line.texts("reply")[1])
    assert Conversation.objects.filter(channel="line").count() == 2


def test_a_long_agent_reply_is_split_into_line_sized_messages(
    tenant_a, channel_a, fake_line, eager_ingestion
):
    contact = conversation_services.contact_create(tenant=tenant_a.tenant, channel="line")
    LineUser.objects.create(tenant=tenant_a.tenant, channel=channel_a, line_user_id="U-bob", contact=contact)
    conversation = conversation_services.conversation_open_for_contact(
        tenant=tenant_a.tenant, contact=contact, conversation_id=None, channel="line", first_message="hi"
    )
    long_reply = "這是一段很長的說明。" * 1300  # 13,000 characters
    with committed():
        conversation_services.agent_reply(conversation=conversation, agent=tenant_a.agent, content=long_reply)
    (messages,) = fake_line.texts("push")
    assert len(messages) == 3 and all(len(text) <= 5000 for text in messages)
    assert all(text.endswith("。") for text in messages)
    assert "".join(messages) == long_reply


def test_follow_gets_the_greeting_and_unfollow_closes_the_conversation(
    anonymous, channel_a, fake_line, knowledge_a
):
    post_webhook(anonymous, channel_a, [follow_event("follow")])
    assert fake_line.texts("reply") == [["歡迎加入！有任何問題都可以問我。"]]
    post_webhook(anonymous, channel_a, [text_event("運費多少？")])
    conversation = Conversation.objects.get(channel="line")
    assert conversation.status == Conversation.Status.ACTIVE

    post_webhook(anonymous, channel_a, [follow_event("unfollow")])
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED
    assert LineUser.objects.get().following is False


def test_a_500_then_200_is_delivered_once(anonymous, channel_a, fake_line, knowledge_a):
    fake_line.fail_next(500)
    post_webhook(anonymous, channel_a, [text_event("運費多少？")])
    assert len(fake_line.sent("reply")) == 1
    delivery = LineDelivery.objects.get()
    assert delivery.status == LineDelivery.Status.SENT and delivery.attempts == 2


def test_persistent_5xx_is_recorded_as_not_delivered(anonymous, channel_a, fake_line, knowledge_a):
    fake_line.fail_next(503, 503, 503, 503, 503, 503)
    post_webhook(anonymous, channel_a, [text_event("運費多少？")])
    delivery = LineDelivery.objects.get()
    assert delivery.status == LineDelivery.Status.FAILED and "503" in delivery.error
    assert fake_line.calls == [] or fake_line.sent("reply") == []


def test_an_invalid_access_token_marks_the_channel_as_needing_attention(
    anonymous, channel_a, fake_line, eager_ingestion
):
    fake_line.tokens.clear()
    post_webhook(anonymous, channel_a, [sticker_event()])
    channel_a.refresh_from_db()
    assert channel_a.needs_attention and "access token" in channel_a.attention_reason
    assert LineDelivery.objects.get().status == LineDelivery.Status.FAILED


def test_an_exhausted_quota_gets_a_polite_reply(anonymous, tenant_a, channel_a, fake_line, eager_ingestion):
    plan = tenant_a.tenant.plan
    plan.monthly_token_quota = 1
    plan.save()
    post_webhook(anonymous, channel_a, [text_event("第一個問題")])
    post_webhook(anonymous, channel_a, [text_event("第二個問題")])
    replies = fake_line.texts("reply")
    assert len(replies) == 2
    assert replies[1] == ["很抱歉，本月的智慧客服額度已用完。請改用其他方式聯絡我們，或要求真人客服。"]


def test_group_messages_are_ignored_unless_the_channel_allows_them_and_is_mentioned(
    anonymous, channel_a, fake_line, knowledge_a
):
    in_group = text_event("運費多少？", source={"type": "group", "groupId": "C-group", "userId": "U-alice"})
    post_webhook(anonymous, channel_a, [in_group])
    assert fake_line.calls == [] and not Contact.objects.exists()

    LineChannel.objects.filter(pk=channel_a.pk).update(allow_groups=True)
    post_webhook(anonymous, channel_a, [{**in_group, "webhookEventId": "G2"}])
    assert fake_line.calls == []  # not mentioned
    mentioned = text_event(
        "@bot 運費多少？", source={"type": "group", "groupId": "C-group", "userId": "U-alice"}
    )
    mentioned["message"]["mention"] = {
        "mentionees": [{"index": 0, "length": 4, "type": "user", "isSelf": True}]
    }
    post_webhook(anonymous, channel_a, [mentioned])
    assert len(fake_line.sent("reply")) == 1


def test_a_webhook_for_tenant_bs_channel_never_reaches_tenant_as_knowledge_or_conversations(
    anonymous, tenant_a, tenant_b, channel_a, channel_b, fake_line, knowledge_a
):
    post_webhook(
        anonymous, channel_b, [text_event("退貨政策是什麼？商品到貨後幾天內可以退貨？")], secret=SECRET_B
    )
    (reply,) = fake_line.texts("reply")
    assert "七天" not in "".join(reply)
    assert fake_line.sent("reply")[0].token.startswith("token-of-tenant-b")
    conversation = Conversation.objects.get(channel="line")
    assert conversation.tenant == tenant_b.tenant
    assert not Conversation.objects.filter(tenant=tenant_a.tenant).exists()
    assert conversation.messages.get(role="assistant").grounding == Message.Grounding.NO_KNOWLEDGE
    # A's secret does not open B's webhook.
    body = json.dumps({"events": [text_event("hi")]}).encode()
    assert post_webhook(anonymous, channel_b, None, body=body, secret=SECRET_A).status_code == 401
