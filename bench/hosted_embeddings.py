"""Hosted embeddings at network speed: chunks/s through the OpenAI provider against a provider
that takes as long as a real one, one request at a time against EMBEDDING_CONCURRENCY at once.

    .venv/bin/python bench/hosted_embeddings.py                  # about 2 minutes
    .venv/bin/python bench/hosted_embeddings.py --chunks 1024    # quicker

The provider: the test suite's wire server (testsupport/wire_server.py) in a process of its own
(as a real provider's work is not the client's), speaking
the OpenAI embeddings wire format to the real `openai` client through `knowledge.embedding`'s
OpenAIEmbedder (text-embedding-3-small, 1536 dimensions, base64 as the library asks), answering
each request after `--latency` seconds plus `--per-input` seconds a text, as a hosted provider's
time grows with the batch. The texts: chunks of about 500 characters (English and Traditional
Chinese), all different.

Rows: the old path (batches of EMBEDDING_BATCH_SIZE 32, one after another, as ingestion sent them
before), then batches of EMBEDDING_HOSTED_BATCH_SIZE at concurrency 1 and at the default
EMBEDDING_CONCURRENCY. The floor of each row is the provider's own limit: batch × concurrency ÷
(latency + per-input × batch), what an ideal client would get with no time of its own.

Then the same provider rate limited (`--limit` requests a second, extra requests answered 429
with `retry-after-ms` until the window ends), the default concurrency, three ways of living with
it: the platform's own retries (a 429's pause shared by every request), the platform's
EMBEDDING_REQUESTS_PER_MINUTE set to the limit (windows of one second stand for minutes, so the
run takes seconds), and the `openai` library's own retries (`max_retries`, each request on its
own) with the platform's turned off. Its floor: the requests' windows, whole from the first
(every row starts as a window starts), the last request taking its time after its window opens.
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time

from _environment import ROOT, Results, add_results_argument, machine, versions

MODEL = "text-embedding-3-small"
ENGLISH = (
    "Returns are accepted within seven days of delivery when the item is unused and in its box. "
    "Refunds go back to the card used for the order within five working days of our receipt. "
    "Opened software, gift cards and personalised items cannot be returned once delivered. "
    "Our warranty covers manufacturing faults for two years from the date on the invoice. "
    "Shipping to the outlying islands takes three more days and costs a flat fee per parcel. "
)
CHINESE = (
    "商品到貨後七天內，未拆封且包裝完整者可申請退貨，運費由本公司負擔。退款將於收到退貨後五個工作天內退回原信用卡，"
    "請留意銀行入帳時間。已拆封軟體、禮物卡及客製化商品，除瑕疵外恕不接受退貨。保固期間為兩年，自發票日期起算，"
    "人為損壞不在保固範圍內。離島地區配送需另加三天，並酌收固定運費，詳情請洽客服。"
)


def chunks(count: int, offset: int = 0) -> list[str]:
    return [f"{offset + index}: {(ENGLISH if index % 2 else CHINESE * 2)[:500]}" for index in range(count)]


def _serve(connection) -> None:
    """The provider's process: a wire server, driven by (method, args, kwargs) over the pipe."""
    sys.path.insert(0, str(ROOT))
    from testsupport.wire_server import WireServer

    server = WireServer(api_key=None)
    server.start()
    connection.send(server.port)
    while True:
        method, args, kwargs = connection.recv()
        if method == "stop":
            break
        if method == "counters":
            connection.send(
                {
                    "requests": len(server.embedding_requests),
                    "max_in_flight": server.max_in_flight,
                    "rate_limited": server.rate_limited,
                }
            )
            continue
        if method == "reset":
            server.requests.clear()
            server.max_in_flight = server.rate_limited = 0
        else:
            getattr(server, method)(*args, **kwargs)
        connection.send(None)
    server.stop()


class Provider:
    """The wire server in its own process (started before anything else is loaded here)."""

    def __init__(self) -> None:
        self._connection, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("fork").Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        self.base_url = f"http://127.0.0.1:{self._connection.recv()}/v1"

    def call(self, method: str, *args, **kwargs):
        self._connection.send((method, args, kwargs))
        return self._connection.recv()

    def stop(self) -> None:
        self._connection.send(("stop", (), {}))
        self._process.join(timeout=10)


def setup_django() -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "platform_project.settings",
            "VAR_DIR": tempfile.mkdtemp(prefix="hosted-embeddings-"),
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("REDIS_URL", None)  # one process: the cache in its memory does
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def run_row(
    provider: Provider, *, texts: list[str], batch: int, concurrency: int, sdk_retries: int = 0
) -> dict:
    """Embed `texts` through a fresh OpenAIEmbedder; answer the figures of the run."""
    from django.conf import settings

    from knowledge.embedding import OpenAIEmbedder

    settings.EMBEDDING_HOSTED_BATCH_SIZE = batch
    settings.EMBEDDING_CONCURRENCY = concurrency
    embedder = OpenAIEmbedder(model=MODEL, api_key="bench", base_url=provider.base_url)
    if sdk_retries:
        embedder._client = embedder._client.with_options(max_retries=sdk_retries)
    embedder.embed_passages(texts[:2])  # connection and first-use costs out of the timing
    # Start as a rate-limit window starts (the provider's are whole seconds), so that the first
    # window is a whole one and the floor is exact.
    time.sleep(1 - time.time() % 1 + 0.01)
    provider.call("reset")
    started, cpu = time.perf_counter(), time.process_time()
    vectors = embedder.embed_passages(texts)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert vectors.shape == (len(texts), 1536), vectors.shape
    counters = provider.call("counters")
    return {
        "seconds": elapsed,
        "chunks_per_second": len(texts) / elapsed,
        "client_cpu_ms": cpu * 1000 / counters["requests"],
        **counters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chunks", type=int, default=4096, help="chunks per row (the old path: a quarter)")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds a request takes at the provider")
    parser.add_argument("--per-input", type=float, default=0.002, help="and seconds more per text")
    parser.add_argument("--limit", type=int, default=2, help="requests a second in the rate-limited rows")
    add_results_argument(parser)
    arguments = parser.parse_args()
    provider = Provider()
    try:
        measure(arguments, provider)
    finally:
        provider.stop()


