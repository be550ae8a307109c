"""The LINE channel: how fast the webhook acknowledges LINE's calls, and how long a LINE user
waits for the answer, against a member's chat on the same server and provider.

    .venv/bin/python bench/line_webhook.py                  # 50 senders × 3 calls; 20 + 2 × 50 answers
    .venv/bin/python bench/line_webhook.py --senders 10 --calls 2 --sequential 5 --bursts 1

The platform runs as in production: PostgreSQL (its own database, `bench_line`, on the server of
`DATABASE_URL`, dropped and created at the start and dropped at the end, as bench/rls_overhead.py
does), Redis (`REDIS_URL`, else redis://127.0.0.1:6379/0: the Celery broker, cache and channel
layer), the web server production runs (uvicorn with production's options and `--processes` worker
processes, 2 as docker-compose.yml; `--server daphne --processes 1` for the one daphne process
measured before 2026-12-01) serving `platform_project.asgi` with DEBUG off, one Celery worker
(prefork, `--worker-concurrency` 2, as docker-compose.yml runs it), a Milvus Lite server; one
tenant (no limits) with a few documents and a LINE channel; its provider is the test suite's wire
server (OpenAI-compatible, in its own process, a short answer at once), and LINE's Messaging API
is line_channel/fake_server.py (in this process), which the platform reaches through
`LINE_API_BASE` with the official line-bot-sdk client, as the tests do. When PostgreSQL or Redis
cannot be reached, the script hands over a result marked skipped.

Every webhook call carries one text event of its own LINE user, signed as LINE signs
(`X-Line-Signature`: base64 HMAC-SHA256 of the raw body with the channel secret; the SDK's
`SignatureValidator` checks one first), one keep-alive HTTP/1.1 connection per sender:

1. Acknowledgement: the time to the 200 (the signature checked, the events stored, the task
   queued), first from one sender (`--sequential` calls: what a call costs), then from
   `--senders` senders posting `--calls` calls each, back to back. The worker answers them
   meanwhile, as it would. Floor: `GET /healthz` (a view that returns a constant) in the same
   pattern, just before. LINE waits about a second and then counts a failure: the target is
   ≤ 100 ms at p95 (issue 14).
2. Answer delivered: the webhook call sent → the reply (with the event's reply token) received
   by the fake LINE server: signature, storing, the broker, the worker (conversation, retrieval,
   the provider, the answer saved) and the reply call. Against a member's chat,
   `POST /v1/tenants/{id}/chat` with an end user's JWT, each member continuing their own
   conversation as each LINE user does: request sent → the answer received. First one question
   at a time (`--sequential`, LINE and member alternating), then bursts of `--senders` questions
   at once (`--bursts`, alternating).
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from _environment import (
    ROOT,
    Results,
    _free_port,
    add_results_argument,
    bench_tenant,
    http_request,
    machine,
    member_tokens,
    percentile,
    prepare_environment,
    redis_unreachable,
    skip,
    start_local_provider,
    start_web_server,
    start_worker,
    stop_milvus_server,
    stop_worker,
    versions,
    wait_for_port,
)
from rls_overhead import drop_database, recreate_database, server_url

MODEL = "bench-short-answer"  # the wire server answers any other model name at once
SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105 - the fake channel's, for signing
ACCESS_TOKEN = "bench-line-channel-access-token-0123456789"  # noqa: S105 - the fake LINE API's
QUESTIONS = ["保固多久？", "退貨要在幾天內申請？", "How long is the warranty?", "運費怎麼算？"]
ACK_TARGET_MS = 100


def sign(body: bytes) -> str:
    """As LINE signs a webhook call: base64 of HMAC-SHA256 of the raw body, the channel secret as key."""
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def line_user(number: int) -> str:
    return f"U{number:032x}"


def webhook_call(path: str, user: str, text: str) -> tuple[bytes, str]:
    """A signed webhook request with one text event from `user`, and the event's reply token."""
    reply_token = uuid.uuid4().hex
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": uuid.uuid4().hex[:26].upper(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": reply_token,
        "message": {"id": str(uuid.uuid4().int)[:18], "type": "text", "quoteToken": "q", "text": text},
    }
    body = json.dumps({"destination": "U" + "0" * 32, "events": [event]}, ensure_ascii=False).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Line-Signature: {sign(body)}\r\n\r\n"
    )
    return head.encode() + body, reply_token


