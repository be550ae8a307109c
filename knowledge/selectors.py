"""Every read of documents, chunks and keyword statistics; each takes the tenant."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from knowledge.models import Chunk, Document, KeywordCorpus, TermFrequency
from tenants.errors import NotFound
from tenants.models import Tenant


def document_list(
    *, tenant: Tenant, status: str | None = None, search: str | None = None
) -> QuerySet[Document]:
    return document_filter(Document.objects.for_tenant(tenant), status=status, search=search)


def document_filter(
    documents: QuerySet[Document], *, status: str | None = None, search: str | None = None
) -> QuerySet[Document]:
    """Narrow an already scoped set of a tenant's documents (with their uploaders) for a list."""
    documents = documents.select_related("uploaded_by")
    if status:
        documents = documents.filter(status=status)
    if search:
        documents = documents.filter(title__icontains=search)
    return documents


def document_get(*, tenant: Tenant, document_id) -> Document:
    """A document of this tenant, or 404: another tenant's id is as absent as a missing one."""
    document = Document.objects.for_tenant(tenant).filter(pk=document_id).first()
    if document is None or document.tenant_id != tenant.pk:
        raise NotFound("No such document.")
    return document


def document_by_hash(*, tenant: Tenant, sha256: str) -> Document | None:
    # Web pages are told apart by their URL, not their bytes (see Document's constraint).
    return Document.objects.for_tenant(tenant).filter(sha256=sha256).exclude(kind="web").first()


def tenant_storage(*, tenant: Tenant) -> tuple[int, int]:
    """(documents, bytes) a tenant stores, for its plan's quotas."""
    totals = Document.objects.for_tenant(tenant).aggregate(total=Sum("size_bytes"))
    return Document.objects.for_tenant(tenant).count(), totals["total"] or 0


