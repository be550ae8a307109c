"""Run the fake LINE Messaging API, to try the LINE channel locally without LINE."""

import time

from django.core.management.base import BaseCommand

from line_channel.fake_server import FakeLine


class Command(BaseCommand):
    help = (
        "Serve a fake LINE Messaging API (reply, push, profile) that prints what the platform sends. "
        "Run the platform with LINE_API_BASE=http://127.0.0.1:PORT and sign webhook calls with "
        "`manage.py line_send_event`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8089)
        parser.add_argument(
            "--token", action="append", required=True, help="An access token to accept (repeatable)."
        )
        parser.add_argument(
            "--profile", action="append", default=[], help="USER_ID=Display name (repeatable)."
        )

    def handle(self, *args, port, token, profile, **options):
        fake = FakeLine(tokens=set(token), profiles=dict(item.split("=", 1) for item in profile)).start(
            port=port
        )
        self.stdout.write(f"Fake LINE API on {fake.base_url} (Ctrl-C to stop)")
        shown = 0
        try:
            while True:
                time.sleep(0.5)
                with fake.lock:
                    new = fake.calls[shown:]
                    shown = len(fake.calls)
                for call in new:
                    texts = [message.get("text", "") for message in call.body.get("messages", [])]
                    self.stdout.write(f"{call.method} {call.path} {texts or ''}")
        except KeyboardInterrupt:
            fake.stop()
