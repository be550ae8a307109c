"""Ingestion is fair across tenants and reindex is idempotent: one tenant's backlog never
stands in front of another tenant's upload, and asking twice queues nothing twice."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge import ingestion, selectors, services
from knowledge.models import Document
from platform_project.celery import app
from testsupport.environment import committed, wait_for


def queued_messages() -> int:
    """Messages waiting in the Celery broker's default queue (nothing consumes them here)."""
    with app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue="celery").message_count


@pytest.fixture
def empty_queue():
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("celery")
    yield
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("celery")


def page(tenant_label: str, number: int) -> SimpleUploadedFile:
    text = f"Tenant {tenant_label}, page {number}: clean the filter every {number + 2} days and log it."
    return SimpleUploadedFile(f"{tenant_label}-{number}.txt", text.encode())


@pytest.mark.service
def test_one_tenants_backlog_does_not_hold_back_another_tenants_upload(
    tenant_a, tenant_b, celery_worker_process
):
    plan = tenant_a.tenant.plan
    plan.max_documents = plan.max_storage_bytes = 0  # no quota in the way of the backlog
    plan.save()
    celery_worker_process()
    for number in range(200):
        services.document_upload(
            tenant=tenant_a.tenant, uploaded_by=tenant_a.tenant_admin, upload=page("a", number)
        )
    uploaded = services.document_upload(
        tenant=tenant_b.tenant, uploaded_by=tenant_b.tenant_admin, upload=page("b", 0)
    )

    ready = wait_for(
        lambda: Document.objects.filter(pk=uploaded.pk, status="ready").first(), seconds=300, step=0.5
    )
    assert ready is not None, Document.objects.get(pk=uploaded.pk).__dict__
    # Tenant A's documents that finished while tenant B's one waited: a handful, not the backlog.
    ahead = Document.objects.filter(
        tenant=tenant_a.tenant, ingested_at__gt=uploaded.created_at, ingested_at__lt=ready.ingested_at
    ).count()
    assert ahead < 10, f"{ahead} of tenant A's documents were ingested before tenant B's one"
    # Tenant A's backlog still waits its turn, as `pending`, and says so.
    waiting = Document.objects.filter(tenant=tenant_a.tenant, status="pending", stage="waiting")
    assert waiting.count() > 100


@pytest.mark.django_db
def test_reindex_all_queues_nothing_for_documents_already_pending(tenant_a, empty_queue):
    with committed():
        document = services.document_upload(
            tenant=tenant_a.tenant, uploaded_by=tenant_a.tenant_admin, upload=page("a", 1)
        )
    assert queued_messages() == 1
    client = tenant_a.client("tenant_admin")
    for _ in range(3):
        with committed():
            response = client.post(f"/v1/tenants/{tenant_a.tenant.pk}/documents/reindex")
        assert response.status_code == 202
        assert response.json() == {"queued": 0}
    with committed():
        response = client.post(f"/v1/tenants/{tenant_a.tenant.pk}/documents/{document.pk}/reindex")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert queued_messages() == 1


@pytest.mark.django_db
def test_reindex_queues_nothing_for_a_document_being_processed(tenant_a, empty_queue):
    document = services.document_upload(
        tenant=tenant_a.tenant, uploaded_by=tenant_a.tenant_admin, upload=page("a", 1)
    )  # not committed: nothing queued yet
    Document.objects.filter(pk=document.pk).update(status="processing", stage="embedding")
    with committed():
        response = tenant_a.client("tenant_admin").post(
            f"/v1/tenants/{tenant_a.tenant.pk}/documents/{document.pk}/reindex"
        )
    assert response.status_code == 202
    assert response.json()["status"] == "processing"
    assert queued_messages() == 0


@pytest.mark.django_db
def test_reindex_all_queues_a_ready_document_once(tenant_a, empty_queue):
    document = services.document_upload(
        tenant=tenant_a.tenant, uploaded_by=tenant_a.tenant_admin, upload=page("a", 1)
    )
    Document.objects.filter(pk=document.pk).update(status="ready", stage="done")
    client = tenant_a.client("tenant_admin")
    with committed():
        first = client.post(f"/v1/tenants/{tenant_a.tenant.pk}/documents/reindex")
    with committed():
        second = client.post(f"/v1/tenants/{tenant_a.tenant.pk}/documents/reindex")
    assert (first.json(), second.json()) == ({"queued": 1}, {"queued": 0})
    assert queued_messages() == 1


