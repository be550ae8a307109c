"""What the platform adds to a streamed answer over WebSocket, at 1, 50 and 200 concurrent
conversations, served as production serves them.

    .venv/bin/python bench/chat_streaming.py                       # 1, 50, 200 conversations
    .venv/bin/python bench/chat_streaming.py --levels 1 20 --tokens 50
    .venv/bin/python bench/chat_streaming.py --processes 1          # one uvicorn worker

A local provider (the test suite's wire server, OpenAI-compatible, in its own process) streams
`--tokens` tokens `--pace` ms apart, each stamped with the time it was sent. The platform runs as
in production: uvicorn with production's options (platform_project/webserver.py) and
`--processes` worker processes (`--server daphne` for the one-process server measured before),
DEBUG off, PostgreSQL (its own database, `--database`, created and dropped) and Redis (`--redis`:
the cache and the channel layer, as several processes need), a Milvus Lite server, one tenant with
one document whose provider is that local server. Without PostgreSQL or Redis it hands run_all.py
a result marked skipped. At each level, N clients open sockets and ask at once. Then the same N
streams are read straight from the provider with the `openai` client: the floor.

- per-token latency: when a token reached the client minus when the provider sent it (same
  machine, same clock); the overhead is the platform's median minus the floor's;
- time to first token added by the platform: the client's time to first token, minus the
  retrieval of that question (the platform's own measure, in the `done` event's `timings`), minus
  the floor's time to first token at the same concurrency. What remains is the platform's own
  work and its waiting: admission, saving the question, the prompt, the provider call, delivery.
- the compute bound: the best time to first token N simultaneous questions could have on this
  machine, if the cores did nothing but their work and shared it perfectly: the provider floor
  at N + N x the CPU one question's retrieval costs (query embedding, the keyword statistics, the
  dense and sparse searches, the chunks read back: measured in the same run, the benchmark's
  process plus its PostgreSQL backend's plus the Milvus server's CPU time, over
  `--cpu-questions` questions one at a time) / the machine's cores, whatever the number of web
  processes. The ratio of the platform's p50 to it says how much of the wait is queueing.
- web CPU per answer: the CPU time the web server's processes used during a level, per
  conversation and per token streamed (retrieval, the prompt, relaying the tokens, saving);
  beside it the CPU the floor's client (this process) spent reading the same streams: reading a
  token from the provider is work the platform cannot avoid either.
- open loop (skipped with `--no-open-loop`): 200 conversations (`--background`) stream long answers while new
  questions arrive at a fixed rate on sockets already open; each rate runs `--step-seconds`, and
  rates rise as shares of the compute bound's rate (cores / CPU per question) until the arrivals'
  time to first token p95 passes 500 ms. The highest rate that held is reported, as a share.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
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
    bench_tenant,
    machine,
    member_tokens,
    percentile,
    prepare_environment,
    process_tree_cpu_seconds,
    redis_unreachable,
    server_cpu_seconds,
    skip,
    start_local_provider,
    start_web_server,
    stop_milvus_server,
    stop_web_server,
    versions,
    wait_for_port,
)
from rls_overhead import drop_database, recreate_database, server_url


def setup_tenant(provider_url: str, model: str, users: int, name: str = "Bench Co.") -> tuple[str, list[str]]:
    """A tenant with no limits, the local provider, and `users` end users' tokens."""
    tenant, _admin = bench_tenant(name=name, provider_url=provider_url, model=model)
    return str(tenant.pk), member_tokens(tenant, users)


QUESTION = "How long is the warranty?"
OPEN_LOOP_TTFT_P95 = 0.5  # seconds: the arrivals' time to first token p95 that a rate must keep
OPEN_LOOP_SHARES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def question_cpu_seconds(tenant_id: str, milvus, questions: int) -> float:
    """CPU seconds one question's retrieval costs (this process's CPU time, where the embedding
    runs, plus its PostgreSQL backend's, where the database is read, plus the Milvus server's),
    over `questions` questions asked one at a time after a warm-up: the work, without any waiting."""
    from django.db import connection

    from knowledge import retrieval
    from tenants import rls
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def database_cpu() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    with rls.scope(tenant.pk):
        for _ in range(3):
            retrieval.search(tenant=tenant, query=QUESTION, mode="hybrid")
        process, index, database = time.process_time(), server_cpu_seconds(milvus), database_cpu()
        for _ in range(questions):
            retrieval.search(tenant=tenant, query=QUESTION, mode="hybrid")
        spent = time.process_time() - process + server_cpu_seconds(milvus) - index + database_cpu() - database
    return spent / questions


