"""The ingestion pipeline: which documents go to the task queue and when (fair dispatch), and
what the task does with one (extract, chunk, embed, index).

Ingestion never leaves a half-indexed document: the document's chunks, its keyword statistics
and its vectors are replaced together at the end, and a failure removes whatever the document
had, leaving status `failed` with a sentence a tenant admin understands.

The Celery tasks (tasks.py) call this module; this module queues them by name through the
task registry (knowledge/apps.py imports tasks.py in every process), so neither imports the other
both ways.
"""

import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import numpy as np
from celery import current_app
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from knowledge import extraction, vector_index
from knowledge.chunking import chunk_sections, is_mostly_alphabetic
from knowledge.embedding import get_embedder
from knowledge.keyword_statistics import average_chunk_length, corpus_adjust, term_frequencies_adjust
from knowledge.keywords import document_weights, term_id, tokenize
from knowledge.models import Chunk, Document
from tenants import rls
from tenants.errors import dependency_error
from tenants.models import Plan, Tenant

logger = logging.getLogger(__name__)

# The task that ingests one document (declared in tasks.py under this name).
INGEST_TASK = "knowledge.tasks.ingest_document"

IN_PROGRESS = (Document.Status.PENDING, Document.Status.PROCESSING)

# The kind of a document made from a crawled web page (the sources app crawls them).
WEB_KIND = "web"


# --- Fair dispatch -------------------------------------------------------------------------
# Documents wait as `pending` (stage `waiting`) in the database; at most
# INGESTION_TASKS_PER_TENANT of a tenant are queued or processing at a time. The shared Celery
# queue therefore holds a few tasks of each tenant, never one tenant's thousands in front of
# everyone else's. A tenant's next document is queued when one of its documents is uploaded,
# reindexed or finishes, and by the sweep each worker runs when it starts.


def _in_flight(documents):
    return documents.filter(
        Q(status=Document.Status.PROCESSING) | Q(status=Document.Status.PENDING, stage=Document.Stage.QUEUED)
    )


def ingestion_dispatch(*, tenant_id, new_document_id: int | None = None) -> list[int]:
    """Queue the tenant's waiting documents, oldest first, up to its cap of tasks in flight, and
    queue again those in flight whose task was lost (untouched for INGESTION_STALE_SECONDS).
    The tasks are sent once the transaction commits. `new_document_id` is a document this
    request just uploaded: if the task queue is down it is taken back and the client gets a 503."""
    with transaction.atomic():
        # One dispatch of a tenant at a time, so that two never both fill the same free slot.
        # NO KEY UPDATE does not wait for the key-share locks that inserting documents takes.
        if Tenant.objects.select_for_update(no_key=True).filter(pk=tenant_id).first() is None:
            return []  # deleted
        documents = Document.objects.for_tenant_id(tenant_id)
        in_flight = _in_flight(documents)
        now = timezone.now()
        stale = list(
            in_flight.filter(updated_at__lt=now - timedelta(seconds=settings.INGESTION_STALE_SECONDS))
            .order_by("created_at", "id")
            .values_list("pk", flat=True)
        )
        waiting = documents.filter(status=Document.Status.PENDING, stage=Document.Stage.WAITING).order_by(
            "created_at", "id"
        )
        if current_app.conf.task_always_eager:
            # Tasks run inline, one after the other: there is no shared queue to be fair in, and
            # dispatching from each finished task would nest one call per document.
            waiting = list(waiting.values_list("pk", flat=True))
        else:
            free = settings.INGESTION_TASKS_PER_TENANT - in_flight.count()
            waiting = list(waiting.values_list("pk", flat=True)[: max(free, 0)])
        chosen = stale + waiting
        if not chosen:
            return []
        documents.filter(pk__in=chosen).update(
            status=Document.Status.PENDING, stage=Document.Stage.QUEUED, error="", updated_at=now
        )
    tenant = str(tenant_id)
    transaction.on_commit(
        lambda: _send(tenant_id=tenant, document_ids=chosen, new_document_id=new_document_id)
    )
    return chosen


def _send(*, tenant_id: str, document_ids: list[int], new_document_id: int | None) -> None:
    """Send the ingestion tasks. If the task queue is down, the documents wait again (the next
    dispatch queues them), except one just uploaded, which is taken back (row and file) so that
    the client's 503 leaves nothing behind."""
    # The registered task, not `send_task`: it keeps the task's own options and runs inline
    # when tasks are eager.
    ingest_document = current_app.tasks[INGEST_TASK]
    for position, document_id in enumerate(document_ids):
        try:
            ingest_document.delay(tenant_id, document_id)
        except Exception as error:
            unavailable = dependency_error(error)
            if unavailable is None:
                raise
            unsent = Document.objects.for_tenant_id(tenant_id).filter(pk__in=document_ids[position:])
            unsent.filter(status=Document.Status.PENDING, stage=Document.Stage.QUEUED).update(
                stage=Document.Stage.WAITING, updated_at=timezone.now()
            )
            if new_document_id in document_ids[position:]:
                document = Document.objects.for_tenant_id(tenant_id).filter(pk=new_document_id).first()
                if document is not None:
                    file_path = document.file_path
                    document.delete()
                    default_storage.delete(file_path)
                raise unavailable from error
            logger.warning("task queue unavailable: %s document(s) of %s wait", len(unsent), tenant_id)
            return


