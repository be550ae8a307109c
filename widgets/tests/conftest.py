"""Fixtures of the widget tests: a widget of tenant A (and of B) and visitor sessions."""

import hashlib
import hmac

import pytest
from rest_framework.test import APIClient

from widgets import services

SHOP = "https://shop.example.com.tw"


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


def visitor_hash(secret: str, visitor_id: str) -> str:
    return hmac.new(secret.encode(), visitor_id.encode(), hashlib.sha256).hexdigest()


def open_session(widget, origin: str = SHOP, **body):
    client = APIClient()
    response = client.post(
        "/v1/widget/sessions", {"public_key": widget.public_key, **body}, format="json", HTTP_ORIGIN=origin
    )
    return response


def visitor_client(session: dict, origin: str | None = SHOP) -> APIClient:
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {session['token']}"}
    if origin:
        headers["HTTP_ORIGIN"] = origin
    client.credentials(**headers)
    return client


@pytest.fixture(autouse=True)
def _knowledge_index(milvus_uri):
    """Every chat reaches a running vector index (tenant A's knowledge, when a test has it)."""
