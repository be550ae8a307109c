"""Shared fixtures: two tenants, each with a user of every role, and a platform admin; the real
services the suite starts (Milvus Lite, Celery workers, the live ASGI server, a private Redis,
Chromium). Helpers the tests import are in the testsupport package.

Tenant A's people must never see tenant B's data and the other way round; most tests take both.
"""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import channels.layers
import pytest
from channels.layers import ChannelLayerManager

# Before testsupport is imported: its helpers' asserts then explain themselves as a test's do.
pytest.register_assert_rewrite("testsupport")

from django.core.cache import cache  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import override_settings  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from accounts.models import User  # noqa: E402
from tenants.roles import Role  # noqa: E402
from tenants.services import membership_create, plan_resolve, tenant_create  # noqa: E402
from testsupport.browser import CHROMIUM, SCREENSHOTS  # noqa: E402
from testsupport.documents import RETURNS_POLICY, WARRANTY, uploaded  # noqa: E402
from testsupport.environment import ROOT, require_service  # noqa: E402
from testsupport.people import TenantPeople, make_user  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    # The production hasher is deliberately slow; the suite hashes hundreds of passwords.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def _tenant_with_people(label: str, plan: str) -> TenantPeople:
    tenant = tenant_create(name=f"Tenant {label}", plan=plan_resolve(name=plan), allow_signup=True)
    people = {}
    for role in Role.values:
        user = make_user(f"{role}.{label.lower()}@example.com", name=f"{role} {label}")
        membership_create(tenant=tenant, user=user, role=role)
        people[role] = user
    return TenantPeople(tenant=tenant, **people)


@pytest.fixture
def tenant_a(db) -> TenantPeople:
    return _tenant_with_people("A", "pro")


@pytest.fixture
def tenant_b(db) -> TenantPeople:
    return _tenant_with_people("B", "free")


@pytest.fixture
def platform_admin(db) -> User:
    return make_user("operator@example.com", name="Operator", staff=True)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MilvusServer:
    """A Milvus Lite server started the way `make run` starts it, on a free port."""

    def __init__(self, data: Path):
        self.port = _free_port()
        self.data = data
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "milvus_server",
                "--port",
                str(self.port),
                "--data",
                str(self.data),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                require_service("milvus", f"Milvus Lite exited with status {self.process.returncode}")
            time.sleep(0.1)
        self.process.kill()
        require_service("milvus", "Milvus Lite did not open its port within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory):
    """The suite's Milvus Lite server, shared by every test (tenants keep tests apart)."""
    server = MilvusServer(tmp_path_factory.mktemp("milvus") / "test.db")
    server.start()
    with override_settings(MILVUS_URI=server.uri):
        yield server.uri
    server.stop()


@pytest.fixture
def own_milvus(tmp_path):
    """A Milvus Lite server of the test's own, which it may stop and restart."""
    from knowledge import vector_index

    server = MilvusServer(tmp_path / "own.db")
    server.start()
    with override_settings(MILVUS_URI=server.uri):
        yield server
        vector_index._forget_client()
    server.stop()


@pytest.fixture(autouse=True, scope="session")
def _private_media_root(tmp_path_factory):
    """Uploaded files of the suite go to a temporary folder, never into var/."""
    media = tmp_path_factory.mktemp("media")
    with override_settings(MEDIA_ROOT=str(media)):
        yield media


@pytest.fixture
def eager_ingestion(milvus_uri):
    """Queued ingestion runs in this process, as the worker would run it (wrap the request in
    `committed()` so that its on-commit callbacks fire)."""
    from platform_project.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


class WorkerProcess:
    """A real Celery worker in its own process group, sharing the test database and index."""

    def __init__(self, environment: dict[str, str], output: Path | None = None, loglevel: str = "warning"):
        self.environment = environment
        self.output = output
        self.loglevel = loglevel
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        # `output`: a file that receives the worker's log lines, for a test to read.
        stream = self.output.open("ab") if self.output else None
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "platform_project",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                f"--loglevel={self.loglevel}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.environment,
            start_new_session=True,
            stdout=stream,
            stderr=stream,
        )
        if stream is not None:
            stream.close()

    def kill(self) -> None:
        """SIGKILL the worker and its children, as a crash or an OOM kill would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker_process(
    transactional_db, django_db_serialized_rollback, milvus_uri, _private_media_root, settings
):
    """Start and stop real workers. Needs PostgreSQL and Redis: a worker in another process
    cannot see SQLite's in-memory test database, and only Redis redelivers a task whose
    worker died."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        require_service("postgresql+redis", "set DATABASE_URL and REDIS_URL to run real-worker tests")
    from platform_project.celery import app

    app.conf.broker_connection_retry_on_startup = True
    environment = {
        **os.environ,
        "DATABASE_URL": _subprocess_database_url(settings),
        "MEDIA_ROOT": str(_private_media_root),
        "CELERY_VISIBILITY_TIMEOUT": "5",
        # A killed worker's task is found by the next worker's sweep: every second, not every 100.
        "CELERY_UNACKED_SWEEP_SECONDS": "1",
    }
    workers: list[WorkerProcess] = []

    def start(output: Path | None = None, loglevel: str = "warning", **overrides: str) -> WorkerProcess:
        # The index the test is using: the suite's, or one of its own (`own_milvus`); `overrides`
        # are further settings of the worker's environment (a local fake's address, say);
        # `output`, a file for its log lines.
        worker = WorkerProcess(
            {**environment, "MILVUS_URI": settings.MILVUS_URI, **overrides}, output, loglevel
        )
        worker.start()
        workers.append(worker)
        return worker

    # Tasks queued by an earlier test must not leak into this one.
    with app.connection_for_write() as broker:
        broker.default_channel.queue_purge("celery")
    yield start
    for worker in workers:
        worker.stop()


