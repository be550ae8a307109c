"""The LINE channels' dashboard pages: tenant admins connect, change, check and disconnect their
LINE Official Accounts (secrets write-only), see what needs their attention and what was not
delivered; agents and end users are refused, another tenant's channel does not exist; LINE
conversations are marked in the inbox, with the replies LINE never got."""

import pytest

from conversations import services as conversation_services
from conversations.models import Message
from line_channel.models import LineChannel, LineDelivery, LineUser
from line_channel.selectors import channel_access_token, channel_secret
from tenants.models import AuditEvent
from testsupport.dashboard import dashboard_url, signed_in
from testsupport.environment import committed
from testsupport.line import TOKEN_A

pytestmark = pytest.mark.django_db

SECRET = "abcdef0123456789abcdef0123456789"
TOKEN = "a-long-lived-channel-access-token-for-the-dashboard"
FORM = {
    "name": "門市 LINE",
    "channel_id": "1650000009",
    "channel_secret": SECRET,
    "channel_access_token": TOKEN,
    "greeting": "歡迎！",
    "handoff_keywords": "真人客服\n人工客服\nagent",
    "language": "zh-Hant",
    "enabled": "on",
}


def channel_page(people, channel, action: str = "") -> str:
    name = f"line-channel-{action}" if action else "line-channel"
    return dashboard_url(name, people, channel_id=channel.pk)


def failed_delivery(channel, *, error="LINE answered 503: Fake LINE answers 503", message=None):
    line_user = LineUser.objects.filter(channel=channel).first()
    if line_user is None:
        contact = conversation_services.contact_create(tenant=channel.tenant, channel="line", name="陳小美")
        line_user = LineUser.objects.create(
            tenant=channel.tenant,
            channel=channel,
            line_user_id="U-alice",
            contact=contact,
            display_name="陳小美",
        )
    return LineDelivery.objects.create(
        tenant=channel.tenant,
        channel=channel,
        line_user=line_user,
        message=message,
        kind=LineDelivery.Kind.PUSH,
        texts=["運費是八十元。"],
        status=LineDelivery.Status.FAILED,
        attempts=4,
        error=error,
    )


def test_an_admin_connects_a_channel_and_gets_the_webhook_url_never_the_secrets(tenant_a, settings):
    settings.PUBLIC_BASE_URL = "https://support.example.com.tw"
    admin = signed_in(tenant_a.tenant_admin)
    assert admin.get(dashboard_url("line-channel-create", tenant_a)).status_code == 200

    response = admin.post(dashboard_url("line-channel-create", tenant_a), FORM)
    assert response.status_code == 302, response.content.decode()[:3000]
    channel = LineChannel.objects.get()
    assert response["Location"] == channel_page(tenant_a, channel)
    assert channel.tenant == tenant_a.tenant
    assert channel.handoff_keywords == ["真人客服", "人工客服", "agent"]
    assert channel_secret(channel=channel) == SECRET and channel_access_token(channel=channel) == TOKEN
    assert AuditEvent.objects.filter(action="line_channel.create").count() == 1

    page = admin.get(channel_page(tenant_a, channel)).content.decode()
    assert f"https://support.example.com.tw/v1/line/{channel.pk}/webhook" in page
    assert SECRET not in page and TOKEN not in page
    assert channel.channel_secret_encrypted not in page and channel.access_token_encrypted not in page

    listing = admin.get(dashboard_url("line-channels", tenant_a)).content.decode()
    assert "門市 LINE" in listing and channel_page(tenant_a, channel) in listing