def _sent_at(delta: str) -> list[float]:
    """The provider's send times stamped in paced tokens (`w3@1764000000.123456 `): one a token,
    several in a delta that carries the pieces that arrived together (conversations/chat.py,
    `coalesced`)."""
    stamps = []
    for word in delta.split():
        _, _, stamp = word.partition("@")
        try:
            stamps.append(float(stamp))
        except ValueError:
            continue
    return stamps


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
        frames = 0
        while True:
            event = json.loads(await asyncio.wait_for(socket.recv(), 300))
            if event["type"] == "token":
                frames += 1
                arrived = time.time()
                first = first or time.perf_counter()
                delays += [arrived - stamp for stamp in _sent_at(event["delta"])]
            elif event["type"] == "done":
                return {"ttft": first - sent, "delays": delays, "timings": event["timings"], "frames": frames}
            elif event["type"] == "error":
                return {"failure": f"error event: {event['error']}"}


async def platform_level(ws_base: str, tenant_id: str, tokens: list[str]) -> list[dict]:
    urls = [f"{ws_base}/ws/tenants/{tenant_id}/chat/?token={token}" for token in tokens]
    return await asyncio.gather(*(one_conversation(url, QUESTION) for url in urls))


async def one_bare_stream(client, model: str) -> dict:
    """The provider read straight with the openai client, the way the platform reads it (the
    raw event stream, JSON per line), so that the difference is the platform alone."""
    sent = time.perf_counter()
    first = None
    delays = []
    request = client.chat.completions.with_streaming_response.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], stream=True
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
                delays += [arrived - stamp for stamp in _sent_at(content)]
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
    question_cpu: float,
    web,
    results,
) -> None:
    """`len(tokens)` conversations at once through the platform, then as many streams straight
    from the provider (the floor); print a row of the table and record the headline figures."""
    level = len(tokens)
    cpu = process_tree_cpu_seconds(web)
    conversations = asyncio.run(platform_level(ws_base, tenant_id, tokens))
    web_cpu = (process_tree_cpu_seconds(web) - cpu) / level
    reading = time.process_time()
    floor = asyncio.run(bare_level(provider_url, model, level))
    floor_cpu = (time.process_time() - reading) / level
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
    cores = os.cpu_count() or 1
    bound = floor_ttft + level * question_cpu / cores
    ms = 1000
    print(
        f"| {level} | {percentile(ttft, 0.5) * ms:.1f} / {percentile(ttft, 0.95) * ms:.1f} ms "
        f"| {retrieval:.1f} ms | {floor_ttft * ms:.1f} ms "
        f"| {percentile(added, 0.5) * ms:.1f} / {percentile(added, 0.95) * ms:.1f} ms "
        f"| {percentile(delays, 0.5) * ms:.2f} / {percentile(delays, 0.95) * ms:.2f} ms "
        f"| {percentile(floor_delays, 0.5) * ms:.2f} / {percentile(floor_delays, 0.95) * ms:.2f} ms "
        f"| {overhead * ms:.2f} ms | {bound * ms:.1f} ms | {percentile(ttft, 0.5) / bound:.2f} "
        f"| {web_cpu * ms:.0f} ms ({web_cpu / token_count * 1e6:.0f} µs a token) "
        f"| {floor_cpu * ms:.0f} ms ({floor_cpu / token_count * 1e6:.0f} µs a token) "
        f"| {statistics.median(item['frames'] for item in measured):.0f} "
        f"| {level - len(measured)} |",
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
        f"time to first token p50 against the compute bound, {level} conversation{'s' if level > 1 else ''}",
        percentile(ttft, 0.5) * ms,
        "ms",
        floor=bound * ms,
        floor_name=(
            f"provider floor + {level} × {question_cpu * ms:.1f} ms CPU per question ÷ {cores} cores"
        ),
        note=failed,
    )
    results.figure(
        f"token latency p50, {level} conversation{'s' if level > 1 else ''}",
        percentile(delays, 0.5) * ms,
        "ms",
        floor=percentile(floor_delays, 0.5) * ms,
        floor_name="provider read directly",
        note="; ".join(filter(None, [f"overhead per token {overhead * ms:.2f} ms", failed])),
    )
    results.figure(
        f"web CPU per answer, {level} conversation{'s' if level > 1 else ''}",
        web_cpu * ms,
        "ms",
        floor=floor_cpu * ms,
        floor_name="CPU of the floor's client reading the same stream",
        note=f"{token_count} tokens: {web_cpu / token_count * 1e6:.0f} µs of CPU a token, retrieval included",
    )


