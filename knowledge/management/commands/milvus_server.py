"""Run Milvus Lite in server mode, in the foreground, so that web and workers share one index.

Milvus Lite lets one process open a data file; this command is that process. Every other
process connects over gRPC to MILVUS_URI. It starts the `milvus` binary that the pinned
milvus-lite package ships (as `milvus_lite.server.Server` does), but holds the file lock itself
and ties the binary's life to its own: the binary stops when this command stops, even when
this command is killed, so no orphan keeps serving an index nobody supervises.
"""

import ctypes
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

_PR_SET_PDEATHSIG = 1
logger = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Command(BaseCommand):
    help = "Serve the embedded Milvus Lite vector index on 127.0.0.1:MILVUS_LITE_PORT."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.MILVUS_LITE_PORT)
        parser.add_argument("--data", default=str(settings.MILVUS_LITE_DATA))

    def _load_collections(self, port: int, process: subprocess.Popen) -> None:
        """Milvus Lite starts with nothing loaded: load every collection now, before traffic
        (readiness reports `loading` until then), rather than on a user's first search."""
        from knowledge.vector_index import load_all

        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        try:
            for name, seconds in load_all(uri=f"http://127.0.0.1:{port}"):
                self.stdout.write(f"Milvus Lite loaded {name} in {seconds:.1f} s")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - not fatal: the first search loads what it needs
            logger.warning("Could not load the collections at start", exc_info=True)

    def handle(self, *args, port: int, data: str, **options):
        import milvus_lite

        binary_dir = Path(milvus_lite.__file__).parent / "lib"
        data_path = Path(data).absolute()
        data_path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(data_path.parent / f".{data_path.name}.server-lock", "a")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise CommandError(f"Another Milvus Lite server already serves {data_path}.") from error

        environment = {
            **os.environ,
            "LD_LIBRARY_PATH": f"{binary_dir}:{os.environ.get('LD_LIBRARY_PATH', '')}",
        }
        process = subprocess.Popen(  # noqa: S603 - the package's own binary, fixed arguments
            [str(binary_dir / "milvus"), str(data_path), f"127.0.0.1:{port}", "ERROR"],
            cwd=data_path.parent,
            env=environment,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        self.stdout.write(f"Milvus Lite serving {data_path} on 127.0.0.1:{port}")
        sys.stdout.flush()
        threading.Thread(target=self._load_collections, args=(port, process), daemon=True).start()

        stopping = []

        def stop(signum, frame):
            # Milvus Lite exits at once on SIGTERM, and the wait below then returns. (Waiting
            # here instead would deadlock on the wait already in progress.)
            stopping.append(signum)
            process.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        exit_code = process.wait()
        if stopping:
            # Stopped on request and the binary gone: leave at once. The loading thread may still
            # hold a gRPC channel to the server just stopped, and the interpreter's teardown then
            # waits on gRPC's own threads: about a second each time, and once in CI past the 30 s
            # a supervisor gives. Nothing else is left to close (the lock goes with the process).
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        if exit_code:
            raise CommandError(f"Milvus Lite exited with status {exit_code} (is port {port} free?)")