def _subprocess_database_url(settings) -> str:
    """The test database's URL, for a server or worker in another process."""
    database = settings.DATABASES["default"]
    user = database.get("USER") or "postgres"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"


class WebProcess:
    """The platform served by the production ASGI server (platform_project/webserver.py) in a
    process of its own on a free port: what one replica of `web` runs in production."""

    def __init__(self, environment: dict[str, str]):
        self.port = _free_port()
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.environment = environment
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        from platform_project.webserver import PRODUCTION_SERVER, server_command

        command = server_command(PRODUCTION_SERVER, host="127.0.0.1", port=self.port, workers=1)
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            command, cwd=ROOT, env=self.environment, start_new_session=True
        )

    def wait_until_serving(self, seconds: float = 60) -> None:
        import urllib.request

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the web process exited with status {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the web process did not serve within {seconds:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)


@pytest.fixture
def web_processes(transactional_db, django_db_serialized_rollback, milvus_uri, _private_media_root, settings):
    """Start web processes (each with `start(**environment)`), as production runs several behind
    its proxy, all on the test database and Redis. Needs PostgreSQL and Redis: another process
    cannot see SQLite's in-memory test database, nor this process's memory."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        require_service("postgresql+redis", "set DATABASE_URL and REDIS_URL to run several web processes")
    environment = {
        **os.environ,
        "DATABASE_URL": _subprocess_database_url(settings),
        "REDIS_URL": settings.REDIS_URL,
        "MILVUS_URI": settings.MILVUS_URI,
        "MEDIA_ROOT": str(_private_media_root),
        "SECRET_KEY": settings.SECRET_KEY,
        "LOG_LEVEL": "WARNING",
    }
    started: list[WebProcess] = []

    def start(count: int, **overrides: str) -> list[WebProcess]:
        processes = [WebProcess({**environment, **overrides}) for _ in range(count)]
        for process in processes:
            process.start()
            started.append(process)
        for process in processes:
            process.wait_until_serving()
        return processes

    yield start
    for process in started:
        process.stop()


class LiveASGIServer:
    """The platform's ASGI application (HTTP and WebSocket) served by daphne on a free port, in a
    thread of the test process, so that real clients talk to it over TCP while the tests share
    its settings. Twisted's reactor runs once per process: one server serves the whole session.
    Tests that use it must commit their data (`transactional_db`)."""

    def __init__(self):
        from channels.routing import ProtocolTypeRouter
        from daphne.server import Server
        from django.core.handlers.asgi import ASGIHandler

        from platform_project.routing import websocket_application

        application = ProtocolTypeRouter({"http": ASGIHandler(), "websocket": websocket_application})
        self.server = Server(
            application,
            endpoints=["tcp:port=0:interface=127.0.0.1"],
            signal_handlers=False,
            verbosity=0,
        )
        self.thread = threading.Thread(target=self.server.run, name="live-asgi", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.listening_addresses:
            if time.monotonic() > deadline:
                raise RuntimeError("daphne did not start listening within 20 s")
            time.sleep(0.05)
        host, port = self.server.listening_addresses[0]
        self.http_url = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{port}"


class ChannelLayerPerThread(ChannelLayerManager):
    """channels_redis' layer receives for one event loop at a time and refuses a second ("Two event
    loops are trying to receive() on one channel layer at once!"). A web process has one loop; the
    test process has several at once: the live daphne server's thread, whose sockets may still be
    closing after their test, and a test's own `asyncio.run`. Each thread gets its own Redis layer,
    which carries events between them as between two processes. An in-memory layer is its own
    transport and stays shared."""

    def __init__(self):
        super().__init__()
        self._threads = threading.local()

    def _reset_backends(self, setting, **kwargs):
        super()._reset_backends(setting, **kwargs)
        if setting == "CHANNEL_LAYERS":
            self._threads = threading.local()

    def __getitem__(self, key):
        if not self.configs[key]["BACKEND"].startswith("channels_redis."):
            return super().__getitem__(key)
        backends = self._threads.__dict__.setdefault("backends", {})
        if key not in backends:
            backends[key] = self.make_backend(key)
        return backends[key]


channels.layers.channel_layers = ChannelLayerPerThread()

_live_asgi: LiveASGIServer | None = None


@pytest.fixture
def live_asgi(transactional_db, milvus_uri) -> LiveASGIServer:
    global _live_asgi
    if _live_asgi is None:
        _live_asgi = LiveASGIServer()
        _live_asgi.start()
    return _live_asgi


class RedisServer:
    """A private Redis on a free port, which a fault test may stop and start again."""

    def __init__(self):
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            require_service("redis-server", "no redis-server binary to start a private Redis")
        self.process = subprocess.Popen(  # noqa: S603 - the system's redis-server, fixed arguments
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("the private Redis did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser(monkeypatch):
    """Debian's Chromium, headless, driven by Playwright's sync API."""
    if not CHROMIUM.exists():
        require_service("chromium", "install Debian's chromium package (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service("playwright", "pip install -r requirements-dev.txt")
    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls
    # are synchronous and safe (Django's async guard cannot tell).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            chromium.close()
            # The test's own queries ran beside Playwright's event loop, on a connection of
            # their own: close it, or PostgreSQL keeps the test database busy at teardown.
            connections.close_all()


def pytest_terminal_summary(terminalreporter):
    """Report how many requests the API fuzzing generated, per role."""
    import sys

    fuzzing = sys.modules.get("platform_project.tests.test_api_fuzzing")
    if fuzzing is not None and fuzzing.REQUESTS:
        counts = ", ".join(f"{role} {count}" for role, count in sorted(fuzzing.REQUESTS.items()))
        total = sum(fuzzing.REQUESTS.values())
        terminalreporter.write_line(f"API fuzzing: {total} generated requests ({counts})")


@pytest.fixture
def knowledge_a(tenant_a, eager_ingestion):
    """Tenant A knows its returns policy (Chinese) and its warranty (English)."""
    documents = [
        uploaded(tenant_a, "returns.txt", RETURNS_POLICY.encode()),
        uploaded(tenant_a, "warranty.md", WARRANTY.encode()),
    ]
    for document in documents:
        document.refresh_from_db()
        assert document.status == "ready", document.error
    return documents