def queue_positions(*, tenant: Tenant, documents: Iterable[Document]) -> dict[int, int]:
    """Where each of `documents` still pending stands in its tenant's line for ingestion: 1 for
    the next to start. The line is the tenant's pending documents, those already handed to the
    task queue first (`queued`), then those waiting their turn (`waiting`), oldest first, as
    `ingestion_dispatch` takes them. The tenant's documents being processed are not in it; at
    most INGESTION_TASKS_PER_TENANT of another tenant's stand in the shared queue in front of
    it (knowledge/ingestion.py), so this is the whole wait but for a few documents."""
    wanted = {document.pk for document in documents if document.status == Document.Status.PENDING}
    if not wanted:
        return {}
    line = (
        Document.objects.for_tenant(tenant)
        .filter(status=Document.Status.PENDING)
        .annotate(
            turn=Case(
                When(stage=Document.Stage.QUEUED, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("turn", "created_at", "id")
        .values_list("pk", flat=True)
    )
    positions = {}
    for position, document_id in enumerate(line.iterator(chunk_size=2000), start=1):
        if document_id in wanted:
            positions[document_id] = position
            if len(positions) == len(wanted):
                break
    return positions


# The ingestion progress (see `ingestion_progress`).
PROGRESS_RATE_WINDOW = timedelta(minutes=5)
PROGRESS_LINGER = timedelta(minutes=10)
PROGRESS_MIN_FINISHED = 3

_FINISHED = (Document.Status.READY, Document.Status.FAILED)
_UNFINISHED = (Document.Status.PENDING, Document.Status.PROCESSING)


def _finished_since(moment) -> Q:
    # A ready document's `updated_at` is its `ingested_at` or later, so this narrows by the index.
    return Q(status__in=_FINISHED, updated_at__gte=moment, finished_at__gte=moment)


@dataclass(frozen=True)
class IngestionProgress:
    total: int
    done: int  # ready or failed
    failed: int
    started_at: datetime | None
    rate_per_minute: float | None  # None: too few finished yet to tell
    seconds_left: int | None  # None while the rate is unknown; 0 when nothing remains

    @property
    def remaining(self) -> int:
        return self.total - self.done

    @property
    def active(self) -> bool:
        return self.remaining > 0


def ingestion_progress(*, tenant: Tenant, now: datetime | None = None) -> IngestionProgress:
    """How far the tenant's current wave of ingestion has gone, for a person watching a bulk upload.

    The wave is the work in hand: every document still pending or processing, and those that
    finished (ready or failed) since the wave began. It began when the oldest of them joined the
    line (`queued_at`: its upload, or the request to index it again), counting also the documents
    finished in the last PROGRESS_LINGER, so that a wave just finished still shows "400 of 400
    done" for a while, then disappears (total 0). A document finished at its `ingested_at` if
    ready, its `updated_at` if failed.

    The rate is the documents finished per minute over the last PROGRESS_RATE_WINDOW of the wave
    (the whole wave when fewer than PROGRESS_MIN_FINISHED finished in that window); with fewer
    than PROGRESS_MIN_FINISHED finished in the whole wave there is no rate yet, nor a time left.
    The time left is what remains at that rate: documents ahead in another tenant's line or a
    slower document make it an estimate, not a promise."""
    now = now or timezone.now()
    documents = Document.objects.for_tenant(tenant).annotate(
        finished_at=Case(
            When(status=Document.Status.READY, then=F("ingested_at")),
            default=F("updated_at"),
            output_field=DateTimeField(),
        )
    )
    # Two queries: the wave's start, then the counts from it. (As one, with the start a scalar
    # subquery, PostgreSQL runs that subquery once for each place it is named: slower.)
    started_at = documents.filter(
        Q(status__in=_UNFINISHED) | _finished_since(now - PROGRESS_LINGER)
    ).aggregate(start=Min("queued_at"))["start"]
    if started_at is None:
        return IngestionProgress(0, 0, 0, None, None, None)
    window_start = max(started_at, now - PROGRESS_RATE_WINDOW)
    counts = documents.filter(Q(status__in=_UNFINISHED) | _finished_since(started_at)).aggregate(
        total=Count("pk"),
        done=Count("pk", filter=Q(status__in=_FINISHED)),
        failed=Count("pk", filter=Q(status=Document.Status.FAILED)),
        in_window=Count("pk", filter=Q(status__in=_FINISHED, finished_at__gte=window_start)),
    )
    finished, since = counts["in_window"], window_start
    if finished < PROGRESS_MIN_FINISHED:
        finished, since = counts["done"], started_at
    minutes = (now - since).total_seconds() / 60
    rate = finished / minutes if finished >= PROGRESS_MIN_FINISHED and minutes > 0 else None
    remaining = counts["total"] - counts["done"]
    if not remaining:
        seconds_left = 0
    elif rate is None:
        seconds_left = None
    else:
        seconds_left = round(remaining / rate * 60)
    return IngestionProgress(
        total=counts["total"],
        done=counts["done"],
        failed=counts["failed"],
        started_at=started_at,
        rate_per_minute=rate,
        seconds_left=seconds_left,
    )


def chunk_list(*, tenant: Tenant, document: Document | None = None) -> QuerySet[Chunk]:
    chunks = Chunk.objects.for_tenant(tenant)
    if document is not None:
        chunks = chunks.filter(document=document)
    return chunks


def chunks_by_id(*, tenant: Tenant, chunk_ids: Iterable[int]) -> dict[int, Chunk]:
    chunks = Chunk.objects.for_tenant(tenant).filter(pk__in=list(chunk_ids)).select_related("document")
    return {chunk.pk: chunk for chunk in chunks}


def keyword_corpus(*, tenant: Tenant) -> KeywordCorpus:
    return KeywordCorpus.objects.filter(tenant=tenant).first() or KeywordCorpus(tenant=tenant)


def term_frequencies(*, tenant: Tenant, term_ids: Iterable[int]) -> dict[int, int]:
    rows = TermFrequency.objects.for_tenant(tenant).filter(term_id__in=list(term_ids))
    return dict(rows.values_list("term_id", "chunk_count"))