def ingestion_sweep() -> int:
    """Dispatch every tenant that has documents waiting or in flight (each worker runs this when
    it starts, so that no document waits forever for a dispatch that was lost)."""
    tenant_ids = set(
        Document.objects.filter(status__in=IN_PROGRESS).values_list("tenant_id", flat=True).distinct()
    )
    queued = 0
    for tenant_id in tenant_ids:
        with rls.scope(tenant_id):
            queued += len(ingestion_dispatch(tenant_id=tenant_id))
    return queued


# --- A document's chunks and vectors --------------------------------------------------------


def remove_chunks(document: Document) -> None:
    """Delete a document's chunk rows and take them out of the keyword statistics."""
    old = list(
        Chunk.objects.for_tenant_id(document.tenant_id)
        .filter(document=document)
        .values_list("term_count", "term_ids")
    )
    if not old:
        return
    counts: Counter = Counter()
    for _length, ids in old:
        counts.update(ids)
    term_frequencies_adjust(tenant_id=document.tenant_id, counts=counts, sign=-1)
    corpus_adjust(tenant_id=document.tenant_id, chunks=-len(old), terms=-sum(length for length, _ in old))
    Chunk.objects.for_tenant_id(document.tenant_id).filter(document=document).delete()


def current_collection() -> str:
    embedder = get_embedder()
    return vector_index.collection_name(embedder_name=embedder.name, dimension=embedder.dimension)


def delete_vectors(document: Document, *, also: str | None = None) -> None:
    """Delete the document's vectors from its collection (and another, such as the current
    model's, when they differ)."""
    for collection in {document.vector_collection, also} - {"", None}:
        vector_index.delete_document(
            collection=collection, tenant_id=document.tenant_id, document_id=document.pk
        )


# --- Ingestion ------------------------------------------------------------------------------


def _set_progress(document: Document, *, stage: str, progress: float, status: str | None = None) -> None:
    changes: dict = {"stage": stage, "progress": round(progress, 3), "updated_at": timezone.now()}
    if status:
        changes["status"] = status
    Document.objects.filter(pk=document.pk).update(**changes)
    for field, value in changes.items():
        setattr(document, field, value)


def _embed(texts: list[str], *, on_batch: Callable[[int], None]) -> np.ndarray:
    # One call: the embedder batches (a hosted one sends several batches at once), and reports
    # each batch done here, in this thread.
    return get_embedder().embed_passages(texts, on_progress=on_batch)


def document_note_retry(*, tenant_id, document_id: int, message: str) -> None:
    """Say on a document still `processing` why it waits (a service it needs is down and the
    ingestion will retry); the note is cleared when it ends ready."""
    Document.objects.for_tenant_id(tenant_id).filter(
        pk=document_id, status=Document.Status.PROCESSING
    ).update(error=message[:2000], updated_at=timezone.now())


def document_fail(*, document: Document, message: str) -> Document:
    """Mark a document failed and remove everything it had indexed."""
    with transaction.atomic():
        locked = Document.objects.select_for_update().filter(pk=document.pk).first()
        if locked is None:
            return document
        remove_chunks(locked)
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.FAILED,
            error=message[:2000],
            chunk_count=0,
            ocr_pages=0,
            ocr_confidence=None,
            progress=0.0,
            updated_at=timezone.now(),
        )
    try:
        delete_vectors(document, also=current_collection())
    except vector_index.VectorIndexUnavailable:
        # Its chunk rows are gone, so retrieval (which loads chunks by id) can no longer
        # return these vectors; the next reindex or delete removes them.
        logger.warning("could not remove vectors of failed document %s", document.pk)
    document.refresh_from_db()
    return document


def _indexed_text(title: str, heading: str | None, text: str) -> str:
    """What is embedded and keyword-indexed for a chunk: its text under the document's title
    and its heading, so that a passage that never names its subject is still found by it (on
    Cranfield, where titles carry the subject, this lifts nDCG@10; see docs/retrieval.md).
    The chunk's stored and cited text stays the passage alone."""
    return "\n".join(part for part in (title, heading, text) if part)


