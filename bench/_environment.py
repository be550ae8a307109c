"""What the benchmarks share: a private database, media folder and Milvus Lite server, so that
nothing real is touched, and a description of the machine the figures were measured on.

Import it from a script in this folder (`from _environment import prepare_environment`): running
`bench/<script>.py` puts this folder first on sys.path.
"""

import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = ROOT.parent / "shared" / "eval"


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


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        memory = f", {int(total) / 1024**2:.0f} GiB RAM"
    except (OSError, IndexError, ValueError):
        pass
    return (
        f"{os.cpu_count()} cores ({model}){memory}, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at start"
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
