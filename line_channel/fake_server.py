"""A local stand-in for LINE's Messaging API, speaking its wire format, for tests and for trying
the channel without LINE (`manage.py line_fake_server`).

It answers the calls the platform makes (reply, push, profile, bot info), checks the bearer token against
the tokens it accepts, refuses a reply token used twice, records every call, and can be told to
answer the next calls with an error status (`fail_next(500)`)."""

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    method: str
    path: str
    token: str
    body: dict
    headers: dict
    # When the call arrived (`time.time()`): how long an answer took to reach "LINE".
    at: float = field(default_factory=time.time)


@dataclass
class FakeLine:
    tokens: set[str] = field(default_factory=set)
    profiles: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    used_reply_tokens: set[str] = field(default_factory=set)
    bot_name: str = "Fake Official Account"
    basic_id: str = "@000fake"
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, *statuses: int, path: str = "/v2/bot/message/") -> None:
        """Answer the next calls whose path starts with `path` with these statuses."""
        with self.lock:
            self.failures.extend((status, path) for status in statuses)

    def sent(self, kind: str) -> list[Call]:
        """The calls that got through: `reply`, `push`, `profile` or `info` (the bot's)."""
        with self.lock:
            return [
                call for call in self.calls if call.path.split("/")[-1 if kind != "profile" else -2] == kind
            ]

    def texts(self, kind: str) -> list[list[str]]:
        return [[message["text"] for message in call.body["messages"]] for call in self.sent(kind)]

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "FakeLine":
        self.server = ThreadingHTTPServer((host, port), _handler_for(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def _handler_for(fake: FakeLine):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet in tests
            pass

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-line-request-id", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return self._answer(400, {"message": "The request body has 1 error(s)"})
            authorization = self.headers.get("Authorization", "")
            token = authorization.removeprefix("Bearer ")
            if not authorization.startswith("Bearer ") or token not in fake.tokens:
                return self._answer(
                    401,
                    {
                        "message": "Authentication failed. Confirm that the access token in the authorization header is valid."
                    },
                )
            with fake.lock:
                path = self.path.split("?")[0]
                if fake.failures and path.startswith(fake.failures[0][1]):
                    status, _prefix = fake.failures.pop(0)
                    return self._answer(status, {"message": f"Fake LINE answers {status}"})
                if method == "POST" and path == "/v2/bot/message/reply":
                    reply_token = body.get("replyToken", "")
                    if reply_token in fake.used_reply_tokens or reply_token.startswith("expired"):
                        return self._answer(400, {"message": "Invalid reply token"})
                    fake.used_reply_tokens.add(reply_token)
                elif method == "POST" and path == "/v2/bot/message/push":
                    pass
                elif method == "GET" and path == "/v2/bot/info":
                    fake.calls.append(Call(method, path, token, body, dict(self.headers)))
                    return self._answer(
                        200,
                        {
                            "userId": "U-bot",
                            "basicId": fake.basic_id,
                            "displayName": fake.bot_name,
                            "chatMode": "bot",
                            "markAsReadMode": "auto",
                        },
                    )
                elif method == "GET" and path.startswith("/v2/bot/profile/"):
                    user_id = path.rsplit("/", 1)[-1]
                    if user_id not in fake.profiles:
                        return self._answer(404, {"message": "Not found"})
                    fake.calls.append(Call(method, path, token, body, dict(self.headers)))
                    return self._answer(
                        200,
                        {"userId": user_id, "displayName": fake.profiles[user_id], "language": "zh-TW"},
                    )
                else:
                    return self._answer(404, {"message": "Not found"})
                fake.calls.append(Call(method, path, token, body, dict(self.headers)))
                sent = [
                    {"id": str(uuid.uuid4().int)[:18], "quoteToken": uuid.uuid4().hex}
                    for _ in body.get("messages", [])
                ]
                return self._answer(200, {"sentMessages": sent})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self._handle("POST")

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

    return Handler
