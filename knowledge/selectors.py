"""Every read of documents, chunks and keyword statistics; each takes the tenant."""

from collections.abc import Iterable

from django.db.models import Case, IntegerField, QuerySet, Sum, Value, When

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
