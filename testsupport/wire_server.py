"""A local HTTP server speaking the OpenAI, Azure OpenAI and Anthropic wire formats (chat and
embeddings), for tests (and benchmarks) of the real client libraries.

    with wire_server() as server:
        client = openai.AsyncOpenAI(api_key=server.api_key, base_url=server.base_url)
        anthropic.AsyncAnthropic(api_key=server.api_key, base_url=server.root_url)
        openai.AsyncAzureOpenAI(api_key=server.api_key, azure_endpoint=server.root_url, api_version="2024-10-21")

Routes: OpenAI `POST /v1/chat/completions` and `POST /v1/embeddings` (`Authorization: Bearer
KEY`), Azure `POST /openai/deployments/{deployment}/chat/completions?api-version=…` and
`…/{deployment}/embeddings?api-version=…` (`api-key: KEY`), Anthropic `POST /v1/messages`
(`x-api-key: KEY` or, as anthropic 2.x sends it, `Authorization: Bearer KEY`; and
`anthropic-version`). Chat answers JSON, or server-sent events when the body asks for
`stream: true` (OpenAI: `data: {chunk}` lines, a usage chunk when `stream_options.include_usage`,
then `data: [DONE]`; Anthropic: message_start … message_stop). A wrong key gets 401 in the
provider's own error format; `api_key=None` accepts any key (an open OpenAI-compatible server).

Embeddings are deterministic, deliberately unnormalised vectors (`server.vector_for(model,
text)`), of the real model's dimension for the models in MODEL_DIMENSIONS and `default_dimension`
for any other, in the float or base64 encoding the client asks for (always floats when
`floats_only` is set, as some compatible servers answer), listed out of order (clients must place
them by their index). The model is the body's, or on Azure the deployment.

For chat, the model (Azure: the deployment) chooses the behaviour, so that one server serves
every test:

- any other name: a deterministic answer, `Answer from MODEL [1]: ` and the first 40 characters
  of the last user message, one word per delta;
- `no-usage`: the same answer, but the stream carries no usage;
- `fail-500`: HTTP 500, every time;
- `flaky-429`: HTTP 429 (`retry-after: 0`, `retry-after-ms: 10`) the first time per route and
  server, then the normal answer;
- `hang`: sends nothing until the server stops or `hang_seconds` pass, then the normal answer;
- `garbage`: 200 with a body that is not JSON (non-stream) or SSE whose data is not JSON;
- `cut-stream`: a few deltas, then the connection drops without the end of the stream;
- `paced-N-MS` (`paced-200-5`): N one-word deltas, MS milliseconds apart, each stamped with the
  time it was sent (`w3@1764000000.123456 `; OpenAI routes), for benchmarks, and to show that a
  client closing early stops the generation.

On every route a test may also tell the server to answer an error status (`fail_with`, for the
next N requests or all of them) or to hold every request without answering (`stall_for`).
Embeddings may take as long as a hosted provider's (`embedding_latency`: seconds per request plus
seconds per input) and be rate limited as a provider's plan is (`rate_limit`: at most N requests
per window of S seconds, the rest answered 429 with `retry-after-ms` saying when the window ends).

Counters: `requests` (every request: route, model, headers, query, JSON body, `received_at`;
`inputs` for the texts of an embeddings request), `in_flight` and `max_in_flight` (requests being
answered now, and the most at once), `rate_limited` (429s `rate_limit` answered), `active_streams` (streams being written now), `streams_started`,
`streams_completed`, and `closed_early` (streams the client closed before their end: seen as a
failed write or a closed socket between deltas). `wait_for(lambda: server.closed_early == 1)`
polls for a condition the server reaches in its own threads. Requests run in daemon threads
(`ThreadingHTTPServer`), hundreds at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

_PACED = re.compile(r"^paced-(\d+)-(\d+)$")
_DISCONNECTED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
_CREATED = 1_700_000_000

# What the real service returns for its embedding models; any other model gets `default_dimension`.
MODEL_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict | None
    route: str  # openai, azure, anthropic, or unknown
    model: str
    received_at: float = 0.0  # time.time() when its body was read

    @property
    def inputs(self) -> list[str]:
        """The texts of an embeddings request (a lone string counts as one)."""
        raw = (self.body or {}).get("input")
        return [raw] if isinstance(raw, str) else list(raw or [])


@dataclass
class _Failure:
    status: int
    message: str
    remaining: int | None  # None: every request from now on
    headers: dict[str, str] = field(default_factory=dict)


class ClientGone(Exception):
    """The client closed the connection while a stream was being written."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open hundreds of connections at once; the default backlog of 5 would drop some.
    request_queue_size = 1024


