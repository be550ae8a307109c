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
from pathlib import Path

from _environment import (
    ROOT,
    _free_port,
    machine,
    percentile,
    prepare_environment,
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
                raise RuntimeError(event["error"])


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


PROVIDER_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[2])
from llm.tests.wire_server import LLMWireServer
server = LLMWireServer(api_key=None, port=int(sys.argv[1]))
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
    arguments = parser.parse_args()
    model = f"paced-{arguments.tokens}-{arguments.pace}"

    workdir = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    milvus = prepare_environment(workdir, production=True)
    os.environ.update({"CHAT_USER_REQUESTS_PER_MINUTE": "0", "EMBEDDING_THREADS": "1"})
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
        web = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(web_port),
                "-v",
                "0",
                "platform_project.asgi:application",
            ],
            cwd=ROOT,
        )
        wait_for_port(web_port, web)
        ws_base = f"ws://127.0.0.1:{web_port}"
        asyncio.run(platform_level(ws_base, tenant_id, tokens[:1]))  # warm-up: model, index, imports

        print(f"Machine: {machine()}")
        print(f"Versions: {versions('Django', 'channels', 'daphne', 'openai', 'websockets')}")
        print(
            f"Provider: {arguments.tokens} tokens, {arguments.pace} ms apart, own process; platform: one daphne process\n"
        )
        asyncio.run(bare_level(provider_url, model, 1))  # warm-up of the floor's client
        header = (
            f"{'conversations':>13} | {'client TTFT p50/p95 ms':>22} | {'retrieval p50 ms':>16} | "
            f"{'floor TTFT p50 ms':>17} | {'added TTFT p50/p95 ms':>21} | {'token latency p50/p95 ms':>24} | "
            f"{'floor p50/p95 ms':>16} | {'overhead/token ms':>17}"
        )
        print(header)
        print("-" * len(header))
        for level in arguments.levels:
            measured = asyncio.run(platform_level(ws_base, tenant_id, tokens[:level]))
            floor = asyncio.run(bare_level(provider_url, model, level))
            assert all(len(item["delays"]) == arguments.tokens for item in measured), "tokens lost"
            floor_ttft = statistics.median(item["ttft"] for item in floor)
            ttft = [item["ttft"] for item in measured]
            added = [item["ttft"] - item["timings"]["retrieval_ms"] / 1000 - floor_ttft for item in measured]
            delays = [delay for item in measured for delay in item["delays"]]
            floor_delays = [delay for item in floor for delay in item["delays"]]
            ms = 1000
            print(
                f"{level:>13} | {percentile(ttft, 0.5) * ms:>10.1f} / {percentile(ttft, 0.95) * ms:>9.1f} | "
                f"{statistics.median(item['timings']['retrieval_ms'] for item in measured):>16.1f} | "
                f"{floor_ttft * ms:>17.1f} | "
                f"{percentile(added, 0.5) * ms:>9.1f} / {percentile(added, 0.95) * ms:>9.1f} | "
                f"{percentile(delays, 0.5) * ms:>11.2f} / {percentile(delays, 0.95) * ms:>10.2f} | "
                f"{percentile(floor_delays, 0.5) * ms:>7.2f} / {percentile(floor_delays, 0.95) * ms:>6.2f} | "
                f"{(percentile(delays, 0.5) - percentile(floor_delays, 0.5)) * ms:>17.2f}",
                flush=True,
            )
    finally:
        for process in (web, provider):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        stop_milvus_server(milvus)


if __name__ == "__main__":
    main()
