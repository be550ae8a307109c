"""The ingestion pipeline: which documents go to the task queue and when (fair dispatch, in
batches), and what the task does with a batch of them (extract, chunk, embed, index).

A task carries a batch of one tenant's documents (`ingestion_dispatch` groups them) so that the
embedding model gets batches that span documents: on a small document (a DRCD article is about
four chunks) one document a call costs up to twice the CPU per passage of calls of 32.
`documents_ingest` extracts and chunks the documents one after another, embeds their chunks
across documents (EMBEDDING_BATCH_SIZE at a time for a local model; a hosted provider's batch
times its concurrency), and indexes each document in its own transaction as soon as its last
chunk is embedded.

Ingestion never leaves a half-indexed document: a document's chunks, its keyword statistics and
its vectors are replaced together, and a failure removes whatever the document had, leaving
status `failed` with a sentence a tenant admin understands. A bad file fails alone; the rest of
its batch goes on. A batch delivered again (its worker died) or retried (a service was down)
skips the documents it already finished, so each ends ready once; the others are replaced, never
appended to.

The Celery tasks (tasks.py) call this module; this module queues them by name through the
task registry (knowledge/apps.py imports tasks.py in every process), so neither imports the other
both ways.
"""

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from knowledge import extraction, vector_index
from knowledge.chunking import chunk_sections, is_mostly_alphabetic
from knowledge.embedding import EmbeddingUnavailable, get_embedder
from knowledge.keyword_statistics import average_chunk_length, corpus_adjust, term_frequencies_adjust
from knowledge.keywords import document_weights, term_id, tokenize
from knowledge.models import Chunk, Document
from tenants import rls
from tenants.errors import dependency_error
from tenants.models import Plan, Tenant

logger = logging.getLogger(__name__)

# The task that ingests a batch of one tenant's documents (declared in tasks.py under this name),
# and the one-document task of the messages queued before batches (a batch of one).
INGEST_TASK = "knowledge.tasks.ingest_documents"
INGEST_ONE_TASK = "knowledge.tasks.ingest_document"

# What the task retries rather than fails: a service the ingestion needs is down for a while.
TRANSIENT = (vector_index.VectorIndexUnavailable, EmbeddingUnavailable, DatabaseError)

IN_PROGRESS = (Document.Status.PENDING, Document.Status.PROCESSING)

# The kind of a document made from a crawled web page (the sources app crawls them).
WEB_KIND = "web"


# --- Fair dispatch -------------------------------------------------------------------------
# Documents wait as `pending` (stage `waiting`) in the database; at most
# INGESTION_TASKS_PER_TENANT tasks of a tenant are queued or processing at a time. The shared
# Celery queue therefore holds a few tasks of each tenant, never one tenant's thousands in front
# of everyone else's. A tenant's next documents are queued when one of its documents is
# uploaded, reindexed or finishes, and by the sweep each worker runs when it starts.
#
# A task carries a batch: up to INGESTION_BATCH_DOCUMENTS of the tenant's documents, oldest
# first, together at most INGESTION_BATCH_BYTES (a larger document goes alone), so that the
# embedding model gets batches that span documents (a small document is a few chunks; the model
# costs up to twice as much per passage in batches of four as in batches of 32). Batches form by
# themselves when a tenant has a backlog: an upload that finds a free slot is queued alone.
# A batch gives way to the others: before it starts each of its documents but the first, it
# looks whether another tenant's document is queued, and if so hands the rest back to the
# tenant's line (`documents_ingest`). A tenant's bulk therefore holds another tenant's document
# for at most the documents its tasks have already started.


def _in_flight(documents):
    return documents.filter(
        Q(status=Document.Status.PROCESSING) | Q(status=Document.Status.PENDING, stage=Document.Stage.QUEUED)
    )


def _tasks_in_flight(in_flight) -> int:
    """The tasks holding these documents: one per batch (a document queued before batches
    existed has none, and is a task of its own)."""
    batches = in_flight.exclude(ingestion_batch="").values("ingestion_batch").distinct().count()
    return batches + in_flight.filter(ingestion_batch="").count()


