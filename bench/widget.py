"""The website widget: visitor sessions, widget chat against member chat on the same server and
provider, and the transfer size of `/widget.js`.

    .venv/bin/python bench/widget.py                          # 50 clients, 3 rounds of 6 s per path
    .venv/bin/python bench/widget.py --clients 10 --seconds 3 --rounds 1

The platform runs as in production: one daphne process serving `platform_project.asgi` with
DEBUG off, a Milvus Lite server, the embedded SQLite; one tenant (no limits) with a few
documents and a widget that allows one origin (no daily cap; the per-visitor message limit and
the session throttle off, as for the members' per-user limit); its provider is the test suite's
wire server (OpenAI-compatible, in its own process, a short answer at once). N clients keep one
HTTP/1.1 connection each and send requests back to back for a fixed time:

- the floor: `GET /healthz`, a Django view that returns a constant;
- visitor sessions: `POST /v1/widget/sessions` with the publishable key and an allowed `Origin`,
  each a new anonymous visitor (a contact, a visitor, a resume token and a visitor token);
- chat, member against visitor, in alternating rounds so that both see the same machine:
  `POST /v1/tenants/{id}/chat` with an end user's JWT (one user per client) against
  `POST /v1/widget/chat` with a visitor token (one visitor per client), the page's `Origin` and
  `page_url` as the widget sends them. Both run the same chat service (retrieval, the provider
  call, the question and the answer saved). Besides throughput and latency, the web process's
  CPU time per chat (user + system, from /proc) says what each path costs the server.
- `/widget.js`: fetched with `Accept-Encoding: gzip`; when the server does not compress it, the
  body is gzipped here (level 6, a proxy's usual level, and 9) and that is said.
"""

import argparse
import asyncio
import functools
import gzip
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _environment import (
    ROOT,
    Results,
    _cpu_seconds,
    _free_port,
    add_results_argument,
    bench_tenant,
    http_request,
    machine,
    member_tokens,
    percentile,
    prepare_environment,
    start_local_provider,
    start_web_server,
    stop_milvus_server,
    versions,
    wait_for_port,
)
from rest_throughput import client

ORIGIN = "https://shop.example.com.tw"
PAGE_URL = f"{ORIGIN}/products/laptop-x1"
QUESTIONS = ["How long is the warranty?", "保固多久？", "退貨要在幾天內申請？", "How do I request a repair?"]
MODEL = "bench-short-answer"  # the wire server answers any other model name at once, word by word
COST_TARGET = 1.2  # issue 13: the widget path costs at most 1.2 times the member path
SCRIPT_TARGET_KB = 10.0


def setup_tenant(provider_url: str, documents: int, users: int) -> tuple[str, str, list[str]]:
    """A tenant with no limits, documents, the local provider, a widget; `users` end users' tokens."""
    tenant, _admin = bench_tenant(documents=documents, provider_url=provider_url, model=MODEL)
    from widgets.services import widget_create

    widget, _secret = widget_create(tenant=tenant, name="Shop", allowed_origins=[ORIGIN], daily_message_cap=0)
    return str(tenant.pk), widget.public_key, member_tokens(tenant, users)


def session_request(public_key: str) -> bytes:
    body = {"public_key": public_key, "locale": "zh-Hant", "page_url": PAGE_URL}
    return http_request("POST", "/v1/widget/sessions", body=body, origin=ORIGIN)


def member_chat(tenant_id: str, token: str, number: int) -> bytes:
    question = QUESTIONS[number % len(QUESTIONS)]
    return http_request("POST", f"/v1/tenants/{tenant_id}/chat", token=token, body={"message": question})


def widget_chat(token: str, number: int) -> bytes:
    question = QUESTIONS[number % len(QUESTIONS)]
    body = {"message": question, "page_url": PAGE_URL}
    return http_request("POST", "/v1/widget/chat", token=token, body=body, origin=ORIGIN)


async def load(port: int, seconds: float, makers: list) -> dict:
    """One client per request maker (`make(number) -> bytes`), back to back for `seconds`."""
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    failures = await asyncio.gather(*(client(port, None, make, until, latencies) for make in makers))
    elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "elapsed": elapsed, "latencies": latencies, "failures": sum(failures)}


def summary(result: dict) -> dict:
    latencies = result["latencies"]
    return {
        **result,
        "per_second": result["requests"] / result["elapsed"],
        "p50": percentile(latencies, 0.5) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
    }


