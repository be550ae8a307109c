"""The Milvus index of chunks: one collection per embedding model and dimension, each row a
chunk with its tenant, document, dense vector and BM25 sparse vector.

Tenancy: every search, query and delete is built by `_scoped()`, which always adds the tenant
filter. The tenant is a plain VARCHAR field with an INVERTED index rather than Milvus's
partition key, because Milvus Lite 2.5 rejects any filter on a schema with a partition key.
"""

import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import grpc
import numpy as np
from django.conf import settings
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.client.types import LoadState
from pymilvus.exceptions import ConnectError as MilvusConnectError
from pymilvus.exceptions import ConnectionNotExistException, MilvusUnavailableException

from tenants.errors import APIError, ServiceUnavailable

# pymilvus raises its own exceptions, but lets some gRPC failures (a deadline exceeded
# while a restarted server loads its index) through as they are.
_INDEX_ERRORS = (MilvusException, grpc.RpcError, ConnectionError, TimeoutError)
# What says the connection is gone, rather than that Milvus refused one request: only these drop
# the shared client (which every search of the process, every tenant's, is using) and reconnect.
_CONNECTION_ERRORS = (
    ConnectionError,
    TimeoutError,
    grpc.FutureTimeoutError,
    MilvusConnectError,
    ConnectionNotExistException,
    MilvusUnavailableException,
)
_CONNECTION_STATUSES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}
# Milvus's answer for a collection that a restarted server has not loaded yet.
_COLLECTION_NOT_LOADED = 101

