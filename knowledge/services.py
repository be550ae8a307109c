"""Every write of the knowledge base: upload, ingestion, reindex, delete.

Ingestion never leaves a half-indexed document: the document's chunks, its keyword statistics
and its vectors are replaced together at the end, and a failure removes whatever the document
had, leaving status `failed` with a sentence a tenant admin understands.
"""

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import PurePosixPath

import numpy as np
from celery import current_app
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from knowledge import extraction, selectors, vector_index
from knowledge.chunking import chunk_sections, is_mostly_alphabetic
from knowledge.embedding import get_embedder
from knowledge.keywords import document_weights, term_id, tokenize
from knowledge.models import Chunk, Document, KeywordCorpus, TermFrequency
from tenants import rls
from tenants.audit import audit_record
from tenants.errors import APIError, Conflict, Forbidden, PayloadTooLarge, dependency_error
from tenants.models import Tenant

logger = logging.getLogger(__name__)

_HEAD_BYTES = 64 * 1024
_EXTENSIONS = {"pdf": ".pdf", "docx": ".docx", "txt": ".txt", "markdown": ".md", "html": ".html"}


class UnsupportedMediaType(APIError):
    status_code = 415
    default_code = "unsupported_file_type"
    default_detail = "Upload a PDF, DOCX, TXT, Markdown or HTML file."


class QuotaExceeded(Forbidden):
    default_code = "quota_exceeded"


# --- Upload ---------------------------------------------------------------------------------


def check_upload_size(*, tenant: Tenant, size: int) -> None:
    limit = tenant.plan.max_upload_bytes
    if limit and size > limit:
        raise PayloadTooLarge(
            f"The file is {size:,} bytes; the {tenant.plan.name} plan accepts files up to {limit:,} bytes.",
            details={"limit_bytes": limit, "size_bytes": size},
        )


def _check_quotas(*, tenant: Tenant, size: int) -> None:
    plan = tenant.plan
    documents, stored = selectors.tenant_storage(tenant=tenant)
    if plan.max_documents and documents + 1 > plan.max_documents:
        raise QuotaExceeded(
            f"The {plan.name} plan holds up to {plan.max_documents} documents; delete one or upgrade.",
            details={"quota": "documents", "limit": plan.max_documents, "used": documents},
        )
    if plan.max_storage_bytes and stored + size > plan.max_storage_bytes:
        raise QuotaExceeded(
            f"This upload would exceed the {plan.name} plan's storage of {plan.max_storage_bytes:,} bytes.",
            details={"quota": "storage_bytes", "limit": plan.max_storage_bytes, "used": stored},
        )


def _sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for block in upload.chunks():
        digest.update(block)
    upload.seek(0)
    return digest.hexdigest()


def _title_from(filename: str) -> str:
    return (PurePosixPath(filename).stem or filename or "Untitled")[:300]


def document_upload(*, tenant: Tenant, uploaded_by, upload: UploadedFile, title: str = "") -> Document:
    """Validate and store an upload, create the pending Document, and queue its ingestion once
    the transaction commits. Nothing is stored when any check fails."""
    check_upload_size(tenant=tenant, size=upload.size)
    if upload.size == 0:
        raise APIError("The file is empty.", code="empty_file")
    head = upload.read(_HEAD_BYTES)
    upload.seek(0)
    try:
        kind = extraction.detect_kind(head, upload.name or "")
    except extraction.UnsupportedFileType as error:
        raise UnsupportedMediaType(str(error)) from error

    sha256 = _sha256(upload)
    existing = selectors.document_by_hash(tenant=tenant, sha256=sha256)
    if existing is not None:
        raise Conflict(
            f"This file is already uploaded as “{existing.title}”.",
            details={"document_id": existing.pk, "title": existing.title},
        )
    _check_quotas(tenant=tenant, size=upload.size)

    path = f"tenants/{tenant.pk}/documents/{uuid.uuid4().hex}{_EXTENSIONS[kind]}"
    stored_path = default_storage.save(path, upload)
    try:
        with transaction.atomic():
            document = Document.objects.create(
                tenant=tenant,
                title=(title.strip() or _title_from(upload.name or ""))[:300],
                filename=(upload.name or "")[:255],
                kind=kind,
                content_type=extraction.CONTENT_TYPES[kind],
                size_bytes=upload.size,
                sha256=sha256,
                file_path=stored_path,
                uploaded_by=uploaded_by,
            )
            audit_record(
                tenant=tenant,
                action="document.upload",
                target=document,
                details={"title": document.title, "filename": document.filename, "size_bytes": upload.size},
            )
            ingestion_dispatch(tenant_id=tenant.pk, new_document_id=document.pk)
    except IntegrityError as error:
        # The same bytes uploaded twice at once: the loser leaves nothing behind.
        default_storage.delete(stored_path)
        raise Conflict("This file is already uploaded.") from error
    except BaseException:
        default_storage.delete(stored_path)
        raise
    return document


