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
import json
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
    machine,
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
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from accounts.services import token_pair_for
    from knowledge.services import document_upload
    from tenants.models import Plan
    from tenants.services import membership_create, tenant_create

    plan, _ = Plan.objects.get_or_create(code="bench", defaults={"name": "Bench (no limits)"})
    tenant = tenant_create(name="Bench Co.", plan=plan)
    admin = User.objects.create_user("admin@bench.example", "bench-password-2026")
    membership_create(tenant=tenant, user=admin, role="tenant_admin")
    for number in range(documents):
        text = (
            f"Policy {number}. Every laptop carries a two-year warranty; batteries one year. "
            f"退貨請於到貨後七天內申請，運費滿一千元免運。Repairs: open ticket {number}."
        )
        upload = SimpleUploadedFile(f"policy-{number}.txt", text.encode())
        document_upload(tenant=tenant, uploaded_by=admin, upload=upload)
    tokens = []
    for role in ("agent", "end_user"):
        user = User.objects.create_user(f"{role}@bench.example", "bench-password-2026")
        tokens.append(
            token_pair_for(user=user, membership=membership_create(tenant=tenant, user=user, role=role))[0]
        )
    return str(tenant.pk), *tokens


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


def http_request(
    method: str, path: str, *, token: str | None = None, body: dict | None = None, origin: str | None = None
) -> bytes:
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    headers = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if origin:
        headers.append(f"Origin: {origin}")
    if token:
        headers.append(f"Authorization: Bearer {token}")
    if body is not None:
        headers += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + data


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