_clients: dict[str, MilvusClient] = {}
_ready_collections: set[tuple[str, str]] = set()
# First searches of a new collection arrive together (the warm-up and the first requests): one
# creates it, the others wait, so that none loads it before its indexes exist.
_collection_lock = threading.Lock()
_INDEXES = {
    "tenant_id": {"index_type": "INVERTED"},
    "document_id": {"index_type": "INVERTED"},
    "dense": {"index_type": "AUTOINDEX", "metric_type": "COSINE"},
    "sparse": {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP"},
}
_lock = threading.Lock()

# Milvus refuses an `in [...]` list or a delete larger than this in one expression.
_BATCH = 1000
# Seconds an operation may take, retries included: pymilvus otherwise retries an unreachable
# server for minutes. Searches serve people waiting for an answer; writes serve workers.
SEARCH_TIMEOUT = 3  # an int: pymilvus ignores a float as its retry deadline
WRITE_TIMEOUT = 30


class VectorIndexUnavailable(ServiceUnavailable):
    default_code = "vector_index_unavailable"
    default_detail = "The knowledge index is unavailable. Try again shortly."


@dataclass(frozen=True)
class IndexedChunk:
    chunk_id: int
    document_id: int
    dense: np.ndarray
    sparse: Mapping[int, float]


@dataclass(frozen=True)
class VectorHit:
    chunk_id: int
    document_id: int
    score: float


def milvus_client(*, timeout: float = 10.0, uri: str | None = None) -> MilvusClient:
    # A unique alias per client: pymilvus caches connections by alias, and a cached one that
    # went stale when Milvus restarted would never recover.
    return MilvusClient(
        uri=uri or settings.MILVUS_URI,
        token=settings.MILVUS_TOKEN,
        timeout=timeout,
        alias=f"platform-{uuid.uuid4().hex}",
    )


# The platform's collections: one per embedding model and dimension.
COLLECTION_PREFIX = "chunks_"


class VectorIndexRequestRefused(APIError):
    """Milvus refused a request the platform built (a limit out of its range, a malformed
    filter): a bug to see and fix (500), never a reason to drop the connection."""

    status_code = 500
    default_code = "vector_index_request_refused"
    default_detail = "The knowledge index refused the search. The platform's operators have been told."


class VectorIndexLoading(VectorIndexUnavailable):
    default_code = "vector_index_loading"
    default_detail = "The knowledge index is loading. Try again shortly."


def vector_index_ping(*, timeout: float = 2.0) -> None:
    """Raise when Milvus does not answer within `timeout` seconds, and `VectorIndexLoading` while
    any collection is not loaded yet (after a restart of the index, until `load_all()` is done):
    a process is ready only when no search would wait for a load."""
    client = milvus_client(timeout=timeout)
    try:
        for name in client.list_collections(timeout=timeout):
            if not name.startswith(COLLECTION_PREFIX):
                continue  # another application's, in a shared Milvus
            state = client.get_load_state(name, timeout=timeout)["state"]
            if state != LoadState.Loaded:
                raise VectorIndexLoading(f"loading: collection {name} is {state.name}.")
    finally:
        client.close()


def load_all(*, uri: str, timeout: float = 600) -> list[tuple[str, float]]:
    """Load every collection of the index at `uri` (seconds each). Milvus Lite forgets what was
    loaded when it restarts, and loading 100,000 chunks takes seconds: the index's supervisor
    calls this as soon as it serves, so that no search pays for it."""
    client = milvus_client(timeout=int(timeout), uri=uri)
    loaded = []
    try:
        for name in client.list_collections(timeout=int(timeout)):
            if not name.startswith(COLLECTION_PREFIX):
                continue
            started = time.perf_counter()
            client.load_collection(name, timeout=int(timeout))
            loaded.append((name, time.perf_counter() - started))
    finally:
        client.close()
    return loaded


def _shared_client() -> MilvusClient:
    """One client per process and URI: creating one costs a round of gRPC handshakes."""
    uri = settings.MILVUS_URI
    with _lock:
        client = _clients.get(uri)
        if client is None:
            try:
                client = milvus_client(timeout=SEARCH_TIMEOUT)
            except _INDEX_ERRORS as error:
                raise VectorIndexUnavailable() from error
            _clients[uri] = client
        return client


def _forget_client() -> None:
    with _lock:
        client = _clients.pop(settings.MILVUS_URI, None)
        _ready_collections.clear()
    if client is not None:
        try:
            client.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken client must not mask the first error
            pass


def collection_name(*, embedder_name: str, dimension: int) -> str:
    safe = "".join(char if char.isalnum() else "_" for char in embedder_name.lower())
    return f"{COLLECTION_PREFIX}{safe}_{dimension}"


def _scoped(tenant_id, condition: str | None = None) -> str:
    """The filter of every operation: the tenant, always, and then the caller's condition."""
    tenant = str(uuid.UUID(str(tenant_id)))  # a UUID has no quote to escape
    scope = f'tenant_id == "{tenant}"'
    return f"{scope} and ({condition})" if condition else scope


def _connection_lost(error: BaseException) -> bool:
    """Whether an index error says the connection is down (Milvus stopped, restarting, or too
    slow to answer), looking through pymilvus's wrapping to the gRPC status underneath."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _CONNECTION_ERRORS):
            return True
        if isinstance(current, grpc.RpcError) and callable(getattr(current, "code", None)):
            if current.code() in _CONNECTION_STATUSES:
                return True
        if isinstance(current, MilvusException):
            code = current.code
            # pymilvus keeps the gRPC error's `code` method itself when its retries run out.
            if callable(code) and isinstance(getattr(code, "__self__", None), grpc.RpcError):
                code = code()
            if code in _CONNECTION_STATUSES:
                return True
        # pymilvus re-raises errors `from` themselves: follow the chain past such loops.
        following = [current.__cause__, current.__context__]
        current = next((item for item in following if item is not None and id(item) not in seen), None)
    return False


def _not_loaded(error: BaseException) -> bool:
    return isinstance(error, MilvusException) and (
        error.code == _COLLECTION_NOT_LOADED or "not loaded" in str(error.message).lower()
    )


def _call(operation, *, collection: str | None = None):
    """Run an operation on the shared client. When the connection is lost, the client is dropped
    and the operation tried once more on a fresh connection, with the collection loaded again:
    that is what a restarted Milvus needs (a collection it has not loaded yet is loaded, and the
    operation tried again, on the same connection). A second failure means the index is
    unavailable. An error that is the request's own (Milvus refused it) keeps the connection,
    which other requests, other tenants' among them, are using: `VectorIndexRequestRefused`."""
    for attempt in (1, 2):
        try:
            return operation(_shared_client())
        except _INDEX_ERRORS as error:
            lost = _connection_lost(error)
            if not lost and not (collection is not None and _not_loaded(error)):
                raise VectorIndexRequestRefused() from error
            if lost:
                _forget_client()
            if attempt == 2:
                raise VectorIndexUnavailable() from error
            if collection is not None:
                try:
                    _shared_client().load_collection(collection, timeout=WRITE_TIMEOUT)
                except _INDEX_ERRORS as load_error:
                    if _connection_lost(load_error):
                        _forget_client()
                    raise VectorIndexUnavailable() from load_error
    raise AssertionError("unreachable")


def ensure_collection(*, name: str, dimension: int) -> None:
    """Create the collection if missing, and load it, so that no search waits for a lazy build."""
    key = (settings.MILVUS_URI, name)
    if key in _ready_collections:
        return

    def create(client: MilvusClient) -> None:
        if not client.has_collection(name, timeout=WRITE_TIMEOUT):
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("chunk_id", DataType.INT64, is_primary=True)
            schema.add_field("tenant_id", DataType.VARCHAR, max_length=36)
            schema.add_field("document_id", DataType.INT64)
            schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            client.create_collection(name, schema=schema, timeout=WRITE_TIMEOUT)
        # Another process may have created the collection and not yet its indexes: add what is
        # missing before loading, since a collection loaded without an index cannot be searched.
        missing = [field for field in _INDEXES if not client.list_indexes(name, field_name=field)]
        if missing:
            indexes = client.prepare_index_params()
            for field in missing:
                indexes.add_index(field_name=field, **_INDEXES[field])
            client.release_collection(name, timeout=WRITE_TIMEOUT)
            client.create_index(name, indexes, timeout=WRITE_TIMEOUT)
        client.load_collection(name, timeout=WRITE_TIMEOUT)

    with _collection_lock:
        if key in _ready_collections:
            return
        _call(create)
        _ready_collections.add(key)


def replace_document(*, collection: str, tenant_id, document_id: int, chunks: Sequence[IndexedChunk]) -> None:
    """Replace a document's vectors: delete every vector of the document, then insert the new
    ones. A rerun of the same ingestion therefore never duplicates vectors."""
    delete_document(collection=collection, tenant_id=tenant_id, document_id=document_id)
    rows = [
        {
            "chunk_id": chunk.chunk_id,
            "tenant_id": str(tenant_id),
            "document_id": document_id,
            "dense": chunk.dense.astype(np.float32).tolist(),
            "sparse": {int(term): float(weight) for term, weight in chunk.sparse.items()} or {0: 0.0},
        }
        for chunk in chunks
    ]
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        _call(
            lambda client, batch=batch: client.insert(collection, data=batch, timeout=WRITE_TIMEOUT),
            collection=collection,
        )


def delete_document(*, collection: str, tenant_id, document_id: int) -> None:
    condition = f"document_id == {int(document_id)}"
    _call(
        lambda client: client.delete(collection, filter=_scoped(tenant_id, condition), timeout=WRITE_TIMEOUT),
        collection=collection,
    )


def delete_tenant(*, collection: str, tenant_id) -> None:
    _call(
        lambda client: client.delete(collection, filter=_scoped(tenant_id), timeout=WRITE_TIMEOUT),
        collection=collection,
    )


def count(*, collection: str, tenant_id, document_id: int | None = None) -> int:
    condition = f"document_id == {int(document_id)}" if document_id is not None else None
    rows = _call(
        lambda client: client.query(
            collection,
            filter=_scoped(tenant_id, condition),
            output_fields=["count(*)"],
            timeout=SEARCH_TIMEOUT,
        )
    )
    return int(rows[0]["count(*)"]) if rows else 0


def _hits(results) -> list[VectorHit]:
    hits = []
    for hit in results[0] if results else []:
        entity = hit.get("entity", {})
        hits.append(
            VectorHit(
                chunk_id=int(hit["id"]),
                document_id=int(entity.get("document_id", 0)),
                score=float(hit["distance"]),
            )
        )
    return hits


def _search(*, collection: str, tenant_id, field: str, query, metric: str, limit: int) -> list[VectorHit]:
    """The one search of the index, always within the tenant."""
    results = _call(
        lambda client: client.search(
            collection,
            data=[query],
            anns_field=field,
            limit=limit,
            filter=_scoped(tenant_id),
            output_fields=["document_id"],
            search_params={"metric_type": metric},
            timeout=SEARCH_TIMEOUT,
        ),
        collection=collection,
    )
    return _hits(results)


def search_dense(*, collection: str, tenant_id, vector: np.ndarray, limit: int) -> list[VectorHit]:
    query = vector.astype(np.float32).tolist()
    return _search(
        collection=collection, tenant_id=tenant_id, field="dense", query=query, metric="COSINE", limit=limit
    )


def search_sparse(*, collection: str, tenant_id, weights: Mapping[int, float], limit: int) -> list[VectorHit]:
    if not weights:
        return []
    query = {int(term): float(weight) for term, weight in weights.items()}
    return _search(
        collection=collection, tenant_id=tenant_id, field="sparse", query=query, metric="IP", limit=limit
    )


def existing_chunk_ids(*, collection: str, tenant_id, chunk_ids: Iterable[int]) -> set[int]:
    """Which of these chunk ids have a vector of this tenant (for consistency checks)."""
    ids = [int(chunk_id) for chunk_id in chunk_ids]
    found: set[int] = set()
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        rows = _call(
            lambda client, batch=batch: client.query(
                collection,
                filter=_scoped(tenant_id, f"chunk_id in {batch}"),
                output_fields=["chunk_id"],
                timeout=SEARCH_TIMEOUT,
            ),
            collection=collection,
        )
        found.update(int(row["chunk_id"]) for row in rows)
    return found


def delete_tenant_everywhere(*, tenant_id) -> list[str]:
    """Delete every vector of the tenant in every collection of the platform (a deleted tenant's,
    whatever embedding models it used), each delete built by `_scoped()`; the collections that
    were searched. Idempotent."""
    names = _call(lambda client: client.list_collections(timeout=WRITE_TIMEOUT))
    collections = sorted(name for name in names if name.startswith(COLLECTION_PREFIX))
    for name in collections:
        delete_tenant(collection=name, tenant_id=tenant_id)
    return collections
