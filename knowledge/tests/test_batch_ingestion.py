"""A task ingests a batch of one tenant's documents, embedding their chunks together: each
document still ends ready once or failed alone, a rerun of the batch skips what it finished, a
batch gives way to another tenant's queued document, and a worker killed in the middle of a
batch leaves every document ready once after the next worker."""

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge import chunking, ingestion, services
from knowledge.models import Chunk, Document
from testsupport.documents import vector_count
from testsupport.environment import wait_for

pytestmark = pytest.mark.service


def manual(label: str, paragraphs: int) -> bytes:
    lines = [
        f"{label} 第{number}節：本產品在攝氏{number % 40}度的環境下可連續運作{number}小時，"
        f"請定期清潔濾網並檢查電源線是否破損（{label}-{number}）。"
        for number in range(paragraphs)
    ]
    return "\n\n".join(lines).encode()


def documents_in_batch(tenant, files: list[tuple[str, bytes]], batch: str) -> list[Document]:
    """Uploaded documents queued together in one batch (as a dispatch would queue them; the
    tasks the uploads queued are never sent: the test's transaction never commits)."""
    documents = [
        services.document_upload(tenant=tenant, uploaded_by=None, upload=SimpleUploadedFile(name, content))
        for name, content in files
    ]
    Document.objects.filter(pk__in=[d.pk for d in documents]).update(
        status="pending", stage="queued", ingestion_batch=batch
    )
    return documents


def assert_indexed_once(document: Document) -> None:
    chunks = Chunk.objects.filter(document=document)
    assert chunks.count() == document.chunk_count == vector_count(document) > 0
    assert sorted(chunks.values_list("ordinal", flat=True)) == list(range(document.chunk_count))


def test_a_batch_embeds_across_documents_and_a_bad_file_fails_alone(tenant_a, milvus_uri, monkeypatch):
    from knowledge.embedding import get_embedder

    files = [
        ("first.txt", manual("甲", 6)),
        ("broken.txt", manual("破", 6)),
        ("second.txt", manual("乙", 6)),
        ("buggy.txt", manual("丙", 6)),
        ("third.txt", manual("丁", 6)),
    ]
    documents = documents_in_batch(tenant_a.tenant, files, "batch-1")
    default_storage.delete(documents[1].file_path)  # its file lost
    real_chunk_sections = chunking.chunk_sections

    def chunk_sections(sections, **kwargs):
        if any("丙" in section.text for section in sections):
            raise ValueError("a bug met in one document")
        return real_chunk_sections(sections, **kwargs)

    monkeypatch.setattr(ingestion, "chunk_sections", chunk_sections)
    embedder = get_embedder()
    batches = []
    real_embed = embedder.embed_passages
    monkeypatch.setattr(
        embedder, "embed_passages", lambda texts: batches.append(len(texts)) or real_embed(texts)
    )

    outcomes = ingestion.documents_ingest(
        tenant_id=tenant_a.tenant.pk, document_ids=[d.pk for d in documents], batch="batch-1"
    )

    first, broken, second, buggy, third = (Document.objects.get(pk=d.pk) for d in documents)
    assert outcomes == {
        first.pk: "ready",
        broken.pk: "failed",
        second.pk: "ready",
        buggy.pk: "failed",
        third.pk: "ready",
    }
    assert broken.error == "The stored file is missing; upload the document again."
    assert buggy.status == "failed" and buggy.error == "Ingestion failed unexpectedly (ValueError)."
    for document in (first, second, third):
        assert_indexed_once(document)
    # The three good documents' chunks went to the model together, never one document at a time.
    total = first.chunk_count + second.chunk_count + third.chunk_count
    assert sum(batches) == total
    assert max(batches) > max(first.chunk_count, second.chunk_count, third.chunk_count)

    # The same batch delivered again (a worker died before acknowledging it): nothing is redone.
    ingested_at = {d.pk: d.ingested_at for d in (first, second, third)}
    again = ingestion.documents_ingest(
        tenant_id=tenant_a.tenant.pk, document_ids=[d.pk for d in documents], batch="batch-1"
    )
    assert set(again.values()) == {"skipped"}
    assert sum(batches) == total
    for document in (first, second, third):
        document.refresh_from_db()
        assert document.ingested_at == ingested_at[document.pk]
        assert_indexed_once(document)