class WireServer:
    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        hang_seconds: float = 30.0,
        port: int = 0,
        default_dimension: int = 8,
        dimensions: dict[str, int] | None = None,
    ) -> None:
        self.api_key = api_key
        self.hang_seconds = hang_seconds
        self.default_dimension = default_dimension
        self.dimensions = {**MODEL_DIMENSIONS, **(dimensions or {})}
        self.requests: list[RecordedRequest] = []
        self.active_streams = 0
        self.streams_started = 0
        self.streams_completed = 0
        self.closed_early = 0
        self.last_usage: dict[str, int] | None = None
        self.floats_only = False
        self.in_flight = 0
        self.max_in_flight = 0
        self.rate_limited = 0
        self._embedding_latency = (0.0, 0.0)
        self._rate_limit: tuple[int, float] | None = None
        self._rate_window: tuple[int, int] = (-1, 0)  # (window number, requests counted in it)
        self._flaky_seen: set[tuple[str, str]] = set()
        self._failures: list[_Failure] = []
        self._stall_seconds = 0.0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = _Server(("127.0.0.1", port), _make_handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="wire-server",
            daemon=True,
        )

    # --- addresses ---

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def root_url(self) -> str:
        """For Anthropic's `base_url` and Azure's `azure_endpoint`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """For OpenAI-style clients' `base_url`."""
        return f"{self.root_url}/v1"

    # --- behaviour ---

    def fail_with(
        self,
        status: int,
        *,
        times: int | None = None,
        message: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests (every one, when None) with this status, in the
        route's own error format, before any other check."""
        with self._lock:
            self._failures.append(
                _Failure(status, message or f"wire server failure {status}", times, dict(headers or {}))
            )

    def stall_for(self, seconds: float) -> None:
        """Hold every request this long before answering (released early when the server stops)."""
        self._stall_seconds = seconds

    def embedding_latency(self, seconds: float, *, per_input: float = 0.0) -> None:
        """Answer each embeddings request after `seconds` plus `per_input` seconds per text, as a
        hosted provider does (the wait holds no lock: requests wait side by side)."""
        self._embedding_latency = (seconds, per_input)

    def rate_limit(self, requests: int | None, *, per_seconds: float = 1.0) -> None:
        """Admit at most `requests` requests per fixed window of `per_seconds` (None: no limit);
        answer the others 429 with `retry-after-ms` until the window ends."""
        self._rate_limit = None if requests is None else (requests, per_seconds)

    def dimension_for(self, model: str) -> int:
        return self.dimensions.get(model, self.default_dimension)

    def vector_for(self, model: str, text: str) -> np.ndarray:
        """The embedding the server returns for this text, before any normalisation."""
        seed = int.from_bytes(hashlib.sha256(f"{model}\0{text}".encode()).digest()[:8], "little")
        return (np.random.default_rng(seed).standard_normal(self.dimension_for(model)) * 3.0).astype(
            np.float32
        )

    # --- lifecycle ---

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return condition()

    def requests_for(self, model: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.model == model]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path.endswith("/embeddings")]

    # --- bookkeeping (handler threads) ---

    def _count(self, name: str, change: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + change)

    def _first_flaky(self, route: str, model: str) -> bool:
        with self._lock:
            if (route, model) in self._flaky_seen:
                return False
            self._flaky_seen.add((route, model))
            return True

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _over_rate_limit(self) -> float | None:
        """Seconds until the window ends if this request is over the rate limit, else None."""
        limit = self._rate_limit
        if limit is None:
            return None
        requests, seconds = limit
        now = time.time()
        window = int(now // seconds)
        with self._lock:
            current, counted = self._rate_window
            counted = counted + 1 if current == window else 1
            self._rate_window = (window, counted)
            if counted <= requests:
                return None
            self.rate_limited += 1
        return (window + 1) * seconds - now

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.pop(0)
            return failure


def _last_user_text(messages: object) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return content if isinstance(content, str) else ""
    return ""


def _all_text(body: dict) -> str:
    texts = []
    system = body.get("system")
    if isinstance(system, str):
        texts.append(system)
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(part.get("text", "") for part in content if isinstance(part, dict))
    return "".join(texts)


def _stamped(model: str, word: str) -> str:
    """A paced token carries the time it is sent (`w3@1764000000.123456 `), so that a client on
    the same machine measures what lies between the provider and itself."""
    return f"{word.rstrip()}@{time.time():.6f} " if _PACED.match(model) else word


def _answer_words(model: str, body: dict) -> list[str]:
    paced = _PACED.match(model)
    if paced:
        return [f"w{index} " for index in range(int(paced.group(1)))]
    text = f"Answer from {model} [1]: {_last_user_text(body.get('messages'))[:40]}"
    return re.findall(r"\S+\s*|\s+", text)


def _openai_error(status: int, message: str, kind: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _anthropic_error(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _failure_payload(route: str, status: int, message: str) -> dict:
    """An error status in the route's own format, with the type the provider gives it."""
    if route == "anthropic":
        if status == 429:
            kind = "rate_limit_error"
        elif status == 401:
            kind = "authentication_error"
        elif status < 500:
            kind = "invalid_request_error"
        else:
            kind = "api_error"
        return _anthropic_error(kind, message)
    if status == 429:
        kind = "rate_limit_exceeded"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    return _openai_error(status, message, kind)


def _make_handler(server: WireServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        # --- plumbing ---

        def do_GET(self) -> None:  # noqa: N802 (the http.server naming)
            self._send_json(404, _openai_error(404, "not found", "invalid_request_error"))

        def do_POST(self) -> None:  # noqa: N802
            server._enter()
            try:
                self._post()
            except (*_DISCONNECTED, ClientGone):
                self.close_connection = True
            finally:
                server._leave()

        def _send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

        def _send_raw(
            self, status: int, content: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)

        def _client_gone(self) -> bool:
            """Whether the client closed its end (readable with nothing to read)."""
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except (OSError, ValueError):
                return True

        def _start_events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

        def _chunk(self, text: str) -> None:
            if self._client_gone():
                raise ClientGone()
            data = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        def _end_events(self) -> None:
            self.wfile.write(b"0\r\n\r\n")

        def _drop(self) -> None:
            """Close the connection mid-body, as a crashed upstream would."""
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _stream(self, events: Iterator[str]) -> None:
            server._count("streams_started")
            server._count("active_streams")
            finished = False
            try:
                self._start_events()
                for event in events:
                    self._chunk(event)
                self._end_events()
                finished = True
            except (*_DISCONNECTED, ClientGone):
                server._count("closed_early")
                self.close_connection = True
            finally:
                server._count("active_streams", -1)
                if finished:
                    server._count("streams_completed")

        # --- routing ---

        def _post(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            headers = {name.lower(): value for name, value in self.headers.items()}
            parts = url.path.strip("/").split("/")
            embeddings = parts[-1] == "embeddings"
            if parts in (["v1", "chat", "completions"], ["v1", "embeddings"]):
                route, model = "openai", str((body or {}).get("model") or "")
            elif (
                len(parts) in (4, 5)
                and parts[:2] == ["openai", "deployments"]
                and parts[3:] in (["chat", "completions"], ["embeddings"])
            ):
                route, model = "azure", parts[2]
            elif parts == ["v1", "messages"]:
                route, model = "anthropic", str((body or {}).get("model") or "")
            else:
                route, model = "unknown", ""
            with server._lock:
                server.requests.append(
                    RecordedRequest("POST", url.path, query, headers, body, route, model, time.time())
                )

            if server._stall_seconds:
                server._released.wait(server._stall_seconds)
            failure = server._next_failure()
            if failure is not None:
                self._send_json(
                    failure.status, _failure_payload(route, failure.status, failure.message), failure.headers
                )
                return
            wait = server._over_rate_limit()
            if wait is not None:
                self._fail(route, 429, {"retry-after-ms": str(max(1, round(wait * 1000)))})
                return
            if route == "unknown":
                self._send_json(404, _openai_error(404, f"no route for {url.path}", "invalid_request_error"))
                return
            if not self._authorised(route, headers):
                return
            if route == "azure" and not query.get("api-version"):
                self._send_json(404, {"error": {"code": "404", "message": "Resource not found"}})
                return
            if route == "anthropic" and not headers.get("anthropic-version"):
                self._send_json(
                    400, _anthropic_error("invalid_request_error", "anthropic-version: header is required")
                )
                return
            if embeddings:
                self._embeddings(model, body)
                return
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not model:
                self._bad_request(route, "The body needs a model and messages.")
                return
            self._behave(route, model, body)

        def _authorised(self, route: str, headers: dict[str, str]) -> bool:
            if server.api_key is None:
                return True
            if route == "openai":
                if headers.get("authorization") == f"Bearer {server.api_key}":
                    return True
                given = headers.get("authorization", "").removeprefix("Bearer ")
                self._send_json(
                    401,
                    _openai_error(
                        401,
                        f"Incorrect API key provided: {given[:3]}***{given[-2:]}.",
                        "invalid_request_error",
                        "invalid_api_key",
                    ),
                )
            elif route == "azure":
                if headers.get("api-key") == server.api_key:
                    return True
                self._send_json(
                    401,
                    {
                        "error": {
                            "code": "401",
                            "message": "Access denied due to invalid subscription key or wrong API endpoint.",
                        }
                    },
                )
            else:
                # anthropic 2.x sends its API key as `Authorization: Bearer`; older clients as x-api-key.
                if server.api_key in (
                    headers.get("x-api-key"),
                    headers.get("authorization", "").removeprefix("Bearer "),
                ):
                    return True
                self._send_json(401, _anthropic_error("authentication_error", "invalid x-api-key"))
            return False

        def _bad_request(self, route: str, message: str) -> None:
            if route == "anthropic":
                self._send_json(400, _anthropic_error("invalid_request_error", message))
            else:
                self._send_json(400, _openai_error(400, message, "invalid_request_error"))

        def _fail(self, route: str, status: int, headers: dict[str, str] | None = None) -> None:
            self._send_json(status, _failure_payload(route, status, f"wire server failure {status}"), headers)

        def _embeddings(self, model: str, body: object) -> None:
            if not isinstance(body, dict) or not model:
                self._bad_request("openai", "you must provide a model parameter")
                return
            texts = body.get("input")
            if isinstance(texts, str):
                texts = [texts]
            if (
                not isinstance(texts, list)
                or not texts
                or not all(isinstance(text, str) and text for text in texts)
            ):
                self._bad_request("openai", "'$.input' is invalid.")
                return
            seconds, per_input = server._embedding_latency
            if seconds or per_input:
                server._released.wait(seconds + per_input * len(texts))
            as_base64 = body.get("encoding_format") == "base64" and not server.floats_only
            data = []
            for index, text in enumerate(texts):
                vector = server.vector_for(model, text)
                encoded = (
                    base64.b64encode(vector.astype("<f4").tobytes()).decode()
                    if as_base64
                    else vector.tolist()
                )
                data.append({"object": "embedding", "index": index, "embedding": encoded})
            tokens = sum(len(text.split()) or 1 for text in texts)
            # Out of order on purpose: clients must place vectors by their index.
            data.reverse()
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": model,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )

        def _behave(self, route: str, model: str, body: dict) -> None:
            streaming = bool(body.get("stream"))
            if model == "fail-500":
                self._fail(route, 500)
                return
            if model == "flaky-429" and server._first_flaky(route, model):
                self._fail(route, 429, {"retry-after": "0", "retry-after-ms": "10"})
                return
            if model == "hang":
                server._released.wait(server.hang_seconds)
            if model == "garbage":
                if streaming:
                    event = "event: content_block_delta\n" if route == "anthropic" else ""
                    self._stream(iter([f"{event}data: {{this is not json\n\n", "data: [DONE]\n\n"]))
                else:
                    self._send_raw(200, b"<html>upstream error</html>", "application/json")
                return

            words = _answer_words(model, body)
            paced = _PACED.match(model)
            usage = {"prompt": max(1, len(_all_text(body)) // 4), "completion": len(words)}
            with server._lock:
                server.last_usage = dict(usage)
            if not streaming:
                self._send_json(200, self._complete(route, model, "".join(words), usage))
                return
            if model == "cut-stream":
                self._cut_stream(route, model, words)
                return
            pause = int(paced.group(2)) / 1000 if paced else 0.0
            if route == "anthropic":
                events = self._anthropic_events(model, words, usage, pause)
            else:
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                events = self._openai_events(
                    model, words, usage if include_usage and model != "no-usage" else None, pause
                )
            self._stream(events)

        def _cut_stream(self, route: str, model: str, words: list[str]) -> None:
            server._count("streams_started")
            self._start_events()
            first = words[:3]
            events = (
                self._anthropic_events(model, first, None, 0.0, complete=False)
                if route == "anthropic"
                else self._openai_events(model, first, None, 0.0, complete=False)
            )
            for event in events:
                self._chunk(event)
            self._drop()

        # --- formats ---

        def _complete(self, route: str, model: str, text: str, usage: dict[str, int]) -> dict:
            if route == "anthropic":
                return {
                    "id": "msg_wire",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage["prompt"], "output_tokens": usage["completion"]},
                }
            return {
                "id": "chatcmpl-wire",
                "object": "chat.completion",
                "created": _CREATED,
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": usage["prompt"],
                    "completion_tokens": usage["completion"],
                    "total_tokens": usage["prompt"] + usage["completion"],
                },
            }

        @staticmethod
        def _openai_events(
            model: str, words: list[str], usage: dict[str, int] | None, pause: float, complete: bool = True
        ) -> Iterator[str]:
            def chunk(choices: list, **extra: object) -> str:
                payload = {
                    "id": "chatcmpl-wire",
                    "object": "chat.completion.chunk",
                    "created": _CREATED,
                    "model": model,
                    "choices": choices,
                    **extra,
                }
                return f"data: {json.dumps(payload)}\n\n"

            yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            for index, word in enumerate(words):
                if pause and index:
                    time.sleep(pause)
                yield chunk(
                    [{"index": 0, "delta": {"content": _stamped(model, word)}, "finish_reason": None}]
                )
            if not complete:
                return
            yield chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if usage is not None:
                yield chunk(
                    [],
                    usage={
                        "prompt_tokens": usage["prompt"],
                        "completion_tokens": usage["completion"],
                        "total_tokens": usage["prompt"] + usage["completion"],
                    },
                )
            yield "data: [DONE]\n\n"

        @staticmethod
        def _anthropic_events(
            model: str, words: list[str], usage: dict[str, int] | None, pause: float, complete: bool = True
        ) -> Iterator[str]:
            def event(name: str, payload: dict) -> str:
                return f"event: {name}\ndata: {json.dumps({'type': name, **payload})}\n\n"

            input_tokens = usage["prompt"] if usage else 1
            yield event(
                "message_start",
                {
                    "message": {
                        "id": "msg_wire",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                    }
                },
            )
            yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            yield event("ping", {})
            for index, word in enumerate(words):
                if pause and index:
                    time.sleep(pause)
                yield event(
                    "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word}}
                )
            if not complete:
                return
            yield event("content_block_stop", {"index": 0})
            yield event(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": usage["completion"] if usage else len(words)},
                },
            )
            yield event("message_stop", {})

    return Handler


@contextmanager
def wire_server(
    *,
    api_key: str | None = "test-key",
    hang_seconds: float = 30.0,
    default_dimension: int = 8,
    dimensions: dict[str, int] | None = None,
) -> Iterator[WireServer]:
    """Serve on a free local port for the duration of the block."""
    server = WireServer(
        api_key=api_key, hang_seconds=hang_seconds, default_dimension=default_dimension, dimensions=dimensions
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
