"""What the benchmarks share: a private database, media folder and Milvus Lite server, so that
nothing real is touched; the web server; a description of the machine the figures were measured
on; and `Results`, through which each script hands its figures to run_all.py (`--results PATH`).

Import it from a script in this folder (`from _environment import prepare_environment`): running
`bench/<script>.py` puts this folder first on sys.path.
"""

import argparse
import contextlib
import io
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/eval beside the checkout; EVAL_DIR elsewhere (a git worktree, a CI runner).
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or ROOT.parent / "shared" / "eval")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_milvus_server(command: list[str], port: int) -> subprocess.Popen:
    """Start the platform's `milvus_server` command and wait until it accepts connections."""
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed arguments
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.2)
    server.kill()
    raise SystemExit("Milvus Lite did not start")


def prepare_environment(workdir: Path, *, production: bool = False) -> subprocess.Popen:
    """A private database, media folder and Milvus Lite server, so nothing real is touched.

    `production` turns DEBUG off (with a random secret key), as a deployed web process runs:
    Django then keeps no query log and DRF answers without its debug extras.
    """
    port = _free_port()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "platform_project.settings",
            "VAR_DIR": str(workdir),
            "DATABASE_URL": f"sqlite:///{workdir / 'eval.sqlite3'}",
            "MILVUS_URI": f"http://127.0.0.1:{port}",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "LOG_LEVEL": "WARNING",
        }
    )
    if production:
        os.environ.update({"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(48)})
    os.environ.pop("REDIS_URL", None)
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "milvus_server",
        "--port",
        str(port),
        "--data",
        str(workdir / "milvus.db"),
    ]
    return start_milvus_server(command, port)


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    """Wait until `process` listens on `port`; stop the benchmark if it exits or never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            raise SystemExit(f"{' '.join(map(str, process.args[:3]))} exited with {process.returncode}")
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port}")


def percentile(values: list[float], share: float) -> float:
    """The value at `share` (0..1) of the sorted values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def stop_milvus_server(server: subprocess.Popen) -> None:
    """SIGTERM, as a supervisor stops it: Milvus flushes and exits."""
    server.terminate()
    server.wait(timeout=60)


def restart_milvus_server(server: subprocess.Popen) -> subprocess.Popen:
    """Stop the server and start it again on the same data file and port."""
    stop_milvus_server(server)
    command = [str(argument) for argument in server.args]
    return start_milvus_server(command, int(command[command.index("--port") + 1]))


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children.extend(int(child) for child in task.read_text().split())
    return children


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def server_rss(server: subprocess.Popen) -> dict[str, int]:
    """Resident memory of the Milvus Lite binary and of the Django command that supervises it."""
    milvus = sum(_rss_bytes(child) for child in _children(server.pid))
    return {"milvus": milvus, "supervisor": _rss_bytes(server.pid)}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def server_cpu_seconds(server: subprocess.Popen) -> float:
    """CPU time the Milvus Lite binary has used so far (user + system)."""
    return sum(_cpu_seconds(child) for child in _children(server.pid))


def machine_facts() -> dict[str, str]:
    """Cores, CPU model, memory, operating system and Python of this machine."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        total = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        memory = f"{int(total) / 1024**2:.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    try:
        system = platform.freedesktop_os_release()["PRETTY_NAME"] + ", "
    except (OSError, KeyError):
        system = ""
    return {
        "cores": str(os.cpu_count()),
        "CPU": model,
        "memory": memory,
        "OS": f"{system}{platform.system()} {platform.release()} {platform.machine()}",
        "Python": platform.python_version(),
    }


def machine() -> str:
    facts = machine_facts()
    return (
        f"{facts['cores']} cores ({facts['CPU']}), {facts['memory']} RAM, {facts['OS']}, "
        f"Python {facts['Python']}, load average {os.getloadavg()[0]:.2f} at start"
    )


def versions(*names: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


PROVIDER_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[2])
from testsupport.wire_server import WireServer
server = WireServer(api_key=None, port=int(sys.argv[1]))
server.start()
while True:
    time.sleep(3600)
"""


def start_local_provider() -> tuple[subprocess.Popen, int]:
    """The test suite's wire server (testsupport/wire_server.py: OpenAI-compatible, answering at
    once, or paced by a `paced-<tokens>-<ms>` model name) in a process of its own, and its port;
    `wait_for_port` tells when it serves, at http://127.0.0.1:<port>/v1. Allows the platform a
    provider on the loopback, which production refuses."""
    os.environ["LLM_ALLOW_PRIVATE_BASE_URLS"] = "true"
    port = _free_port()
    command = [sys.executable, "-c", PROVIDER_SCRIPT, str(port), str(ROOT)]
    return subprocess.Popen(command, cwd=ROOT), port  # noqa: S603 - our interpreter, fixed script


def start_web_server(port: int, *, server: str = "daphne", processes: int = 1) -> subprocess.Popen:
    """`server` ("daphne", "uvicorn" or "gunicorn") serving `platform_project.asgi` on `port` with
    `processes` processes and the options production gives it (platform_project/webserver.py), in
    the environment that prepare_environment set; `wait_for_port` tells when it serves. Production
    runs uvicorn; daphne (one process) is what the older benchmarks measured."""
    from platform_project.webserver import server_command

    command = server_command(server, host="127.0.0.1", port=port, workers=processes)
    return subprocess.Popen(command, cwd=ROOT)  # noqa: S603 - our interpreter, fixed arguments


def stop_web_server(process: subprocess.Popen) -> None:
    """SIGTERM, as a supervisor stops it; killed, with the workers it forked, if it still waits
    for sockets after 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for child in _children(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        process.kill()
        process.wait(timeout=10)


def process_tree_cpu_seconds(process: subprocess.Popen) -> float:
    """CPU time (user + system) `process` and its children have used so far: a web server's
    processes (uvicorn's supervisor and the workers it forks)."""
    return _cpu_seconds(process.pid) + sum(_cpu_seconds(child) for child in _children(process.pid))


def http_request(
    method: str, path: str, *, token: str | None = None, body: dict | None = None, origin: str | None = None
) -> bytes:
    """A keep-alive HTTP/1.1 request to the local web server, as bytes: `token` as a bearer token,
    `body` as JSON, `origin` as the Origin header."""
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    headers = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if origin:
        headers.append(f"Origin: {origin}")
    if token:
        headers.append(f"Authorization: Bearer {token}")
    if body is not None:
        headers += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + data


def redis_unreachable(url: str, seconds: float = 5) -> str:
    """Why the Redis server at `url` cannot be used (a reason to skip), or "" when it answers a PING."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=seconds).ping()
    except redis.RedisError as error:
        return f"Redis unreachable at {url}: {' '.join(str(error).split())}"
    return ""


def setup_for_worker(workdir: Path, *, database_url: str, redis_url: str, cache_prefix: str) -> None:
    """Set this process up as a benchmark beside a real Celery worker: PostgreSQL and Redis, tasks
    queued (never eager), media under `workdir`; Django set up, migrated, the task queue emptied."""
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "MEDIA_ROOT": str(workdir / "media"),
            "CACHE_KEY_PREFIX": cache_prefix,
        }
    )
    os.environ.pop("CELERY_BROKER_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from platform_project.celery import app

    call_command("migrate", verbosity=0)
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("celery")


def teardown_after_worker(worker: subprocess.Popen | None) -> None:
    """Undo `setup_for_worker`, best effort (Django may not have been set up): the task queue
    emptied (a backlog is not waited for), the worker stopped, Django's connections closed so
    that the database can be dropped."""
    with contextlib.suppress(Exception):
        from platform_project.celery import app

        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge("celery")
    if worker is not None:
        stop_worker(worker)
    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()


def start_worker(
    concurrency: int, *, app: str = "platform_project", env: dict | None = None
) -> subprocess.Popen:
    """One Celery worker (prefork, `concurrency` processes, as docker-compose.yml runs it) of `app`
    in `env` (else the environment this process has set), in its own process group: `stop_worker`
    stops its children too."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        "--loglevel=warning",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env or os.environ.copy(), start_new_session=True)  # noqa: S603


def stop_worker(worker: subprocess.Popen) -> None:
    """A warm shutdown (the main process finishes its tasks and stops its pool), then the whole
    group if it hangs."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def bench_tenant(*, name: str = "Bench Co.", documents: int = 0, provider_url: str = "", model: str = ""):
    """A tenant on the `bench` plan (no limits), after django.setup() and the migrations. With
    `provider_url`, its assistant answers through that OpenAI-compatible server's `model`; with
    `documents`, a tenant admin (returned, else None) uploads that many short policy documents
    (ingested at once when tasks run eagerly). Returns (tenant, admin)."""
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from knowledge.services import document_upload
    from llm.services import assistant_update
    from tenants.models import Plan
    from tenants.services import membership_create, tenant_create

    plan, _ = Plan.objects.get_or_create(code="bench", defaults={"name": "Bench (no limits)"})
    tenant = tenant_create(name=name, plan=plan)
    if provider_url:
        assistant_update(
            tenant=tenant,
            data={"providers": [{"kind": "openai_compatible", "model": model, "base_url": provider_url}]},
        )
    admin = None
    if documents:
        admin = User.objects.create_user(f"admin@{tenant.pk}.bench.example", "bench-password-2026")
        membership_create(tenant=tenant, user=admin, role="tenant_admin")
    for number in range(documents):
        text = (
            f"Policy {number}. Every laptop carries a two-year warranty; batteries one year. "
            f"退貨請於到貨後七天內申請，運費滿一千元免運。Repairs: open ticket {number}."
        )
        upload = SimpleUploadedFile(f"policy-{number}.txt", text.encode())
        document_upload(tenant=tenant, uploaded_by=admin, upload=upload)
    return tenant, admin


def member_tokens(tenant, count: int, role: str = "end_user") -> list[str]:
    """Access tokens (JWT) of `count` new members of `tenant` with `role`."""
    from accounts.models import User
    from accounts.services import token_pair_for
    from tenants.services import membership_create

    tokens = []
    for number in range(count):
        user = User.objects.create_user(f"{role}{number}@{tenant.pk}.bench.example", "bench-password-2026")
        membership = membership_create(tenant=tenant, user=user, role=role)
        tokens.append(token_pair_for(user=user, membership=membership)[0])
    return tokens


NEEDS_SERVICES = "Start PostgreSQL and Redis (or set DATABASE_URL, REDIS_URL) and run it again."


def skip(results: "Results", reason: str, advice: str = NEEDS_SERVICES) -> None:
    """Hand over a result marked skipped, with `reason` and what to do about it (`advice`)."""
    print(f"SKIPPED: {reason}", flush=True)
    results.data["skipped"] = reason
    with results.section():
        print(f"**Skipped**: {reason.rstrip('.')}.{' ' + advice if advice else ''}")


# --- Results handed to run_all.py ------------------------------------------------------------


def add_results_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results",
        type=Path,
        metavar="PATH",
        help="also write the headline figures and the markdown printed as JSON to PATH (for bench/run_all.py)",
    )


class _Tee(io.TextIOBase):
    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


class Results:
    """What a benchmark hands to bench/run_all.py: its headline figures, each beside its floor
    (the same work without the platform, measured in the same run), and the markdown it prints.

    Written to `path` as JSON after every figure and section, so that a run failing half-way still
    hands over what it measured. Without a path (a script run alone) nothing is written.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict = {"arguments": sys.argv[1:], "figures": [], "sections": []}

    def figure(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        floor: float | None = None,
        floor_name: str = "",
        note: str = "",
    ) -> None:
        """A headline figure; `floor` in the same unit, the ratio is value / floor."""
        self.data["figures"].append(
            {
                "figure": name,
                "value": value,
                "unit": unit,
                "floor": floor,
                "floor_name": floor_name,
                "ratio": value / floor if floor else None,
                "note": note,
            }
        )
        self._write()

    @contextlib.contextmanager
    def section(self):
        """Print as usual, and keep what was printed (markdown) as a section of the results."""
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
                yield
        finally:
            if buffer.getvalue().strip():
                self.data["sections"].append(buffer.getvalue().strip("\n"))
                self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.data, indent=2, ensure_ascii=False), encoding="utf-8")
        partial.replace(self.path)
