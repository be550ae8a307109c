"""The LINE channel as its tests reach it: the two tenants' credentials, webhook events shaped as
LINE sends them, and signed webhook calls (the fixtures themselves are in line_channel's
conftest)."""

import base64
import hashlib
import hmac
import json
import time
import uuid

from testsupport.environment import committed

SECRET_A = "0123456789abcdef0123456789abcdef"
SECRET_B = "fedcba9876543210fedcba9876543210"
TOKEN_A = "token-of-tenant-a-channel-0123456789"
TOKEN_B = "token-of-tenant-b-channel-0123456789"


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


def webhook_body(events: list[dict]) -> bytes:
    return json.dumps({"destination": "Uxxxxxxxx", "events": events}, ensure_ascii=False).encode()


def post_webhook(
    client, channel, events, *, secret=SECRET_A, body: bytes | None = None, signature=None, **headers
):
    """Call the webhook as LINE does (signed raw body), running what it queues on commit (the
    tasks themselves run eagerly or in a worker, as the test arranged)."""
    if body is None:
        body = webhook_body(events)
    if signature is not False:
        headers["HTTP_X_LINE_SIGNATURE"] = signature or sign(body, secret)
    with committed():
        return client.post(
            f"/v1/line/{channel.pk}/webhook", data=body, content_type="application/json", **headers
        )
