"""Fixtures of the widget tests: a widget of tenant A (and of B) and visitor sessions."""

import pytest

from testsupport.widgets import SHOP
from widgets import services


@pytest.fixture
def widget_a(tenant_a):
    widget, _secret = services.widget_create(
        tenant=tenant_a.tenant,
        name="官網客服",
        allowed_origins=[SHOP, "http://localhost:8080"],
        greeting="您好！",
    )
    return widget


@pytest.fixture
def verified_widget_a(tenant_a):
    widget, secret = services.widget_create(
        tenant=tenant_a.tenant, name="會員客服", allowed_origins=[SHOP], identity_verification=True
    )
    widget.plain_secret = secret
    return widget


@pytest.fixture
def widget_b(tenant_b):
    widget, _secret = services.widget_create(
        tenant=tenant_b.tenant, name="B shop", allowed_origins=["https://b.example.com"]
    )
    return widget


@pytest.fixture(autouse=True)
def _knowledge_index(milvus_uri):
    """Every chat reaches a running vector index (tenant A's knowledge, when a test has it)."""
