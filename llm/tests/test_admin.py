"""The operators' admin: provider configs with a write-only key, read-only usage."""

import datetime as dt

import pytest

from llm import selectors, services
from llm.base import Usage
from llm.models import ProviderConfig
from testsupport.people import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.urls("llm.tests.urls")]

SECRET = "sk-live-verysecret-0123456789"


@pytest.fixture
def operator(client, platform_admin):
    assert client.login(email=platform_admin.email, password=PASSWORD)
    return client


def test_the_pages_load(operator, tenant_a):
    services.assistant_update(
        tenant=tenant_a.tenant, data={"providers": [{"kind": "openai", "model": "gpt", "api_key": SECRET}]}
    )
    services.usage_record(tenant=tenant_a.tenant, usage=Usage(1, 2, "openai", "gpt"), day=dt.date(2026, 3, 1))
    config = ProviderConfig.objects.for_tenant(tenant_a.tenant).get()

    for page in [
        "/admin/llm/providerconfig/",
        "/admin/llm/providerconfig/add/",
        f"/admin/llm/providerconfig/{config.pk}/change/",
        "/admin/llm/usageday/",
    ]:
        response = operator.get(page)
        assert response.status_code == 200, page
        assert SECRET not in response.content.decode()
        assert config.api_key_encrypted not in response.content.decode()


def test_the_key_entered_in_the_admin_is_encrypted(operator, tenant_a):
    response = operator.post(
        "/admin/llm/providerconfig/add/",
        {
            "tenant": str(tenant_a.tenant.pk),
            "position": 0,
            "kind": "anthropic",
            "model": "claude",
            "base_url": "",
            "api_version": "",
            "temperature": 0.2,
            "max_tokens": 800,
            "timeout_seconds": 30,
            "enabled": "on",
            "api_key": SECRET,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    config = ProviderConfig.objects.for_tenant(tenant_a.tenant).get()
    assert config.has_api_key and SECRET not in config.api_key_encrypted
    assert selectors.provider_chain(tenant=tenant_a.tenant)[0].spec.api_key == SECRET


def test_usage_is_read_only(operator, tenant_a):
    assert operator.get("/admin/llm/usageday/add/").status_code == 403