def open_sessions(port: int, public_key: str, count: int) -> list[str]:
    """`count` visitor sessions opened as a page opens them; their visitor tokens."""
    import json

    tokens = []
    for _ in range(count):
        request = urllib.request.Request(  # noqa: S310 - a fixed local URL
            f"http://127.0.0.1:{port}/v1/widget/sessions",
            data=json.dumps({"public_key": public_key, "page_url": PAGE_URL}).encode(),
            headers={"Content-Type": "application/json", "Origin": ORIGIN},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            tokens.append(json.loads(response.read())["token"])
    return tokens


def script_size(port: int) -> dict:
    request = urllib.request.Request(  # noqa: S310 - a fixed local URL
        f"http://127.0.0.1:{port}/widget.js", headers={"Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        body = response.read()
        encoding = response.headers.get("Content-Encoding", "")
    if encoding == "gzip":
        raw = gzip.decompress(body)
        return {"raw": len(raw), "served": len(body), "gzip6": len(body), "gzip9": len(gzip.compress(raw, 9))}
    return {
        "raw": len(body),
        "served": len(body),
        "gzip6": len(gzip.compress(body, 6)),
        "gzip9": len(gzip.compress(body, 9)),
        "encoding": encoding,
    }


def refuse_failing(name: str, result: dict) -> None:
    """Figures of a path whose requests mostly fail measure its errors: stop instead."""
    if result["failures"] > result["requests"] / 10:
        raise SystemExit(f"{name}: {result['failures']} of {result['requests']} requests failed")


def failures_note(result: dict) -> str:
    return f"{result['failures']} of {result['requests']} non-2xx" if result["failures"] else ""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=6, help="per round and path (and for the floor)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of member and widget chat")
    parser.add_argument("--documents", type=int, default=20)
    add_results_argument(parser)
    arguments = parser.parse_args()
    results = Results(arguments.results)

    workdir = Path(tempfile.mkdtemp(prefix="bench-widget-"))
    milvus = prepare_environment(workdir, production=True)
    os.environ.update(
        {
            "CHAT_USER_REQUESTS_PER_MINUTE": "0",
            "WIDGET_VISITOR_MESSAGES_PER_MINUTE": "0",
            "THROTTLE_WIDGET_SESSION": "1000000/minute",
            "EMBEDDING_THREADS": "1",
        }
    )
    port = _free_port()
    provider, provider_port = start_local_provider()
    web = None
    try:
        wait_for_port(provider_port, provider)
        sys.path.insert(0, str(ROOT))
        tenant_id, public_key, member_tokens = setup_tenant(
            f"http://127.0.0.1:{provider_port}/v1", arguments.documents, arguments.clients
        )
        web = start_web_server(port)
        wait_for_port(port, web)
        visitor_tokens = open_sessions(port, public_key, arguments.clients)
        members = [functools.partial(member_chat, tenant_id, token) for token in member_tokens]
        visitors = [functools.partial(widget_chat, token) for token in visitor_tokens]
        # Warm-up: model, index, imports, both paths.
        asyncio.run(load(port, 3, members[:2] + visitors[:2]))
        print(f"Machine: {machine()}")
        print(f"Versions: {versions('Django', 'djangorestframework', 'daphne', 'channels')}")

        with results.section():
            print(
                f"One daphne process, DEBUG off, SQLite; {arguments.clients} clients, one keep-alive "
                f"connection each; the provider: a local OpenAI-compatible server answering at once\n"
            )
            print("## Visitor sessions\n")
            print("| endpoint | requests/s | p50 ms | p95 ms | throughput / floor | p95 / floor | non-2xx |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            healthz = [lambda _number: http_request("GET", "/healthz")] * arguments.clients
            floor = summary(asyncio.run(load(port, arguments.seconds, healthz)))
            sessions = summary(
                asyncio.run(
                    load(
                        port,
                        arguments.seconds,
                        [lambda _number: session_request(public_key)] * arguments.clients,
                    )
                )
            )
            for name, result in (
                ("floor: GET /healthz (no work)", floor),
                ("POST /v1/widget/sessions", sessions),
            ):
                print(
                    f"| {name} | {result['per_second']:.1f} | {result['p50']:.1f} | {result['p95']:.1f} | "
                    f"{result['per_second'] / floor['per_second']:.2f} | {result['p95'] / floor['p95']:.2f} | "
                    f"{result['failures']} of {result['requests']} |",
                    flush=True,
                )
            for figure, key, unit in (
                ("throughput", "per_second", "requests/s"),
                ("latency p95", "p95", "ms"),
            ):
                results.figure(
                    f"visitor sessions (new anonymous visitor), {arguments.clients} clients: {figure}",
                    sessions[key],
                    unit,
                    floor=floor[key],
                    floor_name="GET /healthz, no work",
                    note=failures_note(sessions),
                )

        with results.section():
            print(
                f"## Widget chat against member chat ({arguments.rounds} rounds of {arguments.seconds:.0f} s "
                "per path, alternating)\n"
            )
            print(
                "| path | requests/s | p50 ms | p95 ms | web process CPU ms per chat | throughput / member "
                "| non-2xx |"
            )
            print("| --- | --- | --- | --- | --- | --- | --- |")
            paths = {"member": members, "widget": visitors}
            totals = {
                name: {"requests": 0, "elapsed": 0.0, "latencies": [], "failures": 0, "cpu": 0.0}
                for name in paths
            }
            for _round in range(arguments.rounds):
                for name, makers in paths.items():
                    cpu_before = _cpu_seconds(web.pid)
                    result = asyncio.run(load(port, arguments.seconds, makers))
                    total = totals[name]
                    total["cpu"] += _cpu_seconds(web.pid) - cpu_before
                    for key in ("requests", "elapsed", "failures"):
                        total[key] += result[key]
                    total["latencies"].extend(result["latencies"])
            member, widget = (summary(totals[name]) for name in ("member", "widget"))
            refuse_failing("member chat", member)
            refuse_failing("widget chat", widget)
            for result in (member, widget):
                result["cpu_ms"] = result["cpu"] * 1000 / max(result["requests"], 1)
            for name, result in (
                ("member: POST /v1/tenants/{id}/chat (JWT)", member),
                ("widget: POST /v1/widget/chat (visitor token, Origin)", widget),
            ):
                print(
                    f"| {name} | {result['per_second']:.1f} | {result['p50']:.1f} | {result['p95']:.1f} | "
                    f"{result['cpu_ms']:.1f} | {result['per_second'] / member['per_second']:.2f} | "
                    f"{result['failures']} of {result['requests']} |",
                    flush=True,
                )
            cost = member["per_second"] / widget["per_second"]
            cpu_cost = widget["cpu_ms"] / member["cpu_ms"]
            print(
                f"\nWidget cost / member cost: {cost:.2f} by throughput (member requests/s ÷ widget "
                f"requests/s), {cpu_cost:.2f} by the web process's CPU time per chat; target ≤ {COST_TARGET}."
            )
            note = "; ".join(
                filter(
                    None, [failures_note(widget), failures_note(member) and f"member {failures_note(member)}"]
                )
            )
            results.figure(
                f"widget chat, {arguments.clients} clients: throughput",
                widget["per_second"],
                "requests/s",
                floor=member["per_second"],
                floor_name="member chat, same run",
                note=note,
            )
            results.figure(
                f"widget chat, {arguments.clients} clients: latency p50",
                widget["p50"],
                "ms",
                floor=member["p50"],
                floor_name="member chat, same run",
            )
            results.figure(
                "widget chat: web process CPU per chat",
                widget["cpu_ms"],
                "ms",
                floor=member["cpu_ms"],
                floor_name="member chat, same run",
            )
            results.figure(
                "widget cost / member cost, by throughput (target ≤ 1.2)",
                cost,
                "×",
                floor=COST_TARGET,
                floor_name="issue 13's target",
                note=f"by CPU per chat {cpu_cost:.2f}",
            )

        with results.section():
            size = script_size(port)
            served = (
                "the server sends it gzipped"
                if "encoding" not in size
                else "the server sends it uncompressed (no compression in Django or daphne; a proxy in "
                "front compresses it): gzipped here"
            )
            print("## `/widget.js`\n")
            print(
                f"{size['raw']:,} bytes as served; {served}: {size['gzip6']:,} bytes at level 6, "
                f"{size['gzip9']:,} at level 9 (target ≤ {SCRIPT_TARGET_KB:.0f} KB)."
            )
            results.figure(
                "/widget.js, gzipped (level 6)",
                size["gzip6"] / 1000,
                "KB",
                floor=SCRIPT_TARGET_KB,
                floor_name="target",
                note=f"{size['raw'] / 1000:.1f} KB uncompressed"
                + ("" if "encoding" not in size else "; gzipped here, the server does not compress"),
            )
    finally:
        for process in (web, provider):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        stop_milvus_server(milvus)


if __name__ == "__main__":
    main()
