"""The assistant settings page: tenant admins write, agents read, API keys are write-only."""

import pytest
from django.urls import reverse

from llm.models import ProviderConfig
from llm.selectors import provider_spec
from testsupport.dashboard import signed_in

pytestmark = pytest.mark.django_db


def url(people) -> str:
    return reverse("dashboard:settings", kwargs={"tenant_id": people.tenant.pk})


def form(**provider) -> dict:
    data = {
        "system_prompt": "你是客服。",
        "history_token_budget": "1000",
        "handoff_when_no_knowledge": "on",
        "provider-0-kind": "anthropic",
        "provider-0-model": "claude-test",
        "provider-0-temperature": "0.3",
        "provider-0-max_tokens": "500",
        "provider-0-enabled": "on",
        "provider-1-kind": "offline",
        "provider-1-enabled": "on",
    }
    data.update({f"provider-0-{name}": value for name, value in provider.items()})
    return data


def test_admins_save_the_chain_and_keys_are_never_shown(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    response = client.post(url(tenant_a), form(api_key="sk-secret-123"))
    assert response.status_code == 302
    configs = list(ProviderConfig.objects.for_tenant(tenant_a.tenant).order_by("position"))
    assert [config.kind for config in configs] == ["anthropic", "offline"]
    assert provider_spec(config=configs[0]).api_key == "sk-secret-123"
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.settings["assistant"]["handoff_when_no_knowledge"] is True

    page = client.get(url(tenant_a)).content.decode()
    assert "sk-secret-123" not in page and "Key stored" in page

    # Saving again without a key keeps the stored one; the checkbox removes it.
    assert client.post(url(tenant_a), form()).status_code == 302
    kept = ProviderConfig.objects.for_tenant(tenant_a.tenant).get(position=0)
    assert provider_spec(config=kept).api_key == "sk-secret-123"
    assert client.post(url(tenant_a), form(clear_key="on")).status_code == 302
    assert not ProviderConfig.objects.for_tenant(tenant_a.tenant).get(position=0).has_api_key


def test_invalid_rows_are_explained(tenant_a):
    response = signed_in(tenant_a.tenant_admin).post(url(tenant_a), form(model=""))
    assert response.status_code == 400
    assert any("needs a model" in error for error in response.context["errors"])
    assert not ProviderConfig.objects.for_tenant(tenant_a.tenant).exists()


def test_agents_can_neither_open_nor_write_the_settings(tenant_a):
    client = signed_in(tenant_a.agent)
    assert client.get(url(tenant_a)).status_code == 403
    assert client.post(url(tenant_a), form(api_key="x")).status_code == 403
    assert not ProviderConfig.objects.for_tenant(tenant_a.tenant).exists()


def test_another_tenants_admin_cannot_write(tenant_a, tenant_b):
    response = signed_in(tenant_b.tenant_admin).post(url(tenant_a), form(api_key="x"))
    assert response.status_code == 404
