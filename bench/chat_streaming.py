"""What the platform adds to a streamed answer over WebSocket, at 1, 50 and 200 concurrent
conversations on one server process.

    .venv/bin/python bench/chat_streaming.py                       # 1, 50, 200 conversations
    .venv/bin/python bench/chat_streaming.py --levels 1 20 --tokens 50

A local provider (the test suite's wire server, OpenAI-compatible, in its own process) streams
`--tokens` tokens `--pace` ms apart, each stamped with the time it was sent. The platform runs as
in production: daphne serving `platform_project.asgi` in its own process (DEBUG off), a Milvus
Lite server, one tenant with one document whose provider is that local server. At each level, N
clients open sockets and ask at once. Then the same N streams are read straight from the
provider with the `openai` client: the floor.

- per-token latency: when a token reached the client minus when the provider sent it (same
  machine, same clock); the overhead is the platform's median minus the floor's;
- time to first token added by the platform: the client's time to first token, minus the
  retrieval of that question (the platform's own measure, in the `done` event's `timings`), minus
  the floor's time to first token at the same concurrency. What remains is the platform's own
  work and its waiting: admission, saving the question, the prompt, the provider call, delivery.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _environment import (
    ROOT,
    Results,
    _free_port,
    add_results_argument,
    machine,
    percentile,
    prepare_environment,
    start_web_server,
    stop_milvus_server,
    versions,
    wait_for_port,
)


def setup_tenant(provider_url: str, model: str, users: int) -> tuple[str, list[str]]:
    """A tenant with no limits, one document, the local provider, and `users` end users' tokens."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from accounts.services import token_pair_for
    from llm.services import assistant_update
    from tenants.models import Plan
    from tenants.services import membership_create, tenant_create

    plan, _ = Plan.objects.get_or_create(code="bench", defaults={"name": "Bench (no limits)"})
    tenant = tenant_create(name="Bench Co.", plan=plan)
    assistant_update(
        tenant=tenant,
        data={"providers": [{"kind": "openai_compatible", "model": model, "base_url": provider_url}]},
    )
    tokens = []
    for number in range(users):
        user = User.objects.create_user(f"user{number}@bench.example", "bench-password-2026")
        membership = membership_create(tenant=tenant, user=user, role="end_user")
        tokens.append(token_pair_for(user=user, membership=membership)[0])
    return str(tenant.pk), tokens


def _sent_at(delta: str) -> float | None:
    """The provider's send time stamped in a paced token (`w3@1764000000.123456 `)."""
    _, _, stamp = delta.strip().partition("@")
    try:
        return float(stamp)
    except ValueError:
        return None


async def one_conversation(url: str, question: str) -> dict:
    """The times of one streamed answer, or `failure`: a conversation that fails (daphne refuses a
    handshake not done within its 5 s, the platform answers an error event) is counted, as a REST
    benchmark counts its non-2xx, instead of stopping the benchmark."""
    from websockets.exceptions import WebSocketException

    try:
        return await _converse(url, question)
    except (OSError, TimeoutError, WebSocketException) as error:
        return {"failure": f"{type(error).__name__}: {error}"}


async def _converse(url: str, question: str) -> dict:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None, open_timeout=120) as socket:
        sent = time.perf_counter()
        await socket.send(json.dumps({"type": "message", "message": question}))
        first = None
        delays = []
        while True:
            event = json.loads(await asyncio.wait_for(socket.recv(), 300))
            if event["type"] == "token":
                arrived = time.time()
                first = first or time.perf_counter()
                stamp = _sent_at(event["delta"])
                if stamp is not None:
                    delays.append(arrived - stamp)
            elif event["type"] == "done":
                return {"ttft": first - sent, "delays": delays, "timings": event["timings"]}
            elif event["type"] == "error":
                return {"failure": f"error event: {event['error']}"}


async def platform_level(ws_base: str, tenant_id: str, tokens: list[str]) -> list[dict]:
    urls = [f"{ws_base}/ws/tenants/{tenant_id}/chat/?token={token}" for token in tokens]
    return await asyncio.gather(*(one_conversation(url, "How long is the warranty?") for url in urls))


async def one_bare_stream(client, model: str) -> dict:
    """The provider read straight with the openai client, the way the platform reads it (the
    raw event stream, JSON per line), so that the difference is the platform alone."""
    sent = time.perf_counter()
    first = None
    delays = []
    request = client.chat.completions.with_streaming_response.create(
        model=model, messages=[{"role": "user", "content": "How long is the warranty?"}], stream=True
    )
    async with request as response:
        async for line in response.iter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            choices = json.loads(line[5:]).get("choices") or []
            content = choices and (choices[0].get("delta") or {}).get("content")
            if content:
                arrived = time.time()
                first = first or time.perf_counter()
                stamp = _sent_at(content)
                if stamp is not None:
                    delays.append(arrived - stamp)
    return {"ttft": first - sent, "delays": delays}


async def bare_level(provider_url: str, model: str, concurrency: int) -> list[dict]:
    import openai

    async with openai.AsyncOpenAI(
        api_key="bench", base_url=provider_url, max_retries=0, timeout=300
    ) as client:
        return await asyncio.gather(*(one_bare_stream(client, model) for _ in range(concurrency)))


