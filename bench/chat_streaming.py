"""What the platform adds to a streamed answer over WebSocket, at 1, 50 and 200 concurrent
conversations on one server process.

    .venv/bin/python bench/chat_streaming.py                       # 1, 50, 200 conversations
    .venv/bin/python bench/chat_streaming.py --levels 1 20 --tokens 50

A local provider (the test suite's wire server, OpenAI-compatible, its own process) streams
`--tokens` tokens `--pace` ms apart. The platform runs as production runs it: daphne serving
`platform_project.asgi` in its own process (DEBUG off), a Milvus Lite server, a tenant whose
provider is that local server. At each level, N clients open sockets and ask at once; each
records when its first token and its last token arrived.

The same N streams are then read straight from the provider with the `openai` client (the
floor). The figures:

- time to first token added by the platform = client's first token - retrieval (the platform's
  own measure, sent in the `done` event) - the provider's own first-token delay (the floor);
- per-token overhead = (client's first-to-last token time - the floor's) / tokens.
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

from _environment import ROOT, _free_port, machine, prepare_environment, stop_milvus_server, versions


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


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


async def one_conversation(url: str, question: str) -> dict:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None, open_timeout=120) as socket:
        sent = time.perf_counter()
        await socket.send(json.dumps({"type": "message", "message": question}))
        first = last = None
        tokens = 0
        while True:
            event = json.loads(await asyncio.wait_for(socket.recv(), 300))
            now = time.perf_counter()
            if event["type"] == "token":
                tokens += 1
                first = first or now
                last = now
            elif event["type"] == "done":
                return {
                    "ttft": first - sent,
                    "stream": last - first,
                    "tokens": tokens,
                    "retrieval": event["timings"]["retrieval_ms"] / 1000,
                }
            elif event["type"] == "error":
                raise RuntimeError(event["error"])


async def platform_level(ws_base: str, tenant_id: str, tokens: list[str]) -> list[dict]:
    urls = [f"{ws_base}/ws/tenants/{tenant_id}/chat/?token={token}" for token in tokens]
    return await asyncio.gather(*(one_conversation(url, "How long is the warranty?") for url in urls))


async def one_bare_stream(client, model: str) -> dict:
    sent = time.perf_counter()
    first = last = None
    tokens = 0
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "How long is the warranty?"}], stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            tokens += 1
            first = first or now
            last = now
    return {"ttft": first - sent, "stream": last - first, "tokens": tokens}


async def bare_level(provider_url: str, model: str, concurrency: int) -> list[dict]:
    import openai

    async with openai.AsyncOpenAI(
        api_key="bench", base_url=provider_url, max_retries=0, timeout=300
    ) as client:
        return await asyncio.gather(*(one_bare_stream(client, model) for _ in range(concurrency)))


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            raise SystemExit(f"{process.args[2]} exited with {process.returncode}")
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port}")


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
        header = (
            f"{'conversations':>13} | {'client TTFT p50/p95 ms':>22} | {'retrieval p50 ms':>16} | "
            f"{'floor TTFT p50 ms':>17} | {'added TTFT p50/p95 ms':>21} | {'per-token overhead ms':>21}"
        )
        print(header)
        print("-" * len(header))
        for level in arguments.levels:
            measured = asyncio.run(platform_level(ws_base, tenant_id, tokens[:level]))
            floor = asyncio.run(bare_level(provider_url, model, level))
            assert all(item["tokens"] == arguments.tokens for item in measured), "tokens lost"
            floor_ttft = statistics.median(item["ttft"] for item in floor)
            floor_stream = statistics.median(item["stream"] for item in floor)
            added = [item["ttft"] - item["retrieval"] - floor_ttft for item in measured]
            overhead = [(item["stream"] - floor_stream) / arguments.tokens for item in measured]
            ttft = [item["ttft"] for item in measured]
            print(
                f"{level:>13} | {percentile(ttft, 0.5) * 1000:>10.1f} / {percentile(ttft, 0.95) * 1000:>9.1f} | "
                f"{statistics.median(item['retrieval'] for item in measured) * 1000:>16.1f} | "
                f"{floor_ttft * 1000:>17.1f} | "
                f"{percentile(added, 0.5) * 1000:>9.1f} / {percentile(added, 0.95) * 1000:>9.1f} | "
                f"{statistics.median(overhead) * 1000:>21.3f}",
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