# --- Open loop: questions arriving at a fixed rate while 200 conversations stream -------------


async def _open_sockets(urls: list[str], batch: int = 50) -> list:
    """Sockets opened a batch at a time (daphne drops handshakes it cannot finish in 5 s)."""
    from websockets.asyncio.client import connect

    sockets = []
    for start in range(0, len(urls), batch):
        sockets += await asyncio.gather(
            *(connect(url, max_size=None, open_timeout=120) for url in urls[start : start + batch]),
            return_exceptions=True,
        )
    return sockets


async def _ask(socket, on_first_token=None) -> float | str:
    """Ask on an open socket; the time to first token (or why it failed), then read the answer
    to its end so that the server never waits on this client."""
    sent = time.perf_counter()
    await socket.send(json.dumps({"type": "message", "message": QUESTION}))
    ttft = None
    while True:
        event = json.loads(await asyncio.wait_for(socket.recv(), 120))
        if event["type"] == "token" and ttft is None:
            ttft = time.perf_counter() - sent
            if on_first_token is not None:
                on_first_token()
        elif event["type"] == "done":
            return ttft if ttft is not None else "no token"
        elif event["type"] == "error":
            return f"error event: {event['error'].get('code')}"


async def open_loop_step(
    *, background_urls: list[str], arrival_url: str, rate: float, seconds: float
) -> tuple[list[float], Counter, int]:
    """Start the background conversations, wait until every one streams, then ask `rate`
    questions a second for `seconds` on sockets opened beforehand. The arrivals' times to first
    token, their failures, and how many background conversations streamed."""
    from websockets.exceptions import WebSocketException

    arrivals = max(1, round(rate * seconds))
    arrival_sockets = await _open_sockets([arrival_url] * arrivals)
    background_sockets = await _open_sockets(background_urls)
    streaming = 0
    all_streaming = asyncio.Event()
    opened = [socket for socket in background_sockets if not isinstance(socket, BaseException)]

    def one_more():
        nonlocal streaming
        streaming += 1
        if streaming == len(opened):
            all_streaming.set()

    background = [asyncio.create_task(_ask(socket, one_more)) for socket in opened]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_streaming.wait(), 60)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    async def arrive(number: int, socket) -> float | str:
        if isinstance(socket, BaseException):
            return f"{type(socket).__name__}: {socket}"
        await asyncio.sleep(max(0.0, start + number / rate - loop.time()))
        try:
            return await _ask(socket)
        except (OSError, TimeoutError, WebSocketException) as error:
            return f"{type(error).__name__}: {error}"

    outcomes = await asyncio.gather(
        *(arrive(number, socket) for number, socket in enumerate(arrival_sockets))
    )
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    for socket in [*opened, *arrival_sockets]:
        if not isinstance(socket, BaseException):
            with contextlib.suppress(Exception):
                await socket.close()
    ttfts = [outcome for outcome in outcomes if isinstance(outcome, float)]
    failures = Counter(outcome for outcome in outcomes if not isinstance(outcome, float))
    return ttfts, failures, streaming