def drain_queue() -> list[tuple[str, list[int]]]:
    """The ingestion tasks in the broker's queue, in the order a worker takes them (removed):
    each one's tenant and batch of documents."""
    taken = []
    with app.connection_for_write() as connection:
        while (message := connection.default_channel.basic_get("celery", no_ack=True)) is not None:
            assert message.headers["task"] == ingestion.INGEST_TASK
            args, _kwargs, _embed = message.decode()
            assert message.headers["id"] == Document.objects.get(pk=args[1][0]).ingestion_batch
            taken.append((args[0], args[1]))
    return taken


def finish(document: Document) -> None:
    """What the task does at its end: the document is done and its tenant's next one is queued."""
    Document.objects.filter(pk=document.pk).update(status="ready", stage="done", progress=1.0)
    with committed():
        ingestion.ingestion_dispatch(tenant_id=document.tenant_id)


@pytest.mark.django_db
def test_a_tenants_single_document_is_queued_behind_at_most_the_cap_of_another_tenants_bulk(
    tenant_a, tenant_b, empty_queue, settings
):
    settings.INGESTION_TASKS_PER_TENANT = 2
    settings.INGESTION_BATCH_DOCUMENTS = 3
    plan = tenant_a.tenant.plan
    plan.max_documents = plan.max_storage_bytes = 0
    plan.save()
    a_id, b_id = str(tenant_a.tenant.pk), str(tenant_b.tenant.pk)
    with committed():
        bulk = [
            services.document_upload(tenant=tenant_a.tenant, uploaded_by=None, upload=page("a", number))
            for number in range(10)
        ]
    with committed():
        single = services.document_upload(tenant=tenant_b.tenant, uploaded_by=None, upload=page("b", 0))
    # Each upload dispatched as it came: the first two found a free slot and went alone; the
    # other eight wait. Tenant B's one stands right behind tenant A's two tasks.
    assert drain_queue() == [(a_id, [bulk[0].pk]), (a_id, [bulk[1].pk]), (b_id, [single.pk])]
    assert Document.objects.filter(tenant=tenant_a.tenant, stage="waiting").count() == 8
    positions = selectors.queue_positions(
        tenant=tenant_a.tenant, documents=Document.objects.filter(pk__in=[d.pk for d in bulk])
    )
    assert [positions[document.pk] for document in bulk] == list(range(1, 11))
    assert selectors.queue_positions(
        tenant=tenant_b.tenant, documents=[Document.objects.get(pk=single.pk)]
    ) == {single.pk: 1}
    # As a task finishes, exactly one task takes its place, now a batch of the backlog: never
    # more than two tasks in flight, however many documents they hold.
    finish(bulk[0])
    assert drain_queue() == [(a_id, [bulk[2].pk, bulk[3].pk, bulk[4].pk])]
    finish(bulk[1])
    assert drain_queue() == [(a_id, [bulk[5].pk, bulk[6].pk, bulk[7].pk])]
    finish(bulk[2])  # one of a batch: the batch is still in flight
    assert drain_queue() == []
    positions = selectors.queue_positions(
        tenant=tenant_a.tenant, documents=Document.objects.filter(pk__in=[d.pk for d in bulk])
    )
    assert [positions.get(document.pk) for document in bulk] == [None, None, None, 1, 2, 3, 4, 5, 6, 7]
    finish(bulk[3])
    finish(bulk[4])  # the batch is done
    assert drain_queue() == [(a_id, [bulk[8].pk, bulk[9].pk])]


@pytest.mark.django_db
def test_a_batch_holds_at_most_its_byte_budget_and_a_larger_document_goes_alone(
    tenant_a, empty_queue, settings
):
    settings.INGESTION_TASKS_PER_TENANT = 3
    settings.INGESTION_BATCH_DOCUMENTS = 8
    plan = tenant_a.tenant.plan
    plan.max_documents = plan.max_storage_bytes = 0
    plan.save()
    sizes = [100, 100, 100, 5000, 100, 100]
    documents = [
        services.document_upload(
            tenant=tenant_a.tenant,
            uploaded_by=None,
            upload=SimpleUploadedFile(f"page-{number}.txt", (f"page {number} " * size).encode()[:size]),
        )
        for number, size in enumerate(sizes)
    ]  # not committed: nothing dispatched yet
    Document.objects.filter(pk__in=[d.pk for d in documents]).update(stage="waiting")
    settings.INGESTION_BATCH_BYTES = 250
    with committed():
        queued = ingestion.ingestion_dispatch(tenant_id=tenant_a.tenant.pk)
    ids = [document.pk for document in documents]
    assert queued == ids[:4]
    a_id = str(tenant_a.tenant.pk)
    # 100 + 100 fit, a third would pass 250; the 5000-byte one alone; the cap of three tasks.
    assert drain_queue() == [(a_id, ids[0:2]), (a_id, ids[2:3]), (a_id, ids[3:4])]
    assert Document.objects.filter(pk__in=ids[4:], stage="waiting").count() == 2
