"""Fixtures of the LINE channel tests: a fake LINE API on a local port, a channel per tenant,
and signed webhook calls."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest

from line_channel import services
from line_channel.fake_server import FakeLine
from testsupport.environment import committed

SECRET_A = "0123456789abcdef0123456789abcdef"
SECRET_B = "fedcba9876543210fedcba9876543210"
TOKEN_A = "token-of-tenant-a-channel-0123456789"
TOKEN_B = "token-of-tenant-b-channel-0123456789"


@pytest.fixture
def fake_line(settings):
    fake = FakeLine(tokens={TOKEN_A, TOKEN_B}, profiles={"U-alice": "陳小美", "U-bob": "Bob"}).start()
    settings.LINE_API_BASE = fake.base_url
    settings.LINE_RETRY_DELAYS = [0.01, 0.02]
    yield fake
    fake.stop()


@pytest.fixture
def channel_a(tenant_a):
    return services.line_channel_create(
        tenant=tenant_a.tenant,
        name="A 官方帳號",
        channel_id="1650000001",
        channel_secret=SECRET_A,
        channel_access_token=TOKEN_A,
        greeting="歡迎加入！有任何問題都可以問我。",
    )


@pytest.fixture
def channel_b(tenant_b):
    return services.line_channel_create(
        tenant=tenant_b.tenant,
        name="B official",
        channel_id="1650000002",
        channel_secret=SECRET_B,
        channel_access_token=TOKEN_B,
    )


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def text_event(
    text: str, *, user="U-alice", event_id=None, reply_token=None, age_seconds=0.0, **extra
) -> dict:
    return {
        "type": "message",
        "mode": "active",
        "timestamp": int((time.time() - age_seconds) * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id or uuid.uuid4().hex[:26].upper(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": reply_token or uuid.uuid4().hex,
        "message": {"id": str(uuid.uuid4().int)[:18], "type": "text", "quoteToken": "q", "text": text},
        **extra,
    }


def sticker_event(user="U-alice") -> dict:
    event = text_event("", user=user)
    event["message"] = {
        "id": "1",
        "type": "sticker",
        "quoteToken": "q",
        "packageId": "446",
        "stickerId": "1988",
        "stickerResourceType": "STATIC",
    }
    return event


def follow_event(kind: str = "follow", user="U-alice") -> dict:
    event = {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": uuid.uuid4().hex[:26].upper(),
        "deliveryContext": {"isRedelivery": False},
    }
    if kind == "follow":
        event["replyToken"] = uuid.uuid4().hex
        event["follow"] = {"isUnblocked": False}
    return event


def post_webhook(client, channel, events, *, secret=SECRET_A, body: bytes | None = None, signature=None):
    """Call the webhook as LINE does (signed raw body), running what it queues (eager tasks)."""
    if body is None:
        body = json.dumps({"destination": "Uxxxxxxxx", "events": events}, ensure_ascii=False).encode()
    headers = {}
    if signature is not False:
        headers["HTTP_X_LINE_SIGNATURE"] = signature or sign(body, secret)
    with committed():
        return client.post(
            f"/v1/line/{channel.pk}/webhook", data=body, content_type="application/json", **headers
        )
