"""Sample documents and the ways tests put them in a tenant's knowledge base: uploaded through
the API (ingested when the upload commits), or a bare row marked ready; and what the index and
the media folder hold of them."""

from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge import vector_index
from knowledge.embedding import get_embedder
from knowledge.models import Document
from testsupport.environment import committed

RETURNS_POLICY = (
    "退貨政策\n\n"
    "商品到貨後七天內，未拆封且包裝完整者，可申請全額退款。"
    "已拆封的商品，若有瑕疵，請於三十天內聯絡客服更換。\n\n"
    "運費說明\n\n"
    "單筆訂單滿一千元免運費；未滿一千元者，本島運費為八十元，離島運費為一百五十元。"
)
WARRANTY = (
    "Warranty\n\n"
    "Every laptop carries a two-year limited warranty covering defects in materials and workmanship. "
    "Batteries are covered for one year. Accidental damage such as drops or liquid spills is not covered.\n\n"
    "Repairs\n\n"
    "To request a repair, open a ticket with the serial number printed under the keyboard."
)


def upload(people, name: str, content: bytes, role: str = "tenant_admin", **extra):
    """POST the file to the upload endpoint as `role`, committed (so ingestion is queued)."""
    with committed():
        return people.client(role).post(
            f"/v1/tenants/{people.tenant.pk}/documents/upload",
            {"file": SimpleUploadedFile(name, content), **extra},
            format="multipart",
        )


def uploaded(people, name: str, content: bytes) -> Document:
    response = upload(people, name, content)
    assert response.status_code == 202, response.content
    return Document.objects.get(pk=response.json()["id"])


def a_ready_document(tenant) -> Document:
    """A document row marked ready (no file, no vectors): for endpoints that only name one."""
    return Document.objects.create(
        tenant=tenant,
        title="退貨政策",
        filename="policy.txt",
        kind="txt",
        content_type="text/plain",
        size_bytes=10,
        sha256="0" * 64,
        file_path=f"tenants/{tenant.pk}/documents/policy.txt",
        status=Document.Status.READY,
    )


def collection() -> str:
    """The vector collection of the embedder the settings choose."""
    embedder = get_embedder()
    return vector_index.collection_name(embedder_name=embedder.name, dimension=embedder.dimension)


def vector_count(document: Document) -> int:
    return vector_index.count(collection=collection(), tenant_id=document.tenant_id, document_id=document.pk)


def stored_files(tenant) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "tenants" / str(tenant.pk)
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def a_wave(
    tenant,
    *,
    queued_at,
    finished_at=(),
    failed_at=(),
    pending: int = 0,
    processing: int = 0,
    name: str = "wave",
) -> list[Document]:
    """Bare rows of one wave of ingestion, all queued at `queued_at`: one ready document finished
    at each of `finished_at`, one failed at each of `failed_at`, and so many still pending and
    processing. The timestamps are written past `auto_now`, as the ingestion writes them."""
    rows = [(Document.Status.READY, moment) for moment in finished_at] + [
        (Document.Status.FAILED, moment) for moment in failed_at
    ]
    rows += [(Document.Status.PENDING, None)] * pending + [(Document.Status.PROCESSING, None)] * processing
    documents = Document.objects.bulk_create(
        Document(
            tenant=tenant,
            title=f"{name}-{number}",
            filename=f"{name}-{number}.txt",
            kind="txt",
            content_type="text/plain",
            size_bytes=10,
            sha256=f"{name}-{number}".encode().hex().ljust(64, "0")[:64],
            file_path=f"tenants/{tenant.pk}/documents/{name}-{number}.txt",
            status=status,
            stage=Document.Stage.DONE if moment else Document.Stage.WAITING,
            progress=1.0 if moment else 0.0,
        )
        for number, (status, moment) in enumerate(rows)
    )
    for document, (status, moment) in zip(documents, rows, strict=True):
        changes = {"queued_at": queued_at}
        if moment is not None:
            changes["updated_at"] = moment
            if status == Document.Status.READY:
                changes["ingested_at"] = moment
        Document.objects.filter(pk=document.pk).update(**changes)
    return documents