def test_saving_without_secrets_keeps_them_and_a_new_token_clears_needs_attention(tenant_a, channel_a):
    admin = signed_in(tenant_a.tenant_admin)
    kept = {**FORM, "name": "新名稱", "channel_secret": "", "channel_access_token": ""}
    assert admin.post(channel_page(tenant_a, channel_a), kept).status_code == 302
    channel_a.refresh_from_db()
    assert channel_a.name == "新名稱" and channel_access_token(channel=channel_a) == TOKEN_A

    LineChannel.objects.filter(pk=channel_a.pk).update(needs_attention=True, attention_reason="refused")
    renewed = {**kept, "channel_access_token": "a-brand-new-channel-access-token"}
    assert admin.post(channel_page(tenant_a, channel_a), renewed).status_code == 302
    channel_a.refresh_from_db()
    assert not channel_a.needs_attention
    assert channel_access_token(channel=channel_a) == "a-brand-new-channel-access-token"
    changes = AuditEvent.objects.filter(action="line_channel.update").order_by("id")
    assert [event.details["changed"] for event in changes][-1] == ["channel_access_token"]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("channel_id", "@my-account", "digits only"),
        ("channel_secret", "short", "16 to 64"),
        ("channel_access_token", "", "required"),
        ("name", "", "required"),
        ("handoff_keywords", "\n".join(f"keyword {n}" for n in range(21)), "At most 20"),
        ("handoff_keywords", "x" * 51, "at most 50"),
        ("language", "ja", "valid choice"),
    ],
)
def test_bad_input_is_explained_and_nothing_is_saved(tenant_a, field, value, error):
    response = signed_in(tenant_a.tenant_admin).post(
        dashboard_url("line-channel-create", tenant_a), {**FORM, field: value}
    )
    assert response.status_code == 400
    assert any(error in message for message in response.context["form"].errors[field])
    assert error in response.content.decode()
    assert not LineChannel.objects.exists()
    assert SECRET not in response.content.decode()  # not even the secret just typed


@pytest.mark.parametrize("role", ["agent", "end_user"])
def test_agents_and_end_users_are_refused_every_page(tenant_a, channel_a, role):
    client = signed_in(tenant_a.user(role))
    for method, url in [
        ("get", dashboard_url("line-channels", tenant_a)),
        ("get", dashboard_url("line-channel-create", tenant_a)),
        ("post", dashboard_url("line-channel-create", tenant_a)),
        ("get", channel_page(tenant_a, channel_a)),
        ("post", channel_page(tenant_a, channel_a)),
        ("post", channel_page(tenant_a, channel_a, "verify")),
        ("post", channel_page(tenant_a, channel_a, "delete")),
    ]:
        response = getattr(client, method)(url, FORM if method == "post" else None)
        assert response.status_code == 403, (method, url)
    assert LineChannel.objects.get().name == channel_a.name
    # Nor is the page offered to them.
    overview = client.get(dashboard_url("overview", tenant_a)) if role == "agent" else None
    if overview is not None:
        assert dashboard_url("line-channels", tenant_a) not in overview.content.decode()


def test_another_tenants_channel_is_not_found(tenant_a, tenant_b, channel_a, channel_b):
    admin_b = signed_in(tenant_b.tenant_admin)
    # A's channel under B's own tenant URL, and A's tenant URL altogether.
    for url in [
        dashboard_url("line-channel", tenant_b, channel_id=channel_a.pk),
        dashboard_url("line-channel-verify", tenant_b, channel_id=channel_a.pk),
        dashboard_url("line-channel-delete", tenant_b, channel_id=channel_a.pk),
    ]:
        assert admin_b.get(url).status_code in (404, 405)
        assert admin_b.post(url, FORM).status_code == 404, url
    assert admin_b.get(dashboard_url("line-channels", tenant_a)).status_code == 404
    assert admin_b.get(channel_page(tenant_a, channel_a)).status_code == 404
    listing = admin_b.get(dashboard_url("line-channels", tenant_b)).content.decode()
    assert "B official" in listing and channel_a.name not in listing
    channel_a.refresh_from_db()
    assert LineChannel.objects.count() == 2