def measure(arguments: argparse.Namespace, provider: Provider) -> None:
    setup_django()
    from django.conf import settings

    from knowledge import embedding

    results = Results(arguments.results)
    batch, concurrency = settings.EMBEDDING_HOSTED_BATCH_SIZE, settings.EMBEDDING_CONCURRENCY
    latency, per_input = arguments.latency, arguments.per_input

    def floor(size: int, at_once: int) -> float:
        return size * at_once / (latency + per_input * size)

    rows = [
        ("old path: batches of 32, one at a time", 32, 1, arguments.chunks // 4),
        (f"batches of {batch}, concurrency 1", batch, 1, arguments.chunks),
        (
            f"batches of {batch}, concurrency {concurrency} (the defaults)",
            batch,
            concurrency,
            arguments.chunks,
        ),
    ]
    measured = {}
    with results.section():
        provider.call("embedding_latency", latency, per_input=per_input)
        print(
            f"{machine()}; {versions('openai')}. Provider: {latency * 1000:.0f} ms + {per_input * 1000:.1f} ms "
            f"a text per request, {MODEL} (1536 dimensions); chunks of about 500 characters.\n"
        )
        print(
            "| row | chunks | requests | most in flight | client CPU a request | seconds | chunks/s | floor "
            "| ratio | load average |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for label, size, at_once, count in rows:
            result = run_row(provider, texts=chunks(count), batch=size, concurrency=at_once)
            ideal = floor(size, at_once)
            measured[label] = (result, ideal)
            print(
                f"| {label} | {count} | {result['requests']} | {result['max_in_flight']} "
                f"| {result['client_cpu_ms']:.0f} ms | {result['seconds']:.2f} | {result['chunks_per_second']:.0f} | {ideal:.0f} "
                f"| {result['chunks_per_second'] / ideal:.2f} | {os.getloadavg()[0]:.2f} |",
                flush=True,
            )

        limit = arguments.limit
        print(
            f"\nRate limited: the provider admits {limit} requests a second and answers the rest 429 "
            f"(`retry-after-ms`: until the second ends); batches of {batch}, concurrency {concurrency}.\n"
        )
        print("| way | chunks | requests | 429s | seconds | chunks/s | floor | ratio |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        provider.call("rate_limit", limit, per_seconds=1.0)
        embedding.RATE_WINDOW_SECONDS = 1.0  # one-second windows stand for minutes
        # Whole windows from the first one: N requests need ceil(N / limit) of them, the last
        # request ending one request's time after its window opens.
        needed = -(-arguments.chunks // batch)
        limited_floor = arguments.chunks / ((-(-needed // limit) - 1) + latency + per_input * batch)
        ways = [
            ("the platform's retries, a 429 pausing all", {}, 0),
            (
                f"EMBEDDING_REQUESTS_PER_MINUTE = {limit * 60} (windows of 1 s)",
                {"EMBEDDING_REQUESTS_PER_MINUTE": limit * 60},
                0,
            ),
            (
                "the openai library's retries (max_retries=10), the platform's off",
                {"EMBEDDING_RETRY_SECONDS": 0},
                10,
            ),
        ]
        for label, overrides, sdk_retries in ways:
            saved = {name: getattr(settings, name) for name in overrides}
            for name, value in overrides.items():
                setattr(settings, name, value)
            try:
                result = run_row(
                    provider,
                    texts=chunks(arguments.chunks, offset=10**6),
                    batch=batch,
                    concurrency=concurrency,
                    sdk_retries=sdk_retries,
                )
            finally:
                for name, value in saved.items():
                    setattr(settings, name, value)
            measured[label] = (result, limited_floor)
            print(
                f"| {label} | {arguments.chunks} | {result['requests']} | {result['rate_limited']} "
                f"| {result['seconds']:.2f} | {result['chunks_per_second']:.0f} | {limited_floor:.0f} "
                f"| {result['chunks_per_second'] / limited_floor:.2f} |",
                flush=True,
            )
        print(f"\nLoad average after: {os.getloadavg()[0]:.2f}.")

    for label, (result, ideal) in measured.items():
        results.figure(
            f"chunks embedded, {label}",
            result["chunks_per_second"],
            "chunks/s",
            floor=ideal,
            floor_name="the provider's limit",
        )


if __name__ == "__main__":
    main()
