"""Which ASGI server production runs, and with how many processes: daphne, uvicorn and gunicorn
with uvicorn workers, each with 1 and 2 processes, on PostgreSQL and Redis.

    .venv/bin/python bench/web_servers.py                  # 50 clients, 10 s per endpoint, 3 rounds
    .venv/bin/python bench/web_servers.py --seconds 5 --servers uvicorn

Needs wrk (Debian: `apt-get install wrk`), PostgreSQL (`DATABASE_URL`'s server when it is a
postgres URL, else postgres://platform@127.0.0.1:5432; the benchmark works in its own database,
`bench_web`, dropped and created at the start and dropped at the end) and Redis (`--redis`, a
database of its own). Without one of them it hands run_all.py a result marked skipped.

The platform runs as in production: DEBUG off, the cache and the channel layer in Redis, one
tenant with 20 documents, limits off; every server serves `platform_project.asgi:application`
with the options production gives it (platform_project/webserver.py). Two daphne processes share
one listening socket (`--fd`), as uvicorn's and gunicorn's workers share theirs. wrk keeps 50
connections (one thread) and sends requests back to back for a fixed time. Every server runs
from the start, idle while another is measured, and the rounds take them in turn, so that a
change in the machine's load (other work on a shared machine) touches each alike; the table
gives each one's median round, and every round's figure beside it:

- the floor: `GET /healthz`, a view that returns a constant;
- a list: `GET /v1/tenants/{id}/documents` with an agent's JWT (tenant resolution, row-level
  security, a paginated query).

It prints requests per second and latency p50/p99 (wrk's percentiles) for every combination;
the headline figures are each combination's throughput against one daphne process's.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _environment import (
    ROOT,
    Results,
    add_results_argument,
    machine,
    prepare_environment,
    redis_unreachable,
    skip,
    stop_milvus_server,
    versions,
)
from rls_overhead import drop_database, recreate_database, server_url

SERVERS = ("daphne", "uvicorn", "gunicorn")
PROCESS_COUNTS = (1, 2)


def listening_socket() -> socket.socket:
    """A listening TCP socket on a free port that child processes inherit (daphne's `--fd`)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.set_inheritable(True)
    return listener


def start(server: str, processes: int) -> tuple[int, list[subprocess.Popen], socket.socket | None]:
    """Start `processes` processes of `server`; answer the port and the processes."""
    from platform_project.webserver import server_command

    if server == "daphne":
        # daphne has no workers of its own: N processes accept on one inherited socket.
        listener = listening_socket()
        port = listener.getsockname()[1]
        command = server_command("daphne", fd=listener.fileno())
        started = [
            subprocess.Popen(command, cwd=ROOT, pass_fds=(listener.fileno(),))  # noqa: S603
            for _ in range(processes)
        ]
        return port, started, listener
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = server_command(server, host="127.0.0.1", port=port, workers=processes)
    return port, [subprocess.Popen(command, cwd=ROOT)], None  # noqa: S603 - fixed arguments


def stop(processes: list[subprocess.Popen], listener: socket.socket | None) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if listener:
        listener.close()


def wait_until_serving(port: int, processes: list[subprocess.Popen], seconds: float = 90) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise SystemExit(f"{' '.join(map(str, processes[0].args[:4]))} exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"nothing served on port {port} within {seconds:.0f} s")


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, clients: int, seconds: float, token: str | None = None) -> dict:
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run(  # noqa: S603 - the system's wrk, fixed arguments
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout

    def latency(share: str) -> float:
        value, unit = re.search(rf"^\s*{share}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
        return float(value) * UNITS[unit]

    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "requests": requests,
        "failures": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(n) for n in errors.groups()) if errors else 0),
    }