def test_a_refused_token_and_the_messages_not_delivered_are_shown_prominently(tenant_a, channel_a):
    LineChannel.objects.filter(pk=channel_a.pk).update(
        needs_attention=True, attention_reason="LINE refused the channel access token: LINE answered 401"
    )
    failed_delivery(channel_a)
    admin = signed_in(tenant_a.tenant_admin)

    listing = admin.get(dashboard_url("line-channels", tenant_a)).content.decode()
    assert "data-needs-attention" in listing and "Needs attention" in listing

    page = admin.get(channel_page(tenant_a, channel_a))
    html = page.content.decode()
    assert 'role="alert" data-needs-attention' in html and "LINE answered 401" in html
    (failure,) = page.context["failures"]
    assert failure.error.startswith("LINE answered 503")
    assert "運費是八十元。" in html and "陳小美" in html


def test_the_list_takes_a_fixed_number_of_queries(tenant_a, channel_a, django_assert_max_num_queries):
    from line_channel import services

    for number in range(5):
        extra = services.line_channel_create(
            tenant=tenant_a.tenant,
            name=f"帳號 {number}",
            channel_id=f"16500001{number}",
            channel_secret=SECRET,
            channel_access_token=TOKEN,
        )
        failed_delivery(extra)
    admin = signed_in(tenant_a.tenant_admin)
    admin.get(dashboard_url("line-channels", tenant_a))  # the session's first reads
    with django_assert_max_num_queries(12):
        response = admin.get(dashboard_url("line-channels", tenant_a))
    assert [channel.recent_failures for channel in response.context["channels"]] == [0, 1, 1, 1, 1, 1]


def test_checking_the_token_with_line_marks_and_clears_needs_attention(tenant_a, channel_a, fake_line):
    admin = signed_in(tenant_a.tenant_admin)
    LineChannel.objects.filter(pk=channel_a.pk).update(needs_attention=True, attention_reason="old")
    response = admin.post(channel_page(tenant_a, channel_a, "verify"), follow=True)
    assert "LINE accepted the access token of Fake Official Account (@000fake)." in response.content.decode()
    assert fake_line.sent("info")[0].token == TOKEN_A
    channel_a.refresh_from_db()
    assert not channel_a.needs_attention

    fake_line.tokens.clear()  # the token was revoked in the console
    response = admin.post(channel_page(tenant_a, channel_a, "verify"), follow=True)
    assert "LINE refused the access token" in response.content.decode()
    channel_a.refresh_from_db()
    assert channel_a.needs_attention and "401" in channel_a.attention_reason

    fake_line.stop()  # LINE unreachable: said so, the state left as it was
    response = admin.post(channel_page(tenant_a, channel_a, "verify"), follow=True)
    assert "LINE could not be reached" in response.content.decode()


def test_disconnecting_deletes_the_channel_and_is_audited(tenant_a, channel_a):
    admin = signed_in(tenant_a.tenant_admin)
    response = admin.post(channel_page(tenant_a, channel_a, "delete"))
    assert response.status_code == 302 and response["Location"] == dashboard_url("line-channels", tenant_a)
    assert not LineChannel.objects.exists()
    assert AuditEvent.objects.filter(action="line_channel.delete").count() == 1


def test_the_pages_speak_traditional_chinese(tenant_a, channel_a):
    failed_delivery(channel_a)
    admin = signed_in(tenant_a.tenant_admin)
    listing = admin.get(
        dashboard_url("line-channels", tenant_a), HTTP_ACCEPT_LANGUAGE="zh-TW"
    ).content.decode()
    assert "LINE 官方帳號" in listing and "連接 LINE 官方帳號" in listing and "未送達（7 天內）" in listing
    page = admin.get(channel_page(tenant_a, channel_a), HTTP_ACCEPT_LANGUAGE="zh-TW").content.decode()
    for text in (
        "Webhook URL",
        "向 LINE 確認存取權杖",
        "未送達的訊息",
        "轉接真人關鍵字",
        "已儲存 — 留白即保留原值",
    ):
        assert text in page, text
    invalid = admin.post(
        dashboard_url("line-channel-create", tenant_a),
        {**FORM, "channel_id": "abc"},
        HTTP_ACCEPT_LANGUAGE="zh-TW",
    )
    assert "Channel ID 只包含數字。" in invalid.content.decode()


