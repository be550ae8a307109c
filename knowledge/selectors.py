"""Every read of documents, chunks and keyword statistics; each takes the tenant."""

from collections.abc import Iterable

from django.db.models import QuerySet, Sum

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
