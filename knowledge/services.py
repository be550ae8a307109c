"""The writes of the knowledge base that the views call: upload, reindex, delete, and the purge
of a deleted tenant. What happens to a document once queued is the ingestion pipeline's
(ingestion.py); these hand documents to it through `ingestion_dispatch`.
"""

import hashlib
import uuid
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from knowledge import extraction, selectors, vector_index
from knowledge.ingestion import IN_PROGRESS, WEB_KIND, delete_vectors, ingestion_dispatch, remove_chunks
from knowledge.keyword_statistics import keyword_statistics_delete
from knowledge.models import Document
from tenants.audit import audit_record
from tenants.errors import APIError, Conflict, Forbidden, PayloadTooLarge
from tenants.models import Tenant

_HEAD_BYTES = 64 * 1024
_EXTENSIONS = {
    "pdf": ".pdf",
    "docx": ".docx",
    "txt": ".txt",
    "markdown": ".md",
    "html": ".html",
    "png": ".png",
    "jpeg": ".jpg",
}


class UnsupportedMediaType(APIError):
    status_code = 415
    default_code = "unsupported_file_type"
    default_detail = "Upload a PDF, DOCX, TXT, Markdown or HTML file, or a PNG or JPEG picture of a page."


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


# --- Web pages ------------------------------------------------------------------------------


def web_document_save(
    *, tenant: Tenant, document: Document | None, url: str, title: str, text: str, fetched_at
) -> Document:
    """Store the main content of a crawled web page (Markdown) as a document of kind `web` and
    queue its ingestion: a new document when `document` is None (within the plan's quotas, else
    QuotaExceeded), else the same document replaced in place (its id, and so its citations'
    document, stay; its chunks and vectors are replaced by the ingestion)."""
    content = text.encode("utf-8")
    size = len(content)
    if document is None:
        _check_quotas(tenant=tenant, size=size)
    path = default_storage.save(f"tenants/{tenant.pk}/web/{uuid.uuid4().hex}.md", ContentFile(content))
    fields = {
        "title": (title.strip() or url)[:300],
        "filename": url[:255],
        "content_type": "text/markdown",
        "size_bytes": size,
        "sha256": hashlib.sha256(content).hexdigest(),
        "file_path": path,
        "source_url": url,
        "fetched_at": fetched_at,
    }
    try:
        with transaction.atomic():
            if document is None:
                document = Document.objects.create(tenant=tenant, kind=WEB_KIND, **fields)
                old_path = None
            else:
                locked = (
                    Document.objects.for_tenant(tenant).select_for_update().filter(pk=document.pk).first()
                )
                if locked is None:
                    raise Document.DoesNotExist("The page's document was deleted meanwhile.")
                old_path = locked.file_path
                for name, value in fields.items():
                    setattr(locked, name, value)
                # Waits for its turn again, keeping its chunks until the new ones replace them.
                locked.status, locked.stage, locked.progress, locked.error, locked.queued_at = (
                    Document.Status.PENDING,
                    Document.Stage.WAITING,
                    0.0,
                    "",
                    timezone.now(),
                )
                locked.save()
                document = locked
            ingestion_dispatch(tenant_id=tenant.pk)
    except BaseException:
        default_storage.delete(path)
        raise
    if old_path and old_path != path:
        transaction.on_commit(lambda: default_storage.delete(old_path))
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
            queued_at=timezone.now(),
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
    delete_vectors(document)
    with transaction.atomic():
        audit_record(
            tenant=document.tenant,
            action="document.delete",
            target=document,
            details={"title": document.title},
        )
        remove_chunks(document)
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
    terms = keyword_statistics_delete(tenant_id=tenant_id)
    return {"collections": collections, "keyword_terms": terms}