# --- Fair dispatch -------------------------------------------------------------------------
# Documents wait as `pending` (stage `waiting`) in the database; at most
# INGESTION_TASKS_PER_TENANT of a tenant are queued or processing at a time. The shared Celery
# queue therefore holds a few tasks of each tenant, never one tenant's thousands in front of
# everyone else's. A tenant's next document is queued when one of its documents is uploaded,
# reindexed or finishes, and by the sweep each worker runs when it starts.

IN_PROGRESS = (Document.Status.PENDING, Document.Status.PROCESSING)


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
    from knowledge.tasks import ingest_document

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


# --- Ingestion ------------------------------------------------------------------------------


def _set_progress(document: Document, *, stage: str, progress: float, status: str | None = None) -> None:
    changes: dict = {"stage": stage, "progress": round(progress, 3), "updated_at": timezone.now()}
    if status:
        changes["status"] = status
    Document.objects.filter(pk=document.pk).update(**changes)
    for field, value in changes.items():
        setattr(document, field, value)


def _uuid_for_db(tenant_id) -> object:
    field = TermFrequency._meta.get_field("tenant").target_field
    return field.get_db_prep_value(tenant_id, connection)


def _adjust_term_frequencies(*, tenant_id, counts: Counter, sign: int) -> None:
    """Add (sign=1) or remove (sign=-1) chunks' terms from the tenant's document frequencies.
    Term ids are sorted so that concurrent ingestions lock rows in the same order."""
    if not counts:
        return
    table = TermFrequency._meta.db_table
    tenant = _uuid_for_db(tenant_id)
    rows = [(tenant, term, count) for term, count in sorted(counts.items())]
    with connection.cursor() as cursor:
        if sign > 0:
            cursor.executemany(
                f"INSERT INTO {table} (tenant_id, term_id, chunk_count) VALUES (%s, %s, %s) "  # noqa: S608 - table name from the model
                f"ON CONFLICT (tenant_id, term_id) DO UPDATE SET chunk_count = {table}.chunk_count + excluded.chunk_count",
                rows,
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET chunk_count = chunk_count - %s WHERE tenant_id = %s AND term_id = %s",  # noqa: S608
                [(count, tenant, term) for tenant, term, count in rows],
            )
    if sign < 0:
        TermFrequency.objects.filter(tenant_id=tenant_id, chunk_count__lte=0).delete()


def _adjust_corpus(*, tenant_id, chunks: int, terms: int) -> None:
    KeywordCorpus.objects.get_or_create(tenant_id=tenant_id)
    KeywordCorpus.objects.filter(tenant_id=tenant_id).update(
        chunk_count=F("chunk_count") + chunks, term_total=F("term_total") + terms
    )


def _remove_chunks(document: Document) -> None:
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
    _adjust_term_frequencies(tenant_id=document.tenant_id, counts=counts, sign=-1)
    _adjust_corpus(tenant_id=document.tenant_id, chunks=-len(old), terms=-sum(length for length, _ in old))
    Chunk.objects.for_tenant_id(document.tenant_id).filter(document=document).delete()


def _embed(texts: list[str], *, on_batch: Callable[[int], None]) -> np.ndarray:
    embedder = get_embedder()
    batch = max(settings.EMBEDDING_BATCH_SIZE, 1)
    parts = []
    for start in range(0, len(texts), batch):
        parts.append(embedder.embed_passages(texts[start : start + batch]))
        on_batch(min(start + batch, len(texts)))
    return np.vstack(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)


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
        _remove_chunks(locked)
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.FAILED,
            error=message[:2000],
            chunk_count=0,
            progress=0.0,
            updated_at=timezone.now(),
        )
    try:
        _delete_vectors(document, also=_current_collection())
    except vector_index.VectorIndexUnavailable:
        # Its chunk rows are gone, so retrieval (which loads chunks by id) can no longer
        # return these vectors; the next reindex or delete removes them.
        logger.warning("could not remove vectors of failed document %s", document.pk)
    document.refresh_from_db()
    return document


def _current_collection() -> str:
    embedder = get_embedder()
    return vector_index.collection_name(embedder_name=embedder.name, dimension=embedder.dimension)


