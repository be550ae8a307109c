"""Run Milvus Lite in server mode, in the foreground, so that web and workers share one index.

Milvus Lite lets one process open a data file; this command is that process. Every other
process connects over gRPC to MILVUS_URI.
"""

import signal
import subprocess

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Serve the embedded Milvus Lite vector index on 127.0.0.1:MILVUS_LITE_PORT."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.MILVUS_LITE_PORT)
        parser.add_argument("--data", default=str(settings.MILVUS_LITE_DATA))

    def handle(self, *args, port: int, data: str, **options):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # milvus_lite still imports pkg_resources
            from milvus_lite.server import Server

        from pathlib import Path

        data_path = Path(data)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        # The server API is internal to milvus-lite, hence the pinned version.
        server = Server(str(data_path), f"127.0.0.1:{port}")
        if not server.init() or not server.start():
            raise CommandError(
                f"Milvus Lite could not start on port {port} with {data_path}: is another "
                "process already serving that file or port?"
            )
        self.stdout.write(f"Milvus Lite serving {data_path} on 127.0.0.1:{port}")

        process = server._p

        def stop(signum, frame):
            # Milvus flushes and exits on SIGTERM; the wait below then returns.
            process.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        exit_code = process.wait()
        try:
            server.stop()  # releases the lock file
        except subprocess.TimeoutExpired:
            process.kill()
        if exit_code not in (0, -signal.SIGTERM):
            raise CommandError(f"Milvus Lite exited with status {exit_code}")
