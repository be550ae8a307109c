"""Fixtures of the chat tests."""

import pytest

from testsupport.documents import RETURNS_POLICY, WARRANTY, uploaded


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