def test_a_batch_gives_way_when_another_tenants_document_is_queued(tenant_a, tenant_b, milvus_uri):
    documents = documents_in_batch(
        tenant_a.tenant, [(f"a-{number}.txt", manual(f"A{number}", 3)) for number in range(3)], "batch-a"
    )
    other = services.document_upload(
        tenant=tenant_b.tenant, uploaded_by=None, upload=SimpleUploadedFile("b.txt", manual("B", 3))
    )
    assert Document.objects.get(pk=other.pk).stage == "queued"

    outcomes = ingestion.documents_ingest(
        tenant_id=tenant_a.tenant.pk, document_ids=[d.pk for d in documents], batch="batch-a"
    )
    # It finishes what it started (at least one document, so that it always moves on) and hands
    # the rest back to the front of its tenant's line.
    assert outcomes == {documents[0].pk: "ready", documents[1].pk: "returned", documents[2].pk: "returned"}
    rest = Document.objects.filter(pk__in=[documents[1].pk, documents[2].pk])
    assert list(rest.values_list("status", "stage", "ingestion_batch")) == [("pending", "waiting", "")] * 2

    # Alone in the queue, a batch goes through whole.
    Document.objects.filter(pk=other.pk).update(status="ready", stage="done")
    rest.update(stage="queued", ingestion_batch="batch-a2")
    outcomes = ingestion.documents_ingest(
        tenant_id=tenant_a.tenant.pk, document_ids=[documents[1].pk, documents[2].pk], batch="batch-a2"
    )
    assert outcomes == {documents[1].pk: "ready", documents[2].pk: "ready"}


@pytest.mark.faults
def test_a_worker_killed_mid_batch_leaves_every_document_ready_once_after_restart(
    tenant_a, celery_worker_process
):
    documents = [
        services.document_upload(
            tenant=tenant_a.tenant,
            uploaded_by=None,
            upload=SimpleUploadedFile(f"manual-{number}.txt", manual(f"M{number}", 24)),
        )
        for number in range(6)
    ]
    ids = [document.pk for document in documents]
    # The uploads queued the first two alone; queue all six as one batch instead.
    from platform_project.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.queue_purge("celery")
    Document.objects.filter(pk__in=ids).update(status="pending", stage="waiting", ingestion_batch="")
    assert ingestion.ingestion_dispatch(tenant_id=tenant_a.tenant.pk) == ids
    assert Document.objects.filter(pk__in=ids).values("ingestion_batch").distinct().count() == 1

    # Small embedding batches, so that the batch's documents get ready one after another.
    first = celery_worker_process(EMBEDDING_BATCH_SIZE="4")
    some_ready = wait_for(
        lambda: 0 < Document.objects.filter(pk__in=ids, status="ready").count() < len(ids),
        seconds=300,
        step=0.1,
    )
    assert some_ready, list(Document.objects.filter(pk__in=ids).values_list("status", "stage"))
    first.kill()
    ready_before = dict(Document.objects.filter(pk__in=ids, status="ready").values_list("pk", "ingested_at"))
    assert 0 < len(ready_before) < len(ids)
    assert Document.objects.filter(pk__in=ids, status__in=["pending", "processing"]).count() == len(
        ids
    ) - len(ready_before)

    celery_worker_process()  # the batch was never acknowledged, so Redis delivers it again
    done = wait_for(
        lambda: Document.objects.filter(pk__in=ids, status="ready").count() == len(ids), seconds=600, step=0.5
    )
    assert done, list(Document.objects.filter(pk__in=ids).values_list("status", "stage", "error"))
    for document in Document.objects.filter(pk__in=ids):
        assert_indexed_once(document)
        if document.pk in ready_before:  # ready once: the redelivered batch skipped it
            assert document.ingested_at == ready_before[document.pk]
