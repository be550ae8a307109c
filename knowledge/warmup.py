"""Warm a process before it serves: load the embedding model, make sure the index collection
exists and is loaded, and run one search, so that no user waits for a lazy load or build."""

import logging
import time
import uuid

from knowledge import vector_index
from knowledge.embedding import get_embedder

logger = logging.getLogger(__name__)

_NOBODY = uuid.UUID(int=0)


def warm_up() -> None:
    started = time.perf_counter()
    try:
        embedder = get_embedder()
        vector = embedder.embed_query("warm up")
        collection = vector_index.collection_name(embedder_name=embedder.name, dimension=embedder.dimension)
        vector_index.ensure_collection(name=collection, dimension=embedder.dimension)
        vector_index.search_dense(collection=collection, tenant_id=_NOBODY, vector=vector, limit=1)
        vector_index.search_sparse(collection=collection, tenant_id=_NOBODY, weights={1: 1.0}, limit=1)
    except Exception:  # noqa: BLE001 - a cold start is slower, not broken; the first request retries
        logger.warning("warm-up failed; the first search will load what it needs", exc_info=True)
        return
    logger.info("warmed up the embedding model and the vector index in %.2f s", time.perf_counter() - started)
