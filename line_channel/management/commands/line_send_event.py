"""Send a signed LINE text event to a running platform's webhook, as LINE would (local trials)."""

import base64
import hashlib
import hmac
import json
import time
import urllib.request
import uuid

from django.core.management.base import BaseCommand

from line_channel import selectors
from line_channel.models import LineChannel
from tenants import rls


class Command(BaseCommand):
    help = "POST a signed text message event for CHANNEL_ID (the platform's id) to the webhook."

    def add_arguments(self, parser):
        parser.add_argument("channel", help="The LINE channel's id on the platform (a UUID).")
        parser.add_argument("text")
        parser.add_argument("--user", default="U-local-tester")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, channel, text, user, base_url, **options):
        with rls.unscoped():
            line_channel = LineChannel.objects.get(pk=channel)
            secret = selectors.channel_secret(channel=line_channel)
        event = {
            "type": "message",
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user},
            "webhookEventId": uuid.uuid4().hex[:26].upper(),
            "deliveryContext": {"isRedelivery": False},
            "replyToken": uuid.uuid4().hex,
            "message": {"id": str(uuid.uuid4().int)[:18], "type": "text", "quoteToken": "q", "text": text},
        }
        body = json.dumps({"destination": "U-local", "events": [event]}, ensure_ascii=False).encode()
        signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        request = urllib.request.Request(  # noqa: S310 - a URL the operator typed
            f"{base_url.rstrip('/')}/v1/line/{line_channel.pk}/webhook",
            data=body,
            headers={"Content-Type": "application/json", "X-Line-Signature": signature},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            self.stdout.write(f"{response.status} {response.read().decode()}")
