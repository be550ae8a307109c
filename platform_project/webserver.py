"""The command lines of the ASGI servers that can serve `platform_project.asgi:application`, with
the options production gives each; `serve`, the benchmarks (bench/web_servers.py) and the
multi-process tests build their commands here, so that what is measured and tested is what runs.

Production runs uvicorn with `WEB_CONCURRENCY` worker processes (Dockerfile, docker-compose.yml):
the choice and the figures behind it are in docs/scaling.md, "Web processes".
"""

import sys

APPLICATION = "platform_project.asgi:application"

# What production, `serve` and the multi-process tests run (docs/scaling.md: the measurement).
PRODUCTION_SERVER = "uvicorn"

# A WebSocket handshake may wait up to 30 s: daphne's default, 5 s, dropped 3 to 10 of 200
# simultaneous chat connections on 2 cores (their sign-in queues behind other sockets' retrieval
# in Channels' database thread).
DAPHNE_OPTIONS = ("--websocket_connect_timeout", "30")

# uvicorn: uvloop and httptools (the fast paths), the sans-I/O `websockets` implementation (the
# older one is deprecated), no per-message compression of WebSocket frames (uvicorn's default
# compresses every frame: a streamed answer's small token frames gain nothing from it, and it was
# the largest single cost of relaying them, about 200 µs a frame: docs/benchmark-notes.md), no lifespan
# (Django has none), no access log (the platform logs its own requests) and nothing below
# warnings of uvicorn's own (at info it logs every WebSocket accepted with its query string: the
# `?token=` of a chat or widget socket, a credential, in the logs), and no proxy headers:
# the client address comes from X-Forwarded-For in the platform itself, as far as
# TRUSTED_PROXY_COUNT says (tenants.throttling.client_address), so the rate limits count the
# same address whichever server runs. Keep-alive: 75 s (uvicorn's default is 5 s), so that a
# client or a load balancer that keeps its connection between requests is not cut first.
UVICORN_OPTIONS = (
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--ws",
    "websockets-sansio",
    "--ws-per-message-deflate",
    "false",
    "--lifespan",
    "off",
    "--no-access-log",
    "--log-level",
    "warning",
    "--no-proxy-headers",
    "--timeout-keep-alive",
    "75",
)


def server_command(
    server: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    fd: int | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The command that serves the platform with `server` ("uvicorn", "daphne" or "gunicorn").

    `workers`: processes (uvicorn and gunicorn fork them; daphne serves in one). `fd`: an
    inherited listening socket instead of host and port (daphne only: several daphne processes
    then share one port)."""
    if server == "uvicorn":
        return [python, "-m", "uvicorn", "--host", host, "--port", str(port), "--workers", str(workers),
                *UVICORN_OPTIONS, APPLICATION]  # fmt: skip
    if server == "gunicorn":
        return [python, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers),
                "--worker-class", "uvicorn_worker.UvicornWorker", "--keep-alive", "75", "--no-control-socket",
                APPLICATION]  # fmt: skip
    if server == "daphne":
        if workers != 1:
            raise ValueError("daphne serves in one process: start several on a shared socket (fd)")
        where = ["--fd", str(fd)] if fd is not None else ["-b", host, "-p", str(port)]
        return [python, "-m", "daphne", *where, "-v", "0", *DAPHNE_OPTIONS, APPLICATION]
    raise ValueError(f"unknown server {server!r}")