def open_loop(
    *,
    ws_base: str,
    background: tuple[str, list[str]],
    arrivals: tuple[str, list[str]],
    question_cpu: float,
    seconds: float,
    results,
) -> None:
    """Rates rising as shares of the compute bound's rate, until the arrivals' time to first
    token p95 passes OPEN_LOOP_TTFT_P95; print a row per rate and record the highest that held."""
    cores = os.cpu_count() or 1
    bound_rate = cores / question_cpu
    background_tenant, background_tokens = background
    arrival_tenant, arrival_tokens = arrivals
    background_urls = [
        f"{ws_base}/ws/tenants/{background_tenant}/chat/?token={token}" for token in background_tokens
    ]
    arrival_url = f"{ws_base}/ws/tenants/{arrival_tenant}/chat/?token={arrival_tokens[0]}"
    print(
        f"\nOpen loop: {len(background_urls)} conversations streaming; questions arriving at a fixed rate "
        f"for {seconds:g} s; compute bound {bound_rate:.1f} questions/s ({cores} cores ÷ "
        f"{question_cpu * 1000:.1f} ms CPU per question)\n"
    )
    print("| rate | share of the bound | arrivals TTFT p50 / p95 | background streaming | failed |")
    print("| --- | --- | --- | --- | --- |")
    held = 0.0
    for share in OPEN_LOOP_SHARES:
        rate = share * bound_rate
        ttfts, failures, streaming = asyncio.run(
            open_loop_step(
                background_urls=background_urls, arrival_url=arrival_url, rate=rate, seconds=seconds
            )
        )
        failed = sum(failures.values())
        p50 = percentile(ttfts, 0.5) if ttfts else math.inf
        p95 = percentile(ttfts, 0.95) if ttfts else math.inf
        reason = f" ({failures.most_common(1)[0][0][:60]})" if failures else ""
        print(
            f"| {rate:.1f}/s | {share:.2f} | {p50 * 1000:.0f} / {p95 * 1000:.0f} ms "
            f"| {streaming} of {len(background_urls)} | {failed}{reason} |",
            flush=True,
        )
        if p95 > OPEN_LOOP_TTFT_P95 or failed:
            break
        held = rate
        time.sleep(2)  # the closed conversations' last writes
    results.figure(
        f"open loop: highest question rate with time to first token p95 ≤ 500 ms, "
        f"{len(background_urls)} conversations streaming",
        held,
        "questions/s",
        floor=bound_rate,
        floor_name=f"compute bound, {cores} cores ÷ {question_cpu * 1000:.1f} ms CPU per question",
        note=f"share of the bound {held / bound_rate:.2f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--pace", type=int, default=10, help="ms between the provider's tokens")
    parser.add_argument(
        "--cpu-questions", type=int, default=40, help="questions whose retrieval CPU time is measured"
    )
    parser.add_argument("--no-open-loop", action="store_true", help="skip the open-loop test")
    parser.add_argument(
        "--background", type=int, default=200, help="conversations streaming in the open loop"
    )
    parser.add_argument(
        "--background-pace", type=int, default=50, help="ms between the background answers' tokens"
    )
    parser.add_argument("--step-seconds", type=float, default=5.0, help="seconds each open-loop rate runs")
    parser.add_argument(
        "--server",
        choices=("uvicorn", "daphne", "gunicorn"),
        default="uvicorn",
        help="production runs uvicorn",
    )
    parser.add_argument(
        "--processes", type=int, default=2, help="web processes (production: WEB_CONCURRENCY, 2 in compose)"
    )
    parser.add_argument(
        "--coalesce-ms",
        type=int,
        help="CHAT_STREAM_COALESCE_MS for the server (default: the setting's; 0: one event a delta)",
    )
    parser.add_argument("--database", default="bench_chat", help="the database created, used and dropped")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="a Redis database of its own")
    add_results_argument(parser)
    arguments = parser.parse_args()
    if arguments.database.startswith("test"):
        raise SystemExit("database names test* belong to the test suite: choose another --database")
    results = Results(arguments.results)
    model = f"paced-{arguments.tokens}-{arguments.pace}"

    url, maintenance = server_url(arguments.database)
    skipped = redis_unreachable(arguments.redis) or recreate_database(maintenance, arguments.database)
    if skipped:
        skip(results, skipped)
        return
    import redis

    redis.Redis.from_url(arguments.redis).flushdb()
    workdir = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    milvus = prepare_environment(workdir, production=True)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "REDIS_URL": arguments.redis,
            "CHAT_USER_REQUESTS_PER_MINUTE": "0",
            "EMBEDDING_THREADS": "1",
        }
    )
    os.environ.pop("WEB_CONCURRENCY", None)  # the server is told its count
    if arguments.coalesce_ms is not None:
        os.environ["CHAT_STREAM_COALESCE_MS"] = str(arguments.coalesce_ms)
    web_port = _free_port()
    provider, provider_port = start_local_provider()
    web = None
    try:
        wait_for_port(provider_port, provider)
        provider_url = f"http://127.0.0.1:{provider_port}/v1"
        sys.path.insert(0, str(ROOT))
        tenant_id, tokens = setup_tenant(provider_url, model, max(arguments.levels))
        # The open loop's background answers last longer than a step; its arrivals' are short.
        background = setup_tenant(
            provider_url, f"paced-600-{arguments.background_pace}", 1, "Bench background"
        )
        arrivals = setup_tenant(provider_url, f"paced-20-{arguments.pace}", 1, "Bench arrivals")
        question_cpu = question_cpu_seconds(tenant_id, milvus, arguments.cpu_questions)
        from django.conf import settings
        from django.db import connections

        connections.close_all()  # the database is dropped at the end
        web = start_web_server(web_port, server=arguments.server, processes=arguments.processes)
        wait_for_port(web_port, web)
        ws_base = f"ws://127.0.0.1:{web_port}"
        # Warm-up of every process (model, index, imports). Each loads the embedding model in
        # the background at start; then enough conversations at once that the kernel, which
        # hands a connection to whichever worker accepts first, gives every process some.
        time.sleep(10)
        for _ in range(2):
            asyncio.run(platform_level(ws_base, tenant_id, tokens[: 10 * arguments.processes]))

        print(f"Machine: {machine()}")
        print(f"Versions: {versions('Django', 'channels', arguments.server, 'openai', 'websockets')}")
        asyncio.run(bare_level(provider_url, model, 1))  # warm-up of the floor's client
        with results.section():
            print(
                f"Provider: {arguments.tokens} tokens, {arguments.pace} ms apart, own process; "
                f"platform: {arguments.server}, {arguments.processes} "
                f"process{'es' if arguments.processes > 1 else ''}, PostgreSQL and Redis, "
                f"token events coalesced every {settings.CHAT_STREAM_COALESCE_MS} ms; "
                f"CPU per question's retrieval {question_cpu * 1000:.1f} ms "
                f"(this process + its PostgreSQL backend + Milvus, {arguments.cpu_questions} questions "
                "one at a time)\n"
            )
            print(
                "| conversations | client TTFT p50 / p95 | retrieval p50 | floor TTFT p50 | added TTFT p50 / p95 "
                "| token latency p50 / p95 | floor p50 / p95 | overhead per token | compute bound | TTFT p50 ÷ bound "
                "| web CPU per answer | floor's CPU per stream | token frames per answer p50 | failed |"
            )
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            for level in arguments.levels:
                measure_level(
                    ws_base=ws_base,
                    tenant_id=tenant_id,
                    tokens=tokens[:level],
                    provider_url=provider_url,
                    model=model,
                    token_count=arguments.tokens,
                    question_cpu=question_cpu,
                    web=web,
                    results=results,
                )
            if not arguments.no_open_loop:
                open_loop(
                    ws_base=ws_base,
                    background=(background[0], background[1] * arguments.background),
                    arrivals=arrivals,
                    question_cpu=question_cpu,
                    seconds=arguments.step_seconds,
                    results=results,
                )
    finally:
        for process in (web, provider):
            if process is not None:
                stop_web_server(process)
        stop_milvus_server(milvus)
        drop_database(maintenance, arguments.database)


if __name__ == "__main__":
    main()