def test_line_conversations_are_marked_in_the_inbox_and_undelivered_replies_say_so(tenant_a, channel_a):
    contact = conversation_services.contact_create(tenant=tenant_a.tenant, channel="line", name="陳小美")
    line_user = LineUser.objects.create(
        tenant=tenant_a.tenant,
        channel=channel_a,
        line_user_id="U-alice",
        contact=contact,
        display_name="陳小美",
    )
    conversation = conversation_services.conversation_open_for_contact(
        tenant=tenant_a.tenant,
        contact=contact,
        conversation_id=None,
        channel="line",
        first_message="運費多少？",
    )
    conversation_services.conversation_handoff(
        conversation=conversation, reason="Asked for a person on LINE."
    )
    delivered = conversation_services.agent_reply(
        conversation=conversation, agent=tenant_a.agent, content="稍等"
    )
    lost = conversation_services.agent_reply(
        conversation=conversation, agent=tenant_a.agent, content="八十元"
    )
    LineDelivery.objects.create(
        tenant=tenant_a.tenant,
        channel=channel_a,
        line_user=line_user,
        message=delivered,
        kind="push",
        texts=["稍等"],
        status=LineDelivery.Status.SENT,
    )
    failed_delivery(channel_a, message=lost)

    agent = signed_in(tenant_a.agent)
    inbox = agent.get(dashboard_url("inbox", tenant_a), {"conversation": str(conversation.pk)})
    html = inbox.content.decode()
    assert html.count('data-channel="line"') == 2  # in the queue and above the thread
    assert "陳小美" in html
    thread = {message.pk: message for message in inbox.context["thread"]}
    assert thread[lost.pk].undelivered.startswith("LINE answered 503")
    assert thread[delivered.pk].undelivered is None
    assert html.count("data-undelivered") == 1 and "Not delivered" in html

    detail = agent.get(dashboard_url("conversation", tenant_a, conversation_id=conversation.pk))
    assert detail.content.decode().count("data-undelivered") == 1
    zh = agent.get(
        dashboard_url("conversation", tenant_a, conversation_id=conversation.pk), HTTP_ACCEPT_LANGUAGE="zh-TW"
    )
    assert "未送達" in zh.content.decode()
    assert Message.objects.filter(pk=lost.pk).exists()


def test_an_agents_reply_from_the_dashboard_inbox_is_pushed_to_the_line_user(
    tenant_a, channel_a, fake_line, eager_ingestion
):
    contact = conversation_services.contact_create(tenant=tenant_a.tenant, channel="line", name="陳小美")
    LineUser.objects.create(
        tenant=tenant_a.tenant, channel=channel_a, line_user_id="U-alice", contact=contact
    )
    conversation = conversation_services.conversation_open_for_contact(
        tenant=tenant_a.tenant,
        contact=contact,
        conversation_id=None,
        channel="line",
        first_message="運費多少？",
    )
    conversation_services.conversation_handoff(
        conversation=conversation, reason="Asked for a person on LINE."
    )
    agent = signed_in(tenant_a.agent)
    with committed():
        response = agent.post(
            dashboard_url("conversation-reply", tenant_a, conversation_id=conversation.pk),
            {"content": "您好，運費是八十元。", "next": "inbox"},
        )
    assert response.status_code == 302
    assert fake_line.texts("push") == [["您好，運費是八十元。"]]
    assert fake_line.sent("push")[0].body["to"] == "U-alice"
    delivery = LineDelivery.objects.get()
    assert delivery.status == LineDelivery.Status.SENT and delivery.message.author == tenant_a.agent