def median_result(runs: list[dict]) -> dict:
    """The run of median throughput (its latencies with it), failures summed over all runs."""
    ordered = sorted(runs, key=lambda run: run["per_second"])
    median = dict(ordered[len(ordered) // 2])
    median["failures"] = sum(run["failures"] for run in runs)
    median["requests"] = sum(run["requests"] for run in runs)
    return median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each server, interleaved")
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--processes", nargs="+", type=int, default=list(PROCESS_COUNTS))
    parser.add_argument("--database", default="bench_web", help="the database created, used and dropped")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="a Redis database of its own")
    add_results_argument(parser)
    arguments = parser.parse_args()
    if arguments.database.startswith("test"):
        raise SystemExit("database names test* belong to the test suite: choose another --database")
    results = Results(arguments.results)

    url, maintenance = server_url(arguments.database)
    skipped = "" if shutil.which("wrk") else "wrk is not installed (Debian: apt-get install wrk)"
    skipped = (
        skipped or redis_unreachable(arguments.redis) or recreate_database(maintenance, arguments.database)
    )
    if skipped:
        skip(results, skipped, "")
        return

    import redis

    redis.Redis.from_url(arguments.redis).flushdb()
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    milvus = prepare_environment(workdir, production=True)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "REDIS_URL": arguments.redis,
            "CHAT_USER_REQUESTS_PER_MINUTE": "0",
            "EMBEDDING_THREADS": "1",
        }
    )
    os.environ.pop("WEB_CONCURRENCY", None)  # each server is told its count
    sys.path.insert(0, str(ROOT))
    from rest_throughput import setup_tenant

    try:
        tenant_id, agent_token, _ = setup_tenant(arguments.documents)
        from django.db import connections

        connections.close_all()  # the database is dropped at the end
        print(f"Machine: {machine()}")
        print(
            f"Versions: {versions('daphne', 'uvicorn', 'uvloop', 'httptools', 'gunicorn', 'uvicorn-worker')}"
        )
        endpoints = {
            "floor: GET /healthz (no work)": ("/healthz", None),
            "GET documents (list)": (f"/v1/tenants/{tenant_id}/documents", agent_token),
        }
        configurations = [(server, count) for server in arguments.servers for count in arguments.processes]
        running = {}
        try:
            # All of them at once, idle while another is measured: then the rounds interleave
            # them, so that a change of the machine's load touches every one alike.
            for configuration in configurations:
                running[configuration] = start(*configuration)
            for port, started, _listener in running.values():
                wait_until_serving(port, started, seconds=300)  # all start at once
            time.sleep(10)  # each process loads the embedding model in the background at start
            for port, _started, _listener in running.values():
                for path, token in endpoints.values():
                    wrk(f"http://127.0.0.1:{port}{path}", clients=arguments.clients, seconds=3, token=token)
            samples: dict[tuple[str, int, str], list[dict]] = {}
            for _round in range(arguments.rounds):
                for configuration, (port, _started, _listener) in running.items():
                    for name, (path, token) in endpoints.items():
                        result = wrk(
                            f"http://127.0.0.1:{port}{path}",
                            clients=arguments.clients,
                            seconds=arguments.seconds,
                            token=token,
                        )
                        samples.setdefault((*configuration, name), []).append(result)
        finally:
            for _port, started, listener in running.values():
                stop(started, listener)
        measured = {key: median_result(runs) for key, runs in samples.items()}
        with results.section():
            print(
                f"DEBUG off, PostgreSQL and Redis; wrk, {arguments.clients} connections (one thread), "
                f"{arguments.seconds:g} s per endpoint, {arguments.rounds} rounds interleaving the servers "
                f"after a warm-up: the median round; latency in ms\n"
            )
            print(
                "| server | processes | endpoint | requests/s | p50 ms | p99 ms | each round, requests/s | non-2xx or errors |"
            )
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for (server, processes, name), result in measured.items():
                rounds = ", ".join(f"{run['per_second']:.0f}" for run in samples[server, processes, name])
                print(
                    f"| {server} | {processes} | {name} | {result['per_second']:.0f} | {result['p50']:.1f} | "
                    f"{result['p99']:.1f} | {rounds} | {result['failures']} of {result['requests']} |"
                )
        for (server, processes, name), result in measured.items():
            daphne = measured.get(("daphne", 1, name))
            results.figure(
                f"{name}, {server}, {processes} process{'es' if processes > 1 else ''}, "
                f"{arguments.clients} clients: throughput",
                result["per_second"],
                "requests/s",
                floor=daphne["per_second"] if daphne and (server, processes) != ("daphne", 1) else None,
                floor_name="one daphne process, same endpoint",
                note=f"{result['failures']} of {result['requests']} failed" if result["failures"] else "",
            )
    finally:
        stop_milvus_server(milvus)
        drop_database(maintenance, arguments.database)


if __name__ == "__main__":
    main()
