"""The index layer against a Milvus Lite server of its own (`own_milvus`), which the tests stop
and restart."""

import uuid

import numpy as np
import pytest

from knowledge import vector_index
from testsupport.api import assert_error
from testsupport.people import PASSWORD


def unit(*values) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


@pytest.mark.faults
def test_searches_survive_a_restart_of_the_index(own_milvus):
    tenant = uuid.uuid4()
    vector_index.ensure_collection(name="restart_test", dimension=3)
    vector_index.replace_document(
        collection="restart_test",
        tenant_id=tenant,
        document_id=7,
        chunks=[vector_index.IndexedChunk(chunk_id=70, document_id=7, dense=unit(1, 0, 0), sparse={11: 1.5})],
    )
    own_milvus.stop()
    with pytest.raises(vector_index.VectorIndexUnavailable):
        vector_index.search_dense(collection="restart_test", tenant_id=tenant, vector=unit(1, 0, 0), limit=3)
    own_milvus.start()
    hits = vector_index.search_dense(
        collection="restart_test", tenant_id=tenant, vector=unit(1, 0, 0), limit=3
    )
    assert [hit.chunk_id for hit in hits] == [70]
    assert [
        hit.chunk_id
        for hit in vector_index.search_sparse(
            collection="restart_test", tenant_id=tenant, weights={11: 1.0}, limit=3
        )
    ] == [70]


def test_every_operation_is_scoped_to_its_tenant(own_milvus):
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    vector_index.ensure_collection(name="scope_test", dimension=3)
    same = dict(dense=unit(0, 1, 0), sparse={5: 1.0})
    vector_index.replace_document(
        collection="scope_test",
        tenant_id=tenant_a,
        document_id=1,
        chunks=[vector_index.IndexedChunk(chunk_id=1, document_id=1, **same)],
    )
    vector_index.replace_document(
        collection="scope_test",
        tenant_id=tenant_b,
        document_id=1,
        chunks=[vector_index.IndexedChunk(chunk_id=2, document_id=1, **same)],
    )
    assert [
        hit.chunk_id
        for hit in vector_index.search_dense(
            collection="scope_test", tenant_id=tenant_b, vector=unit(0, 1, 0), limit=5
        )
    ] == [2]
    assert [
        hit.chunk_id
        for hit in vector_index.search_sparse(
            collection="scope_test", tenant_id=tenant_b, weights={5: 1.0}, limit=5
        )
    ] == [2]
    # Deleting "document 1" of tenant B leaves tenant A's document 1 alone.
    vector_index.delete_document(collection="scope_test", tenant_id=tenant_b, document_id=1)
    assert vector_index.count(collection="scope_test", tenant_id=tenant_a) == 1
    assert vector_index.count(collection="scope_test", tenant_id=tenant_b) == 0
    assert (
        vector_index.existing_chunk_ids(collection="scope_test", tenant_id=tenant_b, chunk_ids=[1, 2])
        == set()
    )


def test_a_tenant_filter_cannot_be_injected(own_milvus):
    with pytest.raises(ValueError):
        vector_index.count(collection="scope_test", tenant_id='x" or tenant_id != "y')


@pytest.mark.faults
@pytest.mark.django_db
def test_search_answers_503_when_the_index_is_down(tenant_a, own_milvus):
    own_milvus.stop()
    vector_index._forget_client()
    response = tenant_a.client("agent").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/knowledge/search", {"query": "退貨"}, format="json"
    )
    assert_error(response, 503, "vector_index_unavailable")