class Arrivals(list):
    """The fake LINE server's record of calls, telling `on_call` the moment each arrives."""

    def __init__(self, on_call):
        super().__init__()
        self.on_call = on_call

    def append(self, call) -> None:
        super().append(call)
        self.on_call(call, time.perf_counter())


class Replies:
    """When the reply of each reply token reached the fake LINE server; awaitable."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrived: dict[str, float] = {}
        self.waiting: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self.pushes = 0

    def on_call(self, call, at: float) -> None:
        if call.path.endswith("/push"):
            self.pushes += 1
        if not call.path.endswith("/reply"):
            return
        token = call.body.get("replyToken", "")
        with self.lock:
            self.arrived[token] = at
            waiting = self.waiting.pop(token, None)
        if waiting:
            loop, future = waiting
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(at))

    async def wait(self, token: str, timeout: float = 120) -> float:
        loop = asyncio.get_running_loop()
        with self.lock:
            if token in self.arrived:
                return self.arrived[token]
            future = loop.create_future()
            self.waiting[token] = (loop, future)
        return await asyncio.wait_for(future, timeout)


async def exchange(reader, writer, payload: bytes) -> tuple[int, bytes]:
    """One request on a keep-alive connection: its status and body."""
    writer.write(payload)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return int(status_line.split()[1]), await reader.readexactly(length)


async def connections(port: int, count: int) -> list:
    return [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]


def close(opened: list) -> None:
    for _reader, writer in opened:
        writer.close()


async def acknowledgements(port: int, path: str, senders: int, calls: int) -> dict:
    """`senders` connections posting `calls` webhook calls each, back to back."""
    opened = await connections(port, senders)
    latencies: list[float] = []
    tokens: list[tuple[str, float]] = []
    failures = 0

    async def sender(number: int, reader, writer) -> None:
        nonlocal failures
        for call in range(calls):
            payload, token = webhook_call(path, line_user(number), QUESTIONS[call % len(QUESTIONS)])
            started = time.perf_counter()
            status, _body = await exchange(reader, writer, payload)
            latencies.append(time.perf_counter() - started)
            tokens.append((token, started))
            failures += status != 200

    try:
        await asyncio.gather(*(sender(n, r, w) for n, (r, w) in enumerate(opened)))
    finally:
        close(opened)
    return {"latencies": latencies, "tokens": tokens, "failures": failures}


async def floor_requests(port: int, senders: int, calls: int) -> list[float]:
    opened = await connections(port, senders)
    latencies: list[float] = []
    request = http_request("GET", "/healthz")

    async def sender(reader, writer) -> None:
        for _ in range(calls):
            started = time.perf_counter()
            await exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(sender(r, w) for r, w in opened))
    finally:
        close(opened)
    return latencies


async def line_answers(
    port: int, path: str, replies: Replies, users: list[int], question: int
) -> list[float]:
    """Each of `users` asks one question at once; webhook sent → reply at the fake LINE server."""
    opened = await connections(port, len(users))

    async def one(user: int, reader, writer) -> float:
        payload, token = webhook_call(path, line_user(user), QUESTIONS[question % len(QUESTIONS)])
        started = time.perf_counter()
        status, body = await exchange(reader, writer, payload)
        if status != 200:
            raise SystemExit(f"the webhook answered {status}: {body[:200]!r}")
        return await replies.wait(token) - started

    try:
        return list(await asyncio.gather(*(one(u, r, w) for u, (r, w) in zip(users, opened, strict=True))))
    finally:
        close(opened)


async def member_answers(port: int, tenant_id: str, members: list[dict], question: int) -> list[float]:
    """Each of `members` asks one question at once, in their own conversation; sent → answer."""
    opened = await connections(port, len(members))

    async def one(member: dict, reader, writer) -> float:
        body = {"message": QUESTIONS[question % len(QUESTIONS)]}
        if member.get("conversation_id"):
            body["conversation_id"] = member["conversation_id"]
        payload = http_request("POST", f"/v1/tenants/{tenant_id}/chat", token=member["token"], body=body)
        started = time.perf_counter()
        status, answer = await exchange(reader, writer, payload)
        elapsed = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"member chat answered {status}: {answer[:200]!r}")
        member["conversation_id"] = json.loads(answer)["conversation_id"]
        return elapsed

    try:
        return list(await asyncio.gather(*(one(m, r, w) for m, (r, w) in zip(members, opened, strict=True))))
    finally:
        close(opened)


def setup_tenant(provider_url: str, documents: int, users: int) -> tuple[str, str, list[str]]:
    """A tenant with no limits, documents, the local provider, a LINE channel; `users` end users' tokens."""
    from line_channel.services import line_channel_create

    tenant, _admin = bench_tenant(documents=documents, provider_url=provider_url, model=MODEL)
    channel = line_channel_create(
        tenant=tenant,
        name="Bench 官方帳號",
        channel_id="1650000001",
        channel_secret=SECRET,
        channel_access_token=ACCESS_TOKEN,
    )
    return str(tenant.pk), f"/v1/line/{channel.pk}/webhook", member_tokens(tenant, users)


