"""Fixtures of the chat tests."""

import pytest

from knowledge.tests.test_documents_api import RETURNS_POLICY, WARRANTY, uploaded
from llm.services import assistant_update


@pytest.fixture
def knowledge_a(tenant_a, eager_ingestion):
    """Tenant A knows its returns policy (Chinese) and its warranty (English)."""
    documents = [
        uploaded(tenant_a, "returns.txt", RETURNS_POLICY.encode()),
        uploaded(tenant_a, "warranty.md", WARRANTY.encode()),
    ]
    for document in documents:
        document.refresh_from_db()
        assert document.status == "ready", document.error
    return documents


def use_provider(people, server, model: str, kind: str = "openai") -> None:
    """Make the local wire server's `model` the tenant's only provider (no fallback)."""
    provider = {"kind": kind, "model": model, "base_url": server.base_url}
    if server.api_key:
        provider["api_key"] = server.api_key
    assistant_update(tenant=people.tenant, data={"providers": [provider]})