def document_ingest(*, tenant_id, document_id: int) -> Document | None:
    """Extract, chunk, embed and index one document. Idempotent: a rerun replaces the
    document's chunks and vectors. Raises the transient errors (index or embedding provider
    unavailable) for the task to retry; any other failure ends as `failed`."""
    document = Document.objects.for_tenant_id(tenant_id).filter(pk=document_id).first()
    if document is None:
        return None  # deleted while queued

    _set_progress(document, stage=Document.Stage.EXTRACTING, progress=0.05, status=Document.Status.PROCESSING)
    plan = Plan.objects.get(tenants__id=tenant_id)
    try:
        extracted = extraction.extract(
            default_storage.path(document.file_path),
            # A web page is stored as the Markdown its main content was extracted to.
            "markdown" if document.kind == WEB_KIND else document.kind,
            max_characters=settings.MAX_EXTRACTED_CHARACTERS,
            max_ocr_pages=plan.max_ocr_pages,
            ocr_seconds_per_page=plan.ocr_seconds_per_page,
        )
    except extraction.ExtractionError as error:
        return document_fail(document=document, message=str(error))
    except FileNotFoundError:
        return document_fail(
            document=document, message="The stored file is missing; upload the document again."
        )

    _set_progress(document, stage=Document.Stage.CHUNKING, progress=0.15)
    if is_mostly_alphabetic(extracted.sections):
        size, overlap = settings.CHUNK_SIZE_ALPHABETIC, settings.CHUNK_OVERLAP_ALPHABETIC
    else:
        size, overlap = settings.CHUNK_SIZE, settings.CHUNK_OVERLAP
    drafts = chunk_sections(extracted.sections, size=size, overlap=overlap)
    if not drafts:
        return document_fail(document=document, message="No text was found in this document.")
    indexed = [_indexed_text(document.title, draft.heading, draft.text) for draft in drafts]
    terms = [tokenize(text) for text in indexed]

    _set_progress(document, stage=Document.Stage.EMBEDDING, progress=0.2)
    embedder = get_embedder()
    collection = vector_index.collection_name(embedder_name=embedder.name, dimension=embedder.dimension)
    vector_index.ensure_collection(name=collection, dimension=embedder.dimension)
    vectors = _embed(
        indexed,
        on_batch=lambda done: _set_progress(
            document, stage=Document.Stage.EMBEDDING, progress=0.2 + 0.7 * done / len(drafts)
        ),
    )

    _set_progress(document, stage=Document.Stage.INDEXING, progress=0.92)
    with transaction.atomic():
        # Serialises reruns of the same document (a redelivered task beside a slow one).
        locked = Document.objects.select_for_update().filter(pk=document.pk).first()
        if locked is None:
            return None
        if locked.file_path != document.file_path:
            # Replaced while this ran (a web page fetched again, `web_document_save`): what was
            # read here is out of date. The new content waits for its own turn, unless another
            # run has already taken it.
            if locked.status != Document.Status.PROCESSING:
                Document.objects.filter(pk=locked.pk).update(
                    stage=Document.Stage.WAITING, progress=0.0, updated_at=timezone.now()
                )
            return None
        remove_chunks(locked)
        if locked.vector_collection and locked.vector_collection != collection:
            delete_vectors(locked)  # indexed before with another embedding model
        new_terms = sum(len(chunk_terms) for chunk_terms in terms)
        average_length = average_chunk_length(
            tenant_id=tenant_id, adding_chunks=len(drafts), adding_terms=new_terms
        )
        chunks = Chunk.objects.bulk_create(
            [
                Chunk(
                    tenant_id=tenant_id,
                    document=locked,
                    ordinal=draft.ordinal,
                    text=draft.text,
                    page=draft.page,
                    heading=(draft.heading or "")[:300],
                    term_count=len(chunk_terms),
                    term_ids=sorted({term_id(term) for term in chunk_terms}),
                )
                for draft, chunk_terms in zip(drafts, terms, strict=True)
            ]
        )
        counts: Counter = Counter()
        for chunk in chunks:
            counts.update(chunk.term_ids)
        term_frequencies_adjust(tenant_id=tenant_id, counts=counts, sign=1)
        corpus_adjust(tenant_id=tenant_id, chunks=len(chunks), terms=new_terms)
        vector_index.replace_document(
            collection=collection,
            tenant_id=tenant_id,
            document_id=locked.pk,
            chunks=[
                vector_index.IndexedChunk(
                    chunk_id=chunk.pk,
                    document_id=locked.pk,
                    dense=vector,
                    sparse=document_weights(chunk_terms, avg_length=average_length),
                )
                for chunk, vector, chunk_terms in zip(chunks, vectors, terms, strict=True)
            ],
        )
        Document.objects.filter(pk=locked.pk).update(
            status=Document.Status.READY,
            stage=Document.Stage.DONE,
            progress=1.0,
            error="",
            chunk_count=len(chunks),
            ocr_pages=extracted.ocr_pages,
            ocr_confidence=extracted.ocr_confidence,
            embedding_model=embedder.name,
            vector_collection=collection,
            ingested_at=timezone.now(),
            updated_at=timezone.now(),
            title=locked.title,
        )
    document.refresh_from_db()
    return document
