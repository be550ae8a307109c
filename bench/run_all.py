"""Run the benchmarks one after another and print their figures.

    .venv/bin/python bench/run_all.py           # full size: 20 to 30 minutes on 2 cores
    .venv/bin/python bench/run_all.py --quick   # small sizes, a few minutes

One at a time, each in its own process: they would otherwise compete for the same cores. Run them
on an otherwise idle machine; each prints its load average so that a busy one shows.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, arguments at full size, arguments for --quick)
BENCHMARKS = [
    ("embedding_throughput.py", [], ["--passages", "64"]),
    ("ingestion_throughput.py", [], ["--documents", "8"]),
    ("search_latency.py", [], ["--chunks", "5000", "--queries", "60", "--real-vectors", "100"]),
    ("chat_streaming.py", [], ["--levels", "1", "20", "--tokens", "50"]),
    ("rest_throughput.py", [], ["--clients", "10", "--seconds", "5", "--documents", "5"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: quick, noisier figures")
    arguments = parser.parse_args()

    outcomes = []
    for script, full, quick in BENCHMARKS:
        if not (HERE / script).exists():
            continue
        command = [sys.executable, str(HERE / script), *(quick if arguments.quick else full)]
        print(f"\n{'=' * 100}\n$ {' '.join(command[1:])}\n{'=' * 100}", flush=True)
        started = time.monotonic()
        completed = subprocess.run(command, check=False)  # noqa: S603 - our interpreter and scripts
        outcomes.append((script, completed.returncode, time.monotonic() - started))

    print(f"\n{'=' * 100}")
    for script, code, seconds in outcomes:
        print(f"{script:<28} {'ok' if code == 0 else f'FAILED (exit {code})':<18} {seconds:6.0f} s")
    if any(code for _, code, _ in outcomes):
        sys.exit(1)


if __name__ == "__main__":
    main()