def _batches(rows: list[tuple[int, int]]) -> list[list[int]]:
    """(document id, size in bytes), in order, cut into consecutive batches of at most
    INGESTION_BATCH_DOCUMENTS documents and INGESTION_BATCH_BYTES bytes; a document larger than
    that makes a batch of its own."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for document_id, size_bytes in rows:
        if current and (
            len(current) >= settings.INGESTION_BATCH_DOCUMENTS
            or size + size_bytes > settings.INGESTION_BATCH_BYTES
        ):
            batches.append(current)
            current, size = [], 0
        current.append(document_id)
        size += size_bytes
    if current:
        batches.append(current)
    return batches


def ingestion_dispatch(*, tenant_id, new_document_id: int | None = None) -> list[int]:
    """Queue the tenant's waiting documents, oldest first and in batches, up to its cap of tasks
    in flight, and queue again those in flight whose task was lost (untouched for
    INGESTION_STALE_SECONDS). The tasks are sent once the transaction commits. Answers the
    documents queued. `new_document_id` is a document this request just uploaded: if the task
    queue is down it is taken back and the client gets a 503."""
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
            .values_list("pk", "size_bytes")
        )
        waiting = (
            documents.filter(status=Document.Status.PENDING, stage=Document.Stage.WAITING)
            .order_by("created_at", "id")
            .values_list("pk", "size_bytes")
        )
        if current_app.conf.task_always_eager:
            # Tasks run inline, one after the other: there is no shared queue to be fair in, and
            # dispatching from each finished task would nest one call per batch.
            waiting_batches = _batches(list(waiting))
        else:
            free = settings.INGESTION_TASKS_PER_TENANT - _tasks_in_flight(in_flight)
            rows = list(waiting[: max(free, 0) * settings.INGESTION_BATCH_DOCUMENTS])
            waiting_batches = _batches(rows)[: max(free, 0)]
        batches = [(str(uuid.uuid4()), ids) for ids in _batches(stale) + waiting_batches]
        if not batches:
            return []
        for batch, ids in batches:
            documents.filter(pk__in=ids).update(
                status=Document.Status.PENDING,
                stage=Document.Stage.QUEUED,
                error="",
                ingestion_batch=batch,
                updated_at=now,
            )
    tenant = str(tenant_id)
    transaction.on_commit(lambda: _send(tenant_id=tenant, batches=batches, new_document_id=new_document_id))
    return [document_id for _batch, ids in batches for document_id in ids]


def _send(*, tenant_id: str, batches: list[tuple[str, list[int]]], new_document_id: int | None) -> None:
    """Send the ingestion tasks, each under its batch's id. If the task queue is down, the
    documents wait again (the next dispatch queues them), except one just uploaded, which is
    taken back (row and file) so that the client's 503 leaves nothing behind."""
    # The registered task, not `send_task`: it keeps the task's own options and runs inline
    # when tasks are eager.
    ingest_documents = current_app.tasks[INGEST_TASK]
    for position, (batch, document_ids) in enumerate(batches):
        try:
            ingest_documents.apply_async((tenant_id, document_ids), task_id=batch)
        except Exception as error:
            unavailable = dependency_error(error)
            if unavailable is None:
                raise
            unsent_ids = [document_id for _batch, ids in batches[position:] for document_id in ids]
            unsent = Document.objects.for_tenant_id(tenant_id).filter(pk__in=unsent_ids)
            unsent.filter(status=Document.Status.PENDING, stage=Document.Stage.QUEUED).update(
                stage=Document.Stage.WAITING, ingestion_batch="", updated_at=timezone.now()
            )
            if new_document_id in unsent_ids:
                document = Document.objects.for_tenant_id(tenant_id).filter(pk=new_document_id).first()
                if document is not None:
                    file_path = document.file_path
                    document.delete()
                    default_storage.delete(file_path)
                raise unavailable from error
            logger.warning("task queue unavailable: %s document(s) of %s wait", len(unsent_ids), tenant_id)
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
    for name, value in changes.items():
        setattr(document, name, value)