def ms(values: list[float], share: float) -> float:
    return percentile(values, share) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--senders", type=int, default=50, help="concurrent senders (LINE users, members)")
    parser.add_argument("--calls", type=int, default=3, help="webhook calls per sender, acknowledgement part")
    parser.add_argument("--sequential", type=int, default=20, help="questions one at a time, per path")
    parser.add_argument(
        "--bursts", type=int, default=2, help="bursts of --senders questions at once, per path"
    )
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--server", default="uvicorn", choices=["uvicorn", "daphne", "gunicorn"])
    parser.add_argument("--processes", type=int, default=2, help="web server processes")
    parser.add_argument("--database", default="bench_line", help="the database created, used and dropped")
    add_results_argument(parser)
    arguments = parser.parse_args()
    if arguments.database.startswith("test"):
        raise SystemExit("database names test* belong to the test suite: choose another --database")
    results = Results(arguments.results)

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    database_url, maintenance = server_url(arguments.database)
    reason = redis_unreachable(redis_url) or recreate_database(maintenance, arguments.database)
    if reason:
        skip(results, reason)
        return

    sys.path.insert(0, str(ROOT))
    from line_channel.fake_server import FakeLine

    replies = Replies()
    users = max(arguments.senders, 1)
    fake = FakeLine(tokens={ACCESS_TOKEN}, profiles={line_user(n): f"LINE 使用者 {n}" for n in range(users)})
    fake.calls = Arrivals(replies.on_call)
    fake.start()

    workdir = Path(tempfile.mkdtemp(prefix="bench-line-"))
    milvus = prepare_environment(workdir, production=True)
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "LINE_API_BASE": fake.base_url,
            "CHAT_USER_REQUESTS_PER_MINUTE": "0",
            "EMBEDDING_THREADS": "1",
        }
    )
    port = _free_port()
    provider, provider_port = start_local_provider()
    web = worker = None
    try:
        wait_for_port(provider_port, provider)
        import django

        django.setup()  # documents are ingested here, eagerly (prepare_environment)
        from linebot.v3.webhook import SignatureValidator

        tenant_id, path, member_tokens = setup_tenant(
            f"http://127.0.0.1:{provider_port}/v1", arguments.documents, users
        )
        sample, _token = webhook_call(path, line_user(0), "hello")
        head, _, body = sample.partition(b"\r\n\r\n")
        signature = head.decode().rsplit("X-Line-Signature: ", 1)[1]
        assert SignatureValidator(SECRET).validate(body.decode(), signature), "signature refused by the SDK"

        # The web process and the worker queue and run tasks through Redis, as in production.
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
        web = start_web_server(port, server=arguments.server, processes=arguments.processes)
        worker = start_worker(arguments.worker_concurrency)
        wait_for_port(port, web)
        members = [{"token": token} for token in member_tokens]
        # Warm-up: every worker child and the web process load the model and the index.
        for question in range(2):
            asyncio.run(
                line_answers(port, path, replies, list(range(2 * arguments.worker_concurrency)), question)
            )
            asyncio.run(member_answers(port, tenant_id, members[:2], question))
        print(f"Machine: {machine()}")
        print(f"Versions: {versions('Django', arguments.server, 'celery', 'line-bot-sdk', 'psycopg')}")
        print(
            f"Web server: {arguments.server}, {arguments.processes} process(es), a pool of database connections each"
        )

        with results.section():
            print(
                f"PostgreSQL, Redis, one daphne process and one Celery worker ({arguments.worker_concurrency} "
                "processes), DEBUG off; the fake LINE API in the benchmark's process; the provider: a local "
                "OpenAI-compatible server answering at once\n"
            )
            print(f"## Webhook acknowledgement, {arguments.senders} senders × {arguments.calls} calls\n")

            async def drain(tokens: list[tuple[str, float]]) -> list[float]:
                return [await replies.wait(token, 600) - sent for token, sent in tokens]

            # One sender first: what one call costs when nothing waits before it.
            single_floor = asyncio.run(floor_requests(port, 1, arguments.sequential))
            single = asyncio.run(acknowledgements(port, path, 1, arguments.sequential))
            asyncio.run(drain(single["tokens"]))
            floor = asyncio.run(floor_requests(port, arguments.senders, arguments.calls))
            started = time.perf_counter()
            acks = asyncio.run(acknowledgements(port, path, arguments.senders, arguments.calls))
            acked = time.perf_counter()
            backlog = asyncio.run(drain(acks["tokens"]))
            drained = time.perf_counter()
            print("| request | senders | p50 ms | p95 ms | max ms | non-200 |")
            print("| --- | --- | --- | --- | --- | --- |")
            for name, senders, latencies, failures in (
                ("floor: GET /healthz (no work)", 1, single_floor, None),
                ("POST webhook (signed, one text event)", 1, single["latencies"], single["failures"]),
                ("floor: GET /healthz (no work)", arguments.senders, floor, None),
                (
                    "POST webhook (signed, one text event)",
                    arguments.senders,
                    acks["latencies"],
                    acks["failures"],
                ),
            ):
                print(
                    f"| {name} | {senders} | {ms(latencies, 0.5):.1f} | {ms(latencies, 0.95):.1f} "
                    f"| {max(latencies) * 1000:.1f} | {'–' if failures is None else f'{failures} of {len(latencies)}'} |"
                )
            latencies = acks["latencies"]
            print(
                f"\nThe {len(latencies)} questions of the {arguments.senders} senders were all acknowledged in "
                f"{acked - started:.1f} s and answered (the reply at the fake LINE server) {drained - started:.1f} s "
                f"after the first was sent: {len(latencies) / (drained - started):.1f} answers/s by the worker; "
                f"each waited {ms(backlog, 0.5):.0f} ms p50, {ms(backlog, 0.95):.0f} ms p95 for its answer in "
                "that backlog."
            )
            note = f"{acks['failures']} of {len(latencies)} non-200" if acks["failures"] else ""
            results.figure(
                "webhook acknowledgement p95, one sender",
                ms(single["latencies"], 0.95),
                "ms",
                floor=ms(single_floor, 0.95),
                floor_name="GET /healthz, no work",
            )
            for share, label in ((0.5, "p50"), (0.95, f"p95 (target ≤ {ACK_TARGET_MS} ms)")):
                results.figure(
                    f"webhook acknowledgement {label}, {arguments.senders} concurrent senders",
                    ms(latencies, share),
                    "ms",
                    floor=ms(floor, share),
                    floor_name="GET /healthz, no work",
                    note=note,
                )

        with results.section():
            print("## Answer delivered: LINE against member chat\n")
            print(
                "| questions | LINE: webhook → reply at LINE, p50 / p95 ms | member: POST chat → answer, "
                "p50 / p95 ms | LINE / member p50 |"
            )
            print("| --- | --- | --- | --- |")
            levels = [(1, arguments.sequential), (arguments.senders, arguments.bursts)]
            for level, repeats in levels:
                line, member = [], []
                for repeat in range(repeats):
                    line += asyncio.run(line_answers(port, path, replies, list(range(level)), repeat))
                    member += asyncio.run(member_answers(port, tenant_id, members[:level], repeat))
                label = "one at a time" if level == 1 else f"{level} at once"
                print(
                    f"| {label} ({len(line)} per path) | {ms(line, 0.5):.1f} / {ms(line, 0.95):.1f} "
                    f"| {ms(member, 0.5):.1f} / {ms(member, 0.95):.1f} | {ms(line, 0.5) / ms(member, 0.5):.2f} |",
                    flush=True,
                )
                for share, name in ((0.5, "p50"), (0.95, "p95")):
                    results.figure(
                        f"LINE answer delivered {name}, {label}",
                        ms(line, share),
                        "ms",
                        floor=ms(member, share),
                        floor_name="member chat answer, same run",
                    )
            if replies.pushes:
                print(
                    f"\n{replies.pushes} answers went by push instead of reply (late or refused reply token)."
                )
    finally:
        for process in (web, provider):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        if worker is not None:
            stop_worker(worker)
        stop_milvus_server(milvus)
        fake.stop()
        from django.db import connections

        connections.close_all()
        drop_database(maintenance, arguments.database)


if __name__ == "__main__":
    main()
