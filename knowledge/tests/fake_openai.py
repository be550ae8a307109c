"""A local HTTP server speaking the OpenAI embeddings wire format, for tests of the real client.

    with fake_openai_server() as server:
        client = openai.OpenAI(api_key=server.api_key, base_url=server.base_url)
        ...
        assert len(server.requests) == 1

It answers POST /v1/embeddings (OpenAI, `Authorization: Bearer <key>`) and
POST /openai/deployments/{deployment}/embeddings?api-version=... (Azure, `api-key: <key>`) with
deterministic, deliberately unnormalised vectors (`server.vector_for(model, text)`), in the float
or base64 encoding the client asks for. It records every request, and can be told to answer an
error status (`fail_with`) or to stall without answering (`stall_for`) to test error handling.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

# What the real service returns for its models; any other model gets `default_dimension`.
MODEL_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict | None

    @property
    def inputs(self) -> list[str]:
        """The texts sent (a lone string counts as one)."""
        raw = (self.body or {}).get("input")
        return [raw] if isinstance(raw, str) else list(raw or [])


@dataclass
class _Failure:
    status: int
    message: str
    remaining: int | None  # None: until reset()
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAI:
    def __init__(self, *, api_key: str, default_dimension: int, dimensions: dict[str, int] | None) -> None:
        self.api_key = api_key
        self.default_dimension = default_dimension
        self.dimensions = {**MODEL_DIMENSIONS, **(dimensions or {})}
        self.requests: list[RecordedRequest] = []
        self._failures: list[_Failure] = []
        self._stall_seconds = 0.0
        self._released = threading.Event()
        self._state_lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    # --- addresses ---

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For openai.OpenAI(base_url=...)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def azure_endpoint(self) -> str:
        """For openai.AzureOpenAI(azure_endpoint=...)."""
        return f"http://127.0.0.1:{self.port}"

    # --- behaviour ---

    def fail_with(
        self,
        status: int,
        *,
        times: int | None = None,
        message: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests (all, when None, until reset) with this status."""
        with self._state_lock:
            self._failures.append(
                _Failure(status, message or f"fake failure {status}", times, dict(headers or {}))
            )

    def stall_for(self, seconds: float) -> None:
        """Hold every request this long before answering (released early when the server stops)."""
        self._stall_seconds = seconds

    def reset(self) -> None:
        with self._state_lock:
            self._failures.clear()
            self._stall_seconds = 0.0
            self.requests.clear()

    def dimension_for(self, model: str) -> int:
        return self.dimensions.get(model, self.default_dimension)

    def vector_for(self, model: str, text: str) -> np.ndarray:
        """The vector the server returns for this text, before any normalisation."""
        seed = int.from_bytes(hashlib.sha256(f"{model}\0{text}".encode()).digest()[:8], "little")
        return (np.random.default_rng(seed).standard_normal(self.dimension_for(model)) * 3.0).astype(
            np.float32
        )

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path.endswith("/embeddings")]

    # --- lifecycle ---

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- request handling (called from the handler threads) ---

    def _next_failure(self) -> _Failure | None:
        with self._state_lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.pop(0)
            return failure

    def _handle(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict, dict[str, str]]:
        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in handler.headers.items()}
        self.requests.append(RecordedRequest(handler.command, url.path, query, headers, body))

        if self._stall_seconds:
            self._released.wait(self._stall_seconds)
        failure = self._next_failure()
        if failure is not None:
            return failure.status, _error(failure.status, failure.message), failure.headers

        parts = url.path.strip("/").split("/")
        if handler.command != "POST":
            return 405, _error(405, "method not allowed"), {}
        if parts == ["v1", "embeddings"]:
            if headers.get("authorization") != f"Bearer {self.api_key}":
                return 401, _error(401, "Incorrect API key provided."), {}
            model = (body or {}).get("model")
        elif len(parts) == 4 and parts[:2] == ["openai", "deployments"] and parts[3] == "embeddings":
            if headers.get("api-key") != self.api_key:
                return 401, _error(401, "Access denied due to invalid subscription key."), {}
            if not query.get("api-version"):
                return 404, _error(404, "Resource not found"), {}
            model = parts[2]  # the deployment names the model
        else:
            return 404, _error(404, f"no route for {url.path}"), {}
        return self._embeddings(model, body)

    def _embeddings(self, model: object, body: dict | None) -> tuple[int, dict, dict[str, str]]:
        if not isinstance(body, dict) or not isinstance(model, str) or not model:
            return 400, _error(400, "you must provide a model parameter"), {}
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(text, str) and text for text in texts)
        ):
            return 400, _error(400, "'$.input' is invalid."), {}
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = self.vector_for(model, text)
            encoded = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode() if as_base64 else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(text.split()) or 1 for text in texts)
        # Out of order on purpose: clients must place vectors by their index.
        data.reverse()
        return (
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            {},
        )


def _error(status: int, message: str) -> dict:
    return {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            "param": None,
            "code": None,
        }
    }


def _make_handler(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (the http.server naming)
            self._answer()

        def do_GET(self) -> None:  # noqa: N802
            self._answer()

        def _answer(self) -> None:
            status, payload, extra_headers = server._handle(self)
            content = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                for name, value in extra_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def fake_openai_server(
    *, api_key: str = "test-key", default_dimension: int = 8, dimensions: dict[str, int] | None = None
) -> Iterator[FakeOpenAI]:
    """Serve the fake on a free local port for the duration of the block."""
    server = FakeOpenAI(api_key=api_key, default_dimension=default_dimension, dimensions=dimensions)
    server.start()
    try:
        yield server
    finally:
        server.stop()