def measure_level(
    *,
    ws_base: str,
    tenant_id: str,
    tokens: list[str],
    provider_url: str,
    model: str,
    token_count: int,
    results,
) -> None:
    """`len(tokens)` conversations at once through the platform, then as many streams straight
    from the provider (the floor); print a row of the table and record the headline figures."""
    level = len(tokens)
    conversations = asyncio.run(platform_level(ws_base, tenant_id, tokens))
    floor = asyncio.run(bare_level(provider_url, model, level))
    measured = [item for item in conversations if "failure" not in item]
    failures = Counter(item["failure"] for item in conversations if "failure" in item)
    failed = ""
    if failures:
        reason, count = failures.most_common(1)[0]
        failed = f"{level - len(measured)} of {level} failed" + (
            f": {reason[:80]}" if len(failures) == 1 else f", {count} with {reason[:80]}"
        )
        print(f"  ({failed})", file=sys.stderr, flush=True)
    if not measured:
        raise SystemExit(f"every conversation failed at {level}: {failed}")
    assert all(len(item["delays"]) == token_count for item in measured), "tokens lost"
    floor_ttft = statistics.median(item["ttft"] for item in floor)
    ttft = [item["ttft"] for item in measured]
    retrieval = statistics.median(item["timings"]["retrieval_ms"] for item in measured)
    added = [item["ttft"] - item["timings"]["retrieval_ms"] / 1000 - floor_ttft for item in measured]
    delays = [delay for item in measured for delay in item["delays"]]
    floor_delays = [delay for item in floor for delay in item["delays"]]
    overhead = percentile(delays, 0.5) - percentile(floor_delays, 0.5)
    ms = 1000
    print(
        f"| {level} | {percentile(ttft, 0.5) * ms:.1f} / {percentile(ttft, 0.95) * ms:.1f} ms "
        f"| {retrieval:.1f} ms | {floor_ttft * ms:.1f} ms "
        f"| {percentile(added, 0.5) * ms:.1f} / {percentile(added, 0.95) * ms:.1f} ms "
        f"| {percentile(delays, 0.5) * ms:.2f} / {percentile(delays, 0.95) * ms:.2f} ms "
        f"| {percentile(floor_delays, 0.5) * ms:.2f} / {percentile(floor_delays, 0.95) * ms:.2f} ms "
        f"| {overhead * ms:.2f} ms | {level - len(measured)} |",
        flush=True,
    )
    results.figure(
        f"time to first token p50, {level} conversation{'s' if level > 1 else ''}",
        percentile(ttft, 0.5) * ms,
        "ms",
        floor=floor_ttft * ms,
        floor_name="provider read directly",
        note="; ".join(filter(None, [f"of which retrieval {retrieval:.0f} ms", failed])),
    )
    results.figure(
        f"token latency p50, {level} conversation{'s' if level > 1 else ''}",
        percentile(delays, 0.5) * ms,
        "ms",
        floor=percentile(floor_delays, 0.5) * ms,
        floor_name="provider read directly",
        note="; ".join(filter(None, [f"overhead per token {overhead * ms:.2f} ms", failed])),
    )


PROVIDER_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[2])
from testsupport.wire_server import WireServer
server = WireServer(api_key=None, port=int(sys.argv[1]))
server.start()
while True:
    time.sleep(3600)
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--pace", type=int, default=10, help="ms between the provider's tokens")
    add_results_argument(parser)
    arguments = parser.parse_args()
    results = Results(arguments.results)
    model = f"paced-{arguments.tokens}-{arguments.pace}"

    workdir = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    milvus = prepare_environment(workdir, production=True)
    os.environ.update(
        {
            "CHAT_USER_REQUESTS_PER_MINUTE": "0",
            "EMBEDDING_THREADS": "1",
            # The provider is ours, on the loopback: production refuses internal addresses.
            "LLM_ALLOW_PRIVATE_BASE_URLS": "true",
        }
    )
    provider_port, web_port = _free_port(), _free_port()
    provider = subprocess.Popen(  # noqa: S603 - our interpreter, fixed script
        [sys.executable, "-c", PROVIDER_SCRIPT, str(provider_port), str(ROOT)], cwd=ROOT
    )
    web = None
    try:
        wait_for_port(provider_port, provider)
        provider_url = f"http://127.0.0.1:{provider_port}/v1"
        sys.path.insert(0, str(ROOT))
        tenant_id, tokens = setup_tenant(provider_url, model, max(arguments.levels))
        web = start_web_server(web_port)
        wait_for_port(web_port, web)
        ws_base = f"ws://127.0.0.1:{web_port}"
        asyncio.run(platform_level(ws_base, tenant_id, tokens[:1]))  # warm-up: model, index, imports

        print(f"Machine: {machine()}")
        print(f"Versions: {versions('Django', 'channels', 'daphne', 'openai', 'websockets')}")
        asyncio.run(bare_level(provider_url, model, 1))  # warm-up of the floor's client
        with results.section():
            print(
                f"Provider: {arguments.tokens} tokens, {arguments.pace} ms apart, own process; "
                "platform: one daphne process\n"
            )
            print(
                "| conversations | client TTFT p50 / p95 | retrieval p50 | floor TTFT p50 | added TTFT p50 / p95 "
                "| token latency p50 / p95 | floor p50 / p95 | overhead per token | failed |"
            )
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            for level in arguments.levels:
                measure_level(
                    ws_base=ws_base,
                    tenant_id=tenant_id,
                    tokens=tokens[:level],
                    provider_url=provider_url,
                    model=model,
                    token_count=arguments.tokens,
                    results=results,
                )
    finally:
        for process in (web, provider):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        stop_milvus_server(milvus)


if __name__ == "__main__":
    main()
