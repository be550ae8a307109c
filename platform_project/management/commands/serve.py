"""Run the whole platform in one terminal: the embedded Milvus Lite server (when MILVUS_URI
points at it), a Celery worker, Celery beat (the daily jobs) and the ASGI server for HTTP and
WebSocket, as production runs it (platform_project/webserver.py): one process on the embedded
defaults, WEB_CONCURRENCY processes when REDIS_URL is set. Ctrl-C stops all."""

import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from platform_project.observability import multiprocess_dir_prepare
from platform_project.webserver import PRODUCTION_SERVER, server_command


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


class Command(BaseCommand):
    help = "Serve the platform (ASGI web server, Celery worker and beat, embedded Milvus Lite)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def announce_mode(self) -> None:
        """Say plainly, before anything starts, when this is the development set-up: `make run`
        keeps DEBUG on and the public development secret key (which also signs the JWTs)."""
        if settings.DEBUG:
            self.stdout.write(
                self.style.WARNING(
                    "DEBUG on: development mode, not for production "
                    "(production: DEBUG=false and a real SECRET_KEY)."
                )
            )
        if settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
            self.stdout.write(
                self.style.WARNING(
                    "Using the public development secret key: anyone can sign sessions and tokens "
                    "for this server; not for production."
                )
            )

    def handle(self, *args, host: str, port: int, **options):
        self.announce_mode()
        # Web, worker and beat write their metrics to one directory, so that the web's /metrics
        # shows them all (prometheus-client's multiprocess mode; observability.py).
        multiprocess_dir_prepare(settings.VAR_DIR / "metrics")
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        children: list[tuple[str, subprocess.Popen]] = []

        def start(name: str, command: list[str]) -> subprocess.Popen:
            # Our own interpreter and fixed arguments: no user input reaches the command line.
            process = subprocess.Popen(command, cwd=settings.BASE_DIR)  # noqa: S603
            children.append((name, process))
            return process

        def stop_all(*_):
            for _name, process in reversed(children):
                if process.poll() is None:
                    process.terminate()
            deadline = time.monotonic() + 10
            for _name, process in children:
                try:
                    process.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    process.kill()

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            milvus = urlparse(settings.MILVUS_URI)
            if milvus.hostname in {"127.0.0.1", "localhost"} and milvus.port == settings.MILVUS_LITE_PORT:
                start("milvus", [python, manage, "milvus_server"])
                self._wait_for_port("Milvus Lite", milvus.hostname, milvus.port, children)
            if not settings.CELERY_TASK_ALWAYS_EAGER:
                start(
                    "worker",
                    [
                        python,
                        "-m",
                        "celery",
                        "-A",
                        "platform_project",
                        "worker",
                        "--loglevel=info",
                        f"--concurrency={settings.WORKER_CONCURRENCY}",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                )
                # The periodic jobs (retention, abandoned conversations, expired exports):
                # settings.CELERY_BEAT_SCHEDULE, its state file under var/.
                start(
                    "beat",
                    [
                        python,
                        "-m",
                        "celery",
                        "-A",
                        "platform_project",
                        "beat",
                        "--loglevel=info",
                        f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
                    ],
                )
            web = start(
                "web",
                server_command(PRODUCTION_SERVER, host=host, port=port, workers=settings.WEB_CONCURRENCY),
            )
            self.stdout.write(self.style.SUCCESS(f"Serving on http://{host}:{port}/  (Ctrl-C to stop)"))
            while True:
                for name, process in children:
                    if process.poll() is not None:
                        raise CommandError(f"{name} exited with status {process.returncode}")
                time.sleep(0.5)
                if web.poll() is not None:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            stop_all()

    def _wait_for_port(self, name, host, port, children, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if _port_open(host, port):
                return
            for child_name, process in children:
                if process.poll() is not None:
                    raise CommandError(f"{child_name} exited with status {process.returncode}")
            time.sleep(0.2)
        raise CommandError(f"{name} did not open {host}:{port} within {seconds} s")
