"""Ingestion through a real Celery worker process over Redis, including a worker killed in the
middle of an ingestion."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import Chunk, Document
from testsupport.documents import vector_count
from testsupport.environment import wait_for

pytestmark = pytest.mark.service


def long_manual(paragraphs: int) -> bytes:
    lines = [
        f"第{number}節：本產品在攝氏{number % 40}度的環境下可連續運作{number}小時，請定期清潔濾網並檢查電源線是否破損。"
        for number in range(paragraphs)
    ]
    return "\n\n".join(lines).encode()


def upload(people, filename: str, *, paragraphs: int):
    return people.client("tenant_admin").post(
        f"/v1/tenants/{people.tenant.pk}/documents/upload",
        {"file": SimpleUploadedFile(filename, long_manual(paragraphs))},
        format="multipart",
    )


def test_a_real_worker_ingests_an_upload(tenant_a, celery_worker_process):
    celery_worker_process()
    response = upload(tenant_a, "manual.txt", paragraphs=20)
    assert response.status_code == 202, response.content
    document_id = response.json()["id"]
    ready = wait_for(lambda: Document.objects.filter(pk=document_id, status="ready").first(), seconds=120)
    assert ready is not None, Document.objects.get(pk=document_id).__dict__
    assert ready.chunk_count == vector_count(ready) == Chunk.objects.filter(document=ready).count()


@pytest.mark.faults
def test_a_worker_killed_mid_ingestion_leaves_one_set_of_vectors_after_restart(
    tenant_a, celery_worker_process
):
    # About 30 chunks, embedded 4 at a time: progress moves in small steps, and the kill comes
    # with most of the embedding still to do (checked below: the document is not ready).
    first = celery_worker_process(EMBEDDING_BATCH_SIZE="4")
    response = upload(tenant_a, "big-manual.txt", paragraphs=240)
    document_id = response.json()["id"]
    embedding = wait_for(
        lambda: Document.objects.filter(pk=document_id, stage="embedding", progress__gt=0.25).first(),
        seconds=120,
    )
    assert embedding is not None, "the ingestion never reached the embedding stage"
    first.kill()
    stuck = Document.objects.get(pk=document_id)
    assert stuck.status == "processing"

    celery_worker_process()  # the task was never acknowledged, so Redis delivers it again
    # The redelivered task embeds every paragraph again. The wait only bounds a hang; a quick
    # worker ends it early.
    ready = wait_for(
        lambda: Document.objects.filter(pk=document_id, status="ready").first(), seconds=600, step=0.5
    )
    assert ready is not None, Document.objects.get(pk=document_id).__dict__
    chunks = Chunk.objects.filter(document=ready).count()
    assert chunks == ready.chunk_count == vector_count(ready)
    assert chunks > 20


@pytest.mark.faults
def test_ingestion_waits_out_an_unreachable_index_and_completes_once_it_returns(
    tenant_a, own_milvus, celery_worker_process
):
    own_milvus.stop()
    celery_worker_process()
    response = upload(tenant_a, "manual.txt", paragraphs=12)
    assert response.status_code == 202, response.content
    document_id = response.json()["id"]
    # The worker reaches the index, finds it down and schedules a retry, and says so.
    waiting = wait_for(
        lambda: Document.objects.filter(pk=document_id, error__contains="retrying").first(), seconds=120
    )
    assert waiting is not None, Document.objects.get(pk=document_id).__dict__
    assert waiting.status == "processing"
    assert waiting.error.startswith("The vector index is unavailable; retrying in")

    own_milvus.start()
    ready = wait_for(lambda: Document.objects.filter(pk=document_id, status="ready").first(), seconds=120)
    assert ready is not None, Document.objects.get(pk=document_id).__dict__
    assert ready.chunk_count == vector_count(ready) == Chunk.objects.filter(document=ready).count()
