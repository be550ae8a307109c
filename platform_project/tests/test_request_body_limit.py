"""Request bodies over MAX_REQUEST_BODY_BYTES are refused at the ASGI layer, before Django reads
(and spools to disk) any of them: the application is called directly, as daphne calls it, with
a client that counts how many body bytes were taken from it."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.core import signals
from django.db import close_old_connections
from django.test import override_settings

from tenants.models import Plan

LIMIT = 1000


class CountingClient:
    """An HTTP client on the other side of the ASGI interface: it hands over the body in the
    given chunks, counts what was consumed, and keeps what the application sent."""

    def __init__(self, chunks: list[bytes]):
        self.chunks = list(chunks)
        self.consumed = 0
        self.sent: list[dict] = []
        self.finished: asyncio.Event | None = None

    async def receive(self) -> dict:
        if self.finished is None:
            self.finished = asyncio.Event()
        if self.chunks:
            chunk = self.chunks.pop(0)
            self.consumed += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}
        await self.finished.wait()  # the body is complete: a real client waits for the answer
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        if self.finished is None:
            self.finished = asyncio.Event()
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.finished.set()

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return {name.decode().lower(): value.decode() for name, value in start["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def call(
    path: str,
    chunks: list[bytes],
    *,
    content_length: int | None,
    accept: str = "*/*",
    content_type: str = "application/octet-stream",
) -> CountingClient:
    from platform_project.asgi import application

    headers = [
        (b"host", b"testserver"),
        (b"content-type", content_type.encode()),
        (b"accept", accept.encode()),
    ]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    client = CountingClient(chunks)

    async def run():
        await asyncio.wait_for(application(scope, client.receive, client.send), timeout=30)

    # As Django's test client does: the test's transaction must survive the request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        async_to_sync(run)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return client


@pytest.fixture
def small_limit(db, milvus_uri):
    with override_settings(MAX_REQUEST_BODY_BYTES=LIMIT):
        yield LIMIT


def assert_payload_too_large(client: CountingClient) -> None:
    assert client.status == 413, client.body[:300]
    assert client.headers["content-type"].startswith("application/json")
    error = json.loads(client.body)["error"]
    assert error["code"] == "payload_too_large"
    assert error["message"]
    assert error["details"] == {"max_bytes": LIMIT}


@pytest.mark.parametrize(
    "path", ["/v1/tenants/00000000-0000-0000-0000-000000000000/documents/upload", "/v1/auth/login"]
)
def test_an_api_request_declaring_an_oversized_body_is_refused_before_it_is_read(small_limit, path):
    client = call(path, [b"x" * 600, b"x" * 600], content_length=1200)

    assert client.consumed == 0
    assert_payload_too_large(client)


@pytest.mark.parametrize("path", ["/dashboard/login/", "/admin/login/", "/no-such-page"])
def test_every_other_path_is_refused_too_before_the_body_is_read(small_limit, path):
    client = call(path, [b"x" * 1200], content_length=1200, accept="text/html")

    assert client.consumed == 0
    assert client.status == 413
    assert client.headers["content-type"].startswith("text/html")
    assert b"too large" in client.body


def test_a_chunked_body_over_the_cap_is_cut_and_refused(small_limit):
    # No Content-Length (chunked transfer): bytes are counted as they arrive.
    chunks = [b"x" * 300] * 20
    client = call("/v1/auth/login", chunks, content_length=None)

    assert client.consumed <= LIMIT + 300  # stopped at the chunk that crossed the cap
    assert_payload_too_large(client)


def test_a_body_larger_than_its_declared_length_is_cut_too(small_limit):
    client = call("/v1/auth/login", [b"x" * 300] * 20, content_length=10)

    assert client.consumed <= LIMIT + 300
    assert_payload_too_large(client)


def test_a_body_within_the_limit_reaches_the_application(small_limit):
    body = json.dumps({"email": "nobody@example.com", "password": "wrong"}).encode()
    client = call(
        "/v1/auth/login", [body[:20], body[20:]], content_length=len(body), content_type="application/json"
    )

    assert client.consumed == len(body)
    assert client.status != 413
    assert client.status == 401  # Django read it all and answered: wrong credentials


def test_the_default_limit_admits_the_largest_upload_any_plan_allows(db, settings):
    largest_upload = max(Plan.objects.values_list("max_upload_bytes", flat=True))

    assert settings.MAX_REQUEST_BODY_BYTES >= largest_upload + 64 * 1024


def test_the_refusal_speaks_the_callers_language(small_limit):
    from platform_project.request_limits import _too_large

    scope = {"path": "/v1/auth/login", "headers": [(b"accept-language", b"zh-TW,zh;q=0.9")]}
    _content_type, body = _too_large(scope, LIMIT)
    assert "請求內容過大" in json.loads(body)["error"]["message"]
