"""The webhook's rate limits: an address whose calls keep failing is refused before any lookup;
a channel's signed calls past its rate get 429 with Retry-After, nothing of them stored, and
LINE's later redelivery of the refused call is answered once."""

import pytest
from django.core.cache import cache

from line_channel.models import LineEvent
from line_channel.throttling import WebhookChannelThrottle, WebhookFailureThrottle
from testsupport.api import assert_error
from testsupport.line import SECRET_B, post_webhook, sticker_event

pytestmark = pytest.mark.django_db

STRANGER = "203.0.113.7"
LINE_PLATFORM = "198.51.100.20"


def test_an_address_whose_calls_keep_failing_is_refused_before_any_lookup(
    anonymous, channel_a, channel_b, fake_line, eager_ingestion, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(WebhookFailureThrottle, "rate", "3/minute", raising=False)
    for _attempt in range(3):
        forged = post_webhook(
            anonymous, channel_a, [sticker_event()], signature="forged", REMOTE_ADDR=STRANGER
        )
        assert forged.status_code == 401
    with django_assert_num_queries(0):
        refused = post_webhook(anonymous, channel_b, [sticker_event()], secret=SECRET_B, REMOTE_ADDR=STRANGER)
    assert_error(refused, 429, "rate_limited")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["error"]["details"]["retry_after_seconds"] == int(refused["Retry-After"])

    # LINE's own calls come from elsewhere and never failed: they are answered as ever.
    answered = post_webhook(anonymous, channel_a, [sticker_event()], REMOTE_ADDR=LINE_PLATFORM)
    assert answered.status_code == 200 and answered.json() == {"accepted": 1}
    assert LineEvent.objects.count() == 1 and len(fake_line.sent("reply")) == 1


def test_a_channels_signed_calls_past_its_rate_are_refused_unstored_and_answered_when_redelivered(
    anonymous, channel_a, channel_b, fake_line, eager_ingestion, monkeypatch
):
    monkeypatch.setattr(WebhookChannelThrottle, "rate", "2/minute", raising=False)
    # Calls that fail the signature do not spend the channel's bucket.
    for _forged in range(3):
        assert post_webhook(anonymous, channel_a, [sticker_event()], signature="forged").status_code == 401
    for _call in range(2):
        assert post_webhook(anonymous, channel_a, [sticker_event()]).status_code == 200
    refused_event = sticker_event()
    refused = post_webhook(anonymous, channel_a, [refused_event])
    assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) > 0
    assert LineEvent.objects.filter(webhook_event_id=refused_event["webhookEventId"]).count() == 0
    assert len(fake_line.sent("reply")) == 2

    # Another channel (here another tenant's) has its own bucket.
    assert post_webhook(anonymous, channel_b, [sticker_event("U-bob")], secret=SECRET_B).status_code == 200

    # LINE sends the refused call again later: it is stored and answered, once.
    cache.clear()  # the minute has passed
    redelivered = {**refused_event, "deliveryContext": {"isRedelivery": True}}
    assert post_webhook(anonymous, channel_a, [redelivered]).json() == {"accepted": 1}
    assert post_webhook(anonymous, channel_a, [redelivered]).json() == {"accepted": 0}  # answered once
    assert LineEvent.objects.get(webhook_event_id=refused_event["webhookEventId"]).status == "done"
    assert len(fake_line.sent("reply")) == 4
