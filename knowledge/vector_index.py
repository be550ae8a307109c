"""The connection to Milvus. Every search, query and delete will be built here, with the
tenant filter always added (the knowledge issue)."""

import uuid

from django.conf import settings
from pymilvus import MilvusClient


def milvus_client(*, timeout: float = 10.0) -> MilvusClient:
    # A unique alias per client: pymilvus caches connections by alias, and a cached one that
    # went stale when Milvus restarted would never recover.
    return MilvusClient(
        uri=settings.MILVUS_URI,
        token=settings.MILVUS_TOKEN,
        timeout=timeout,
        alias=f"platform-{uuid.uuid4().hex}",
    )


def vector_index_ping(*, timeout: float = 2.0) -> None:
    """Raise when Milvus does not answer within `timeout` seconds."""
    client = milvus_client(timeout=timeout)
    try:
        client.list_collections(timeout=timeout)
    finally:
        client.close()
