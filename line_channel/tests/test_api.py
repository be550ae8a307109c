"""Tenant admins connect LINE Official Accounts; secrets are write-only and encrypted at rest;
the webhook refuses whatever is not a signed LINE call without storing or queuing anything."""

import json
import random

import pytest

from line_channel.models import DEFAULT_HANDOFF_KEYWORDS, LineChannel, LineEvent
from line_channel.throttling import WebhookFailureThrottle
from llm.crypto import decrypt_secret
from tenants.models import AuditEvent
from testsupport.line import SECRET_A, post_webhook, sign

pytestmark = pytest.mark.django_db

NEW_CHANNEL = {
    "name": "門市 LINE",
    "channel_id": "1650000009",
    "channel_secret": "abcdef0123456789abcdef0123456789",
    "channel_access_token": "a-long-lived-channel-access-token",
}


def url(people, channel_id=None) -> str:
    base = f"/v1/tenants/{people.tenant.pk}/line-channels"
    return f"{base}/{channel_id}" if channel_id else base


def test_an_admin_connects_a_channel_and_gets_the_webhook_url_without_secrets(tenant_a, settings):
    settings.PUBLIC_BASE_URL = "https://support.example.com.tw"
    admin = tenant_a.client("tenant_admin")
    response = admin.post(url(tenant_a), NEW_CHANNEL, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["webhook_url"] == f"https://support.example.com.tw/v1/line/{body['id']}/webhook"
    assert body["handoff_keywords"] == DEFAULT_HANDOFF_KEYWORDS
    assert "channel_secret" not in body and "channel_access_token" not in body
    assert NEW_CHANNEL["channel_secret"] not in response.content.decode()

    stored = LineChannel.objects.get(pk=body["id"])
    assert NEW_CHANNEL["channel_access_token"] not in stored.access_token_encrypted
    assert decrypt_secret(stored.channel_secret_encrypted) == NEW_CHANNEL["channel_secret"]

    listed = admin.get(url(tenant_a)).json()
    assert listed["count"] == 1 and "channel_secret" not in listed["results"][0]


def test_changes_and_deletion_are_audited_and_a_new_token_clears_the_attention_flag(tenant_a):
    admin = tenant_a.client("tenant_admin")
    channel_id = admin.post(url(tenant_a), NEW_CHANNEL, format="json").json()["id"]
    LineChannel.objects.filter(pk=channel_id).update(needs_attention=True, attention_reason="refused")

    patched = admin.patch(
        url(tenant_a, channel_id),
        {"channel_access_token": "a-brand-new-channel-access-token", "handoff_keywords": ["真人"]},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["needs_attention"] is False and patched.json()["handoff_keywords"] == ["真人"]
    assert admin.delete(url(tenant_a, channel_id)).status_code == 204

    events = list(AuditEvent.objects.filter(action__startswith="line_channel.").order_by("id"))
    assert [event.action for event in events] == [
        "line_channel.create",
        "line_channel.update",
        "line_channel.delete",
    ]
    assert events[1].details["changed"] == ["channel_access_token", "handoff_keywords"]
    assert "a-brand-new" not in json.dumps([event.details for event in events])


def test_bad_channel_input_is_400_in_the_error_format(tenant_a):
    admin = tenant_a.client("tenant_admin")
    for bad in (
        {**NEW_CHANNEL, "channel_id": "not-digits"},
        {**NEW_CHANNEL, "channel_secret": "short"},
        {**NEW_CHANNEL, "handoff_keywords": "agent"},
        {key: value for key, value in NEW_CHANNEL.items() if key != "channel_access_token"},
    ):
        response = admin.post(url(tenant_a), bad, format="json")
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "validation_error"
    assert not LineChannel.objects.exists()


def test_the_list_takes_a_fixed_number_of_queries(tenant_a, django_assert_max_num_queries):
    admin = tenant_a.client("tenant_admin")
    for number in range(5):
        admin.post(url(tenant_a), {**NEW_CHANNEL, "channel_id": f"16500000{number}"}, format="json")
    with django_assert_max_num_queries(8):
        assert admin.get(url(tenant_a)).json()["count"] == 5


def test_an_unknown_or_disabled_channel_is_404_and_stores_nothing(anonymous, channel_a, tenant_a):
    body = json.dumps({"events": []}).encode()
    response = anonymous.post(
        "/v1/line/00000000-0000-0000-0000-000000000000/webhook",
        data=body,
        content_type="application/json",
        HTTP_X_LINE_SIGNATURE=sign(body, SECRET_A),
    )
    assert response.status_code == 404
    LineChannel.objects.filter(pk=channel_a.pk).update(enabled=False)
    assert post_webhook(anonymous, channel_a, []).status_code == 404


def _fuzzed_bodies() -> list[bytes]:
    generator = random.Random(14)  # noqa: S311 - reproducible fuzzing, not security
    bodies = [
        b"",
        b"{not json",
        b"\xff\xfe\x00 binary",
        b"[]",
        b"null",
        b'"events"',
        b'{"events": "all"}',
        b'{"events": {"type": "message"}}',
        b'{"events": [1, 2]}',
        b'{"events": [{"type": 5, "webhookEventId": "x"}]}',
        b'{"events": [{"type": "message", "webhookEventId": null}]}',
        b'{"events": [{"type": "message", "webhookEventId": "' + b"x" * 200 + b'"}]}',
        json.dumps({"events": [{"type": "message", "webhookEventId": str(n)} for n in range(500)]}).encode(),
        b'{"events": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
    ]
    for _ in range(30):
        length = generator.randint(1, 300)
        bodies.append(bytes(generator.getrandbits(8) for _ in range(length)))
    return bodies


def test_fuzzed_webhook_bodies_get_400_or_401_and_nothing_is_stored_or_queued(
    anonymous, channel_a, fake_line, eager_ingestion, monkeypatch
):
    # Every refused call here comes from one address: its failures are not what this test limits.
    monkeypatch.setattr(WebhookFailureThrottle, "rate", "100000/minute", raising=False)
    for body in _fuzzed_bodies():
        for signature in (sign(body, SECRET_A), "forged-signature", False):
            response = post_webhook(anonymous, channel_a, None, body=body, signature=signature)
            assert response.status_code in (400, 401), (body[:80], response.status_code, response.content)
            assert set(response.json()) == {"error"}
    huge = b'{"events": [], "pad": "' + b"x" * 2_000_000 + b'"}'
    response = post_webhook(anonymous, channel_a, None, body=huge)
    assert response.status_code == 413
    # Wrong types inside well-formed events are stored but answered with nothing.
    odd = {"type": "message", "webhookEventId": "odd-1", "source": "nobody", "message": [1]}
    assert post_webhook(anonymous, channel_a, [odd]).status_code == 200
    assert LineEvent.objects.get().status == LineEvent.Status.IGNORED
    assert fake_line.calls == []