def document_note_retry(*, tenant_id, document_ids: list[int], message: str) -> None:
    """Say on the documents still `processing` why they wait (a service they need is down and
    the ingestion will retry); the note is cleared when they end ready."""
    Document.objects.for_tenant_id(tenant_id).filter(
        pk__in=document_ids, status=Document.Status.PROCESSING
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


def documents_fail_unfinished(*, tenant_id, document_ids: list[int], batch: str | None, message: str) -> None:
    """Fail the documents of a batch that it had not finished (the task gave up on them)."""
    documents = Document.objects.for_tenant_id(tenant_id).filter(pk__in=document_ids, status__in=IN_PROGRESS)
    if batch is not None:
        documents = documents.filter(ingestion_batch=batch)
    for document in documents:
        document_fail(document=document, message=message)


@dataclass
class _Prepared:
    """A document extracted and chunked, whose chunks are being embedded."""

    document: Document
    drafts: list
    indexed: list[str]  # the text embedded and keyword-indexed, one per chunk
    terms: list[list[str]]
    ocr_pages: int
    ocr_confidence: float | None
    vectors: list = field(default_factory=list)  # arrays, one per embedding batch it was in
    embedded: int = 0


def _others_waiting(tenant_id) -> bool:
    """Whether another tenant's document is queued in the shared task queue. Outside the
    tenant's scope, like the sweep; it answers only yes or no."""
    since = timezone.now() - timedelta(seconds=settings.INGESTION_STALE_SECONDS)
    with rls.unscoped():
        return (
            Document.objects.filter(
                status=Document.Status.PENDING, stage=Document.Stage.QUEUED, updated_at__gte=since
            )
            .exclude(tenant_id=tenant_id)
            .exists()
        )


def _give_back(*, tenant_id, document_ids: list[int], batch: str) -> None:
    """Hand documents of a batch not yet started back to their tenant's line, at its front."""
    Document.objects.for_tenant_id(tenant_id).filter(
        pk__in=document_ids, ingestion_batch=batch, status=Document.Status.PENDING
    ).update(stage=Document.Stage.WAITING, ingestion_batch="", updated_at=timezone.now())


def _claim(*, tenant_id, document_id: int, batch: str | None) -> Document | None:
    """The document, if this run is to ingest it: with a batch, only while it is still in
    progress in this batch, so that a redelivered or retried task skips what an earlier run of
    it finished (ready once) and what was queued again in another task."""
    document = Document.objects.for_tenant_id(tenant_id).filter(pk=document_id).first()
    if document is None:
        return None  # deleted while queued
    if batch is not None and (document.ingestion_batch != batch or document.status not in IN_PROGRESS):
        return None
    return document


def _prepare(document: Document) -> _Prepared | Document:
    """Extract and chunk a document; answers it failed when it has no usable text."""
    plan = Plan.objects.get(tenants__id=document.tenant_id)
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

    if is_mostly_alphabetic(extracted.sections):
        size, overlap = settings.CHUNK_SIZE_ALPHABETIC, settings.CHUNK_OVERLAP_ALPHABETIC
    else:
        size, overlap = settings.CHUNK_SIZE, settings.CHUNK_OVERLAP
    drafts = chunk_sections(extracted.sections, size=size, overlap=overlap)
    if not drafts:
        return document_fail(document=document, message="No text was found in this document.")
    indexed = [_indexed_text(document.title, draft.heading, draft.text) for draft in drafts]
    _set_progress(document, stage=Document.Stage.EMBEDDING, progress=0.2)
    return _Prepared(
        document=document,
        drafts=drafts,
        indexed=indexed,
        terms=[tokenize(text) for text in indexed],
        ocr_pages=extracted.ocr_pages,
        ocr_confidence=extracted.ocr_confidence,
    )


def _embed_once(started: list[_Prepared], *, batch_size: int) -> None:
    """Embed the next `batch_size` chunks waiting, across the started documents in order."""
    texts: list[str] = []
    takers: list[tuple[_Prepared, int]] = []
    for prepared in started:
        take = prepared.indexed[prepared.embedded : prepared.embedded + batch_size - len(texts)]
        if take:
            texts.extend(take)
            takers.append((prepared, len(take)))
        if len(texts) >= batch_size:
            break
    vectors = get_embedder().embed_passages(texts)
    offset = 0
    for prepared, count in takers:
        prepared.vectors.append(vectors[offset : offset + count])
        prepared.embedded += count
        offset += count
        if prepared.embedded < len(prepared.indexed):
            # A document larger than a batch says how far it got (a small one goes straight to ready).
            _set_progress(
                prepared.document,
                stage=Document.Stage.EMBEDDING,
                progress=0.2 + 0.7 * prepared.embedded / len(prepared.indexed),
            )


def _isolated(document: Document, work, outcomes: dict[int, str]):
    """Run one document's step; a failure of its own (not a service down, not the time limit)
    fails that document alone and the batch goes on."""
    try:
        return work()
    except (*TRANSIENT, SoftTimeLimitExceeded):
        raise
    except Exception as error:  # noqa: BLE001 - any bug in one document must not sink the others
        logger.exception("ingestion of document %s failed", document.pk)
        outcomes[document.pk] = document_fail(
            document=document, message=f"Ingestion failed unexpectedly ({type(error).__name__})."
        ).status
        return None


def documents_ingest(*, tenant_id, document_ids: list[int], batch: str | None = None) -> dict[int, str]:
    """Extract, chunk, embed and index documents of one tenant: their chunks are embedded
    together, the embedder's batch at a time across documents, and each document is indexed in
    its own transaction as soon as its last chunk is embedded. Answers each document's outcome
    (`ready`, `failed`, `deleted`, `skipped`: not this run's to ingest, `returned`: handed back
    to the tenant's line). A bad file fails alone. Idempotent: a rerun replaces a document's
    chunks and vectors; with `batch` (the task's id), a rerun skips the documents the batch no
    longer holds (finished, or queued again elsewhere). Raises the transient errors for the
    task to retry the batch; a batch that gives way (another tenant's document is queued) hands
    the documents it has not started back to the tenant's line."""
    outcomes: dict[int, str] = {}
    embedder = get_embedder()
    # Chunks sent to the embedder at a time, across documents: its batch (EMBEDDING_BATCH_SIZE
    # for a local model), times the requests a hosted provider takes at once.
    batch_size = max(
        getattr(embedder, "batch_size", settings.EMBEDDING_BATCH_SIZE) * getattr(embedder, "concurrency", 1),
        1,
    )
    collection = vector_index.collection_name(embedder_name=embedder.name, dimension=embedder.dimension)
    collection_ready = False
    started: list[_Prepared] = []  # extracted, not yet indexed, in order

    def embed_and_index(*, whole_batches_only: bool) -> None:
        while started and (
            sum(len(p.indexed) - p.embedded for p in started) >= (batch_size if whole_batches_only else 1)
        ):
            _embed_once(started, batch_size=batch_size)
            while started and started[0].embedded == len(started[0].indexed):
                prepared = started.pop(0)
                indexed = _isolated(
                    prepared.document,
                    lambda prepared=prepared: _index(prepared, embedder=embedder, collection=collection),
                    outcomes,
                )
                if prepared.document.pk not in outcomes:
                    outcomes[prepared.document.pk] = indexed.status if indexed else "deleted"

    eager = current_app.conf.task_always_eager
    claimed = 0  # a batch that gives way has always ingested one document first: it moves on
    for position, document_id in enumerate(document_ids):
        if claimed and batch is not None and not eager and _others_waiting(tenant_id):
            rest = document_ids[position:]
            _give_back(tenant_id=tenant_id, document_ids=rest, batch=batch)
            outcomes.update(dict.fromkeys(rest, "returned"))
            break
        document = _claim(tenant_id=tenant_id, document_id=document_id, batch=batch)
        if document is None:
            outcomes[document_id] = "skipped"
            continue
        claimed += 1
        _set_progress(
            document, stage=Document.Stage.EXTRACTING, progress=0.05, status=Document.Status.PROCESSING
        )
        if not collection_ready:
            # Before anything else touches it: a document that fails removes its vectors from
            # the collection, which must exist. If the index is down, the batch retries (and
            # the processing document says why).
            vector_index.ensure_collection(name=collection, dimension=embedder.dimension)
            collection_ready = True
        prepared = _isolated(document, lambda document=document: _prepare(document), outcomes)
        if isinstance(prepared, _Prepared):
            started.append(prepared)
            embed_and_index(whole_batches_only=True)
        elif prepared is not None:
            outcomes[document_id] = prepared.status  # failed: no text
    embed_and_index(whole_batches_only=False)
    return outcomes


def document_ingest(*, tenant_id, document_id: int) -> Document | None:
    """Ingest one document (a batch of one, whatever batch it was queued in); the document,
    or None when it was deleted or its content changed meanwhile."""
    outcome = documents_ingest(tenant_id=tenant_id, document_ids=[document_id])
    if outcome.get(document_id) not in (Document.Status.READY, Document.Status.FAILED):
        return None
    return Document.objects.for_tenant_id(tenant_id).filter(pk=document_id).first()


def _index(prepared: _Prepared, *, embedder, collection: str) -> Document | None:
    """Replace a document's chunks, keyword statistics and vectors with the new ones, in one
    transaction, and mark it ready."""
    document, drafts, terms = prepared.document, prepared.drafts, prepared.terms
    vectors = np.vstack(prepared.vectors)
    tenant_id = document.tenant_id
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
            ocr_pages=prepared.ocr_pages,
            ocr_confidence=prepared.ocr_confidence,
            embedding_model=embedder.name,
            vector_collection=collection,
            ingested_at=timezone.now(),
            updated_at=timezone.now(),
            title=locked.title,
        )
    document.refresh_from_db()
    return document