def _delete_vectors(document: Document, *, also: str | None = None) -> None:
    """Delete the document's vectors from its collection (and another, such as the current
    model's, when they differ)."""
    for collection in {document.vector_collection, also} - {"", None}:
        vector_index.delete_document(
            collection=collection, tenant_id=document.tenant_id, document_id=document.pk
        )


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
    try:
        extracted = extraction.extract(
            default_storage.path(document.file_path),
            document.kind,
            max_characters=settings.MAX_EXTRACTED_CHARACTERS,
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
        _remove_chunks(locked)
        if locked.vector_collection and locked.vector_collection != collection:
            _delete_vectors(locked)  # indexed before with another embedding model
        corpus = KeywordCorpus.objects.filter(tenant_id=tenant_id).first()
        new_terms = sum(len(chunk_terms) for chunk_terms in terms)
        chunk_total = (corpus.chunk_count if corpus else 0) + len(drafts)
        average_length = ((corpus.term_total if corpus else 0) + new_terms) / max(chunk_total, 1)
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
        _adjust_term_frequencies(tenant_id=tenant_id, counts=counts, sign=1)
        _adjust_corpus(tenant_id=tenant_id, chunks=len(chunks), terms=new_terms)
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
            embedding_model=embedder.name,
            vector_collection=collection,
            ingested_at=timezone.now(),
            updated_at=timezone.now(),
            title=locked.title,
        )
    document.refresh_from_db()
    return document


# --- Reindex and delete ---------------------------------------------------------------------


def _mark_for_reindex(documents) -> list[int]:
    """Make the documents that are not already pending or processing wait for ingestion again;
    the ids of those it changed. Idempotent: a document in progress is left as it is."""
    # Locked, so that a worker starting on one of them meanwhile waits for this to commit.
    ids = list(
        documents.exclude(status__in=IN_PROGRESS).select_for_update(of=("self",)).values_list("pk", flat=True)
    )
    if ids:
        documents.filter(pk__in=ids).update(
            status=Document.Status.PENDING,
            stage=Document.Stage.WAITING,
            progress=0.0,
            error="",
            updated_at=timezone.now(),
        )
    return ids


def document_reindex(*, document: Document) -> Document:
    """Index a document again; nothing is queued for one already pending or processing (the
    request is audited either way, saying whether it queued the document)."""
    with transaction.atomic():
        queued = bool(
            _mark_for_reindex(Document.objects.for_tenant_id(document.tenant_id).filter(pk=document.pk))
        )
        audit_record(
            tenant=document.tenant,
            action="document.reindex",
            target=document,
            details={"title": document.title, "queued": queued},
        )
        if queued:
            ingestion_dispatch(tenant_id=document.tenant_id)
    document.refresh_from_db()
    return document


def tenant_reindex(*, tenant: Tenant) -> int:
    """Index every document of the tenant again (after a change of embedding model); returns how
    many were queued, leaving out those already pending or processing."""
    with transaction.atomic():
        documents = Document.objects.for_tenant(tenant)
        marked = _mark_for_reindex(documents)
        for document in documents.filter(pk__in=marked):
            audit_record(
                tenant=tenant,
                action="document.reindex",
                target=document,
                details={"title": document.title, "queued": True},
            )
        if marked:
            ingestion_dispatch(tenant_id=tenant.pk)
    return len(marked)


def document_delete(*, document: Document) -> None:
    """Remove the vectors first: if the index is down this fails (503) with nothing deleted."""
    _delete_vectors(document)
    with transaction.atomic():
        audit_record(
            tenant=document.tenant,
            action="document.delete",
            target=document,
            details={"title": document.title},
        )
        _remove_chunks(document)
        file_path = document.file_path
        document.delete()
        transaction.on_commit(lambda: default_storage.delete(file_path))


# --- A deleted tenant ------------------------------------------------------------------------


def tenant_knowledge_purge(*, tenant_id) -> dict:
    """Remove what a deleted tenant's knowledge leaves beyond its database rows: its vectors in
    every collection, and its keyword statistics should any remain. Idempotent. Registered in
    TENANT_DATA_PURGERS and run by the task that tenant deletion queues (tenants/tasks.py),
    which also deletes the tenant's stored files."""
    collections = vector_index.delete_tenant_everywhere(tenant_id=tenant_id)
    terms, _ = TermFrequency.objects.filter(tenant_id=tenant_id).delete()
    KeywordCorpus.objects.filter(tenant_id=tenant_id).delete()
    return {"collections": collections, "keyword_terms": terms}
