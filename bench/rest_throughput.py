"""REST throughput and latency under concurrent clients, against a view that does no work.

    .venv/bin/python bench/rest_throughput.py                    # 50 clients, 20 s per endpoint
    .venv/bin/python bench/rest_throughput.py --clients 10 --seconds 5

The platform runs as in production: one daphne process serving `platform_project.asgi` with
DEBUG off, a Milvus Lite server, one tenant with a few documents, its default (offline)
provider, limits off. N clients keep one HTTP/1.1 connection each and send requests back to
back for a fixed time, one endpoint after another:

- the floor: `GET /healthz`, a Django view that returns a constant;
- a list: `GET /v1/tenants/{id}/documents` (JWT, tenant resolution, a paginated query);
- chat: `POST /v1/tenants/{id}/chat` with the offline provider (retrieval: query embedding,
  dense and keyword search; the answer and the conversation saved).

It prints requests per second and latency p50/p95 for each, and each as a ratio to the floor.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
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
    start_web_server,
    stop_milvus_server,
    versions,
    wait_for_port,
)

QUESTIONS = ["How long is the warranty?", "保固多久？", "退貨要在幾天內申請？", "How do I request a repair?"]


def setup_tenant(documents: int) -> tuple[str, str, str]:
    """A tenant with no limits and a few documents; an agent's and an end user's access tokens."""
    tenant, _admin = bench_tenant(documents=documents)
    return str(tenant.pk), *member_tokens(tenant, 1, "agent"), *member_tokens(tenant, 1)


async def client(port: int, request: bytes | None, make_request, until: float, latencies: list[float]) -> int:
    """One keep-alive connection sending requests back to back; returns the count of non-2xx."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    failures = 0
    number = 0
    try:
        while time.perf_counter() < until:
            payload = request or make_request(number)
            number += 1
            started = time.perf_counter()
            writer.write(payload)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.split()[1].startswith(b"2"):
                failures += 1
    finally:
        writer.close()
    return failures


async def load(port: int, clients: int, seconds: float, request=None, make_request=None) -> dict:
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    failures = await asyncio.gather(
        *(client(port, request, make_request, until, latencies) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.5) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
        "failures": sum(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--documents", type=int, default=20)
    add_results_argument(parser)
    arguments = parser.parse_args()
    results = Results(arguments.results)

    workdir = Path(tempfile.mkdtemp(prefix="bench-rest-"))
    milvus = prepare_environment(workdir, production=True)
    os.environ.update({"CHAT_USER_REQUESTS_PER_MINUTE": "0", "EMBEDDING_THREADS": "1"})
    sys.path.insert(0, str(ROOT))
    tenant_id, agent_token, token = setup_tenant(arguments.documents)
    port = _free_port()
    web = start_web_server(port)
    try:
        wait_for_port(port, web)
        documents = http_request("GET", f"/v1/tenants/{tenant_id}/documents", token=agent_token)

        def chat(number: int) -> bytes:
            question = QUESTIONS[number % len(QUESTIONS)]
            return http_request(
                "POST", f"/v1/tenants/{tenant_id}/chat", token=token, body={"message": question}
            )

        asyncio.run(load(port, 2, 3, make_request=chat))  # warm-up: model, index, imports
        print(f"Machine: {machine()}")
        print(f"Versions: {versions('Django', 'djangorestframework', 'daphne', 'channels')}")
        endpoints = {  # the floor first
            "floor: GET /healthz (no work)": {"request": http_request("GET", "/healthz")},
            "GET documents (list)": {"request": documents},
            "POST chat (offline provider)": {"make_request": chat},
        }
        with results.section():
            print(
                f"One daphne process, DEBUG off, SQLite; {arguments.clients} clients, one keep-alive connection "
                f"each, {arguments.seconds:.0f} s per endpoint\n"
            )
            print("| endpoint | requests/s | p50 ms | p95 ms | throughput / floor | p95 / floor | non-2xx |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            floor = None
            for name, request in endpoints.items():
                result = asyncio.run(load(port, arguments.clients, arguments.seconds, **request))
                floor = floor or result  # the first endpoint
                print(
                    f"| {name} | {result['per_second']:.1f} | {result['p50']:.1f} | {result['p95']:.1f} | "
                    f"{result['per_second'] / floor['per_second']:.2f} | {result['p95'] / floor['p95']:.2f} | "
                    f"{result['failures']} of {result['requests']} |",
                    flush=True,
                )
                if result is floor:
                    continue
                failures = (
                    f"{result['failures']} of {result['requests']} non-2xx" if result["failures"] else ""
                )
                for figure, key, unit in (
                    ("throughput", "per_second", "requests/s"),
                    ("latency p95", "p95", "ms"),
                ):
                    results.figure(
                        f"{name}, {arguments.clients} clients: {figure}",
                        result[key],
                        unit,
                        floor=floor[key],
                        floor_name="GET /healthz, no work",
                        note=failures,
                    )
    finally:
        web.terminate()
        web.wait(timeout=30)
        stop_milvus_server(milvus)


if __name__ == "__main__":
    main()