def test_a_collection_created_elsewhere_without_indexes_is_completed_and_searchable(own_milvus):
    """Another process may create the collection and be killed before its indexes exist; and the
    first searches arrive together: none may load the collection without its indexes."""
    import threading

    from pymilvus import DataType, MilvusClient

    raw = MilvusClient(uri=own_milvus.uri)
    schema = raw.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("chunk_id", DataType.INT64, is_primary=True)
    schema.add_field("tenant_id", DataType.VARCHAR, max_length=36)
    schema.add_field("document_id", DataType.INT64)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=3)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    raw.create_collection("half_made", schema=schema)
    tenant = uuid.uuid4()
    errors = []

    def first_search():
        try:
            vector_index.ensure_collection(name="half_made", dimension=3)
            vector_index.search_dense(collection="half_made", tenant_id=tenant, vector=unit(1, 0, 0), limit=3)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=first_search) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    vector_index.replace_document(
        collection="half_made",
        tenant_id=tenant,
        document_id=1,
        chunks=[vector_index.IndexedChunk(chunk_id=10, document_id=1, dense=unit(1, 0, 0), sparse={3: 1.0})],
    )
    hits = vector_index.search_dense(collection="half_made", tenant_id=tenant, vector=unit(1, 0, 0), limit=3)
    assert [hit.chunk_id for hit in hits] == [10]


@pytest.mark.faults
def test_readiness_waits_for_every_collection_to_be_loaded(own_milvus, client, platform_admin):
    from pymilvus import MilvusClient

    vector_index.ensure_collection(name="chunks_ready_test", dimension=3)
    MilvusClient(uri=own_milvus.uri).release_collection("chunks_ready_test")

    with pytest.raises(vector_index.VectorIndexLoading):
        vector_index.vector_index_ping()
    assert client.get("/readyz").json()["checks"]["vector_index"]["status"] == "down"
    client.login(email=platform_admin.email, password=PASSWORD)  # the reason: operators only
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "loading" in response.json()["checks"]["vector_index"]["error"]

    assert [name for name, _ in vector_index.load_all(uri=own_milvus.uri)] == ["chunks_ready_test"]
    vector_index.vector_index_ping()


@pytest.mark.faults
def test_the_index_server_loads_its_collections_when_it_starts(own_milvus):
    """After a restart nothing is loaded; the supervisor (`manage.py milvus_server`) loads every
    collection itself, so the first search after readiness does not pay for it."""
    import time

    from pymilvus import MilvusClient
    from pymilvus.client.types import LoadState

    tenant = uuid.uuid4()
    vector_index.ensure_collection(name="chunks_restart_load", dimension=3)
    chunk = vector_index.IndexedChunk(chunk_id=1, document_id=1, dense=unit(0, 0, 1), sparse={2: 1.0})
    vector_index.replace_document(
        collection="chunks_restart_load", tenant_id=tenant, document_id=1, chunks=[chunk]
    )
    own_milvus.stop()
    own_milvus.start()

    deadline = time.monotonic() + 30
    while True:
        try:
            vector_index.vector_index_ping()
            break
        except vector_index.VectorIndexUnavailable:
            assert time.monotonic() < deadline, "the index never became ready"
            time.sleep(0.1)
    state = MilvusClient(uri=own_milvus.uri).get_load_state("chunks_restart_load")["state"]
    assert state == LoadState.Loaded


@pytest.mark.parametrize("limit", [100_000, 0])
def test_a_request_the_index_refuses_keeps_the_shared_connection(own_milvus, limit):
    """A bad request (a `limit` Milvus refuses) is the request's fault: it must not drop the
    connection that every other search of the process (other tenants') is using, nor reload."""
    tenant = uuid.uuid4()
    vector_index.ensure_collection(name="bad_request_test", dimension=3)
    client = vector_index._shared_client()
    ready = set(vector_index._ready_collections)

    with pytest.raises(vector_index.VectorIndexRequestRefused):
        vector_index.search_dense(
            collection="bad_request_test", tenant_id=tenant, vector=unit(1, 0, 0), limit=limit
        )

    assert vector_index._shared_client() is client
    assert vector_index._ready_collections == ready
    hits = vector_index.search_dense(
        collection="bad_request_test", tenant_id=tenant, vector=unit(1, 0, 0), limit=3
    )
    assert hits == []
