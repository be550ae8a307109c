"""GET and PUT /v1/tenants/{tenant_id}/assistant: roles, tenants, validation, write-only keys."""

import json

import pytest

from llm import selectors
from llm.models import ProviderConfig
from testsupport.api import assert_error
from testsupport.llm import PROVIDER_SECRET, assistant_body, assistant_put, assistant_url
from testsupport.people import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("llm.tests.urls")]


def test_a_new_tenant_reads_the_defaults(tenant_a):
    response = tenant_a.client("tenant_admin").get(assistant_url(tenant_a))

    assert response.status_code == 200
    assert response.json() == {
        "system_prompt": "",
        "history_token_budget": 1500,
        "handoff_when_no_knowledge": False,
        "providers": [],
    }


def test_tenant_admin_replaces_the_settings_and_never_sees_the_key(tenant_a):
    response = assistant_put(tenant_a.client("tenant_admin"), tenant_a, assistant_body())

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["system_prompt"] == "You are Acme's assistant."
    assert answer["history_token_budget"] == 1200
    assert answer["handoff_when_no_knowledge"] is True
    assert answer["providers"][0] == {
        "kind": "openai",
        "model": "gpt-4o-mini",
        "base_url": "",
        "api_version": "",
        "temperature": 0.4,
        "max_tokens": 800,
        "timeout_seconds": 30.0,
        "enabled": True,
        "has_api_key": True,
    }
    assert answer["providers"][1]["kind"] == "offline" and answer["providers"][1]["has_api_key"] is False
    assert PROVIDER_SECRET not in response.content.decode()
    assert "api_key" not in answer["providers"][0]

    read = tenant_a.client("agent").get(assistant_url(tenant_a))
    assert read.status_code == 200
    assert read.json() == answer
    assert PROVIDER_SECRET not in read.content.decode()
    assert selectors.provider_chain(tenant=tenant_a.tenant)[0].spec.api_key == PROVIDER_SECRET


def test_a_put_without_the_key_keeps_it(tenant_a):
    client = tenant_a.client("tenant_admin")
    assistant_put(client, tenant_a, assistant_body())
    providers = [{"kind": "openai", "model": "gpt-4o"}]
    response = assistant_put(client, tenant_a, assistant_body(providers=providers))

    assert response.json()["providers"][0]["has_api_key"] is True
    cleared = assistant_put(client, tenant_a, assistant_body(providers=[{**providers[0], "api_key": ""}]))
    assert cleared.json()["providers"][0]["has_api_key"] is False


def test_agent_reads_but_cannot_update(tenant_a):
    assert tenant_a.client("agent").get(assistant_url(tenant_a)).status_code == 200
    assert_error(
        assistant_put(tenant_a.client("agent"), tenant_a, assistant_body()), 403, "permission_denied"
    )
    assert not ProviderConfig.objects.for_tenant(tenant_a.tenant).exists()


def test_end_user_can_neither_read_nor_update(tenant_a):
    assert_error(tenant_a.client("end_user").get(assistant_url(tenant_a)), 403, "permission_denied")
    assert_error(
        assistant_put(tenant_a.client("end_user"), tenant_a, assistant_body()), 403, "permission_denied"
    )


@pytest.mark.parametrize("role", ["tenant_admin", "agent", "end_user"])
def test_it_hides_tenant_a_from_every_user_of_tenant_b(tenant_a, tenant_b, role):
    client = tenant_b.client(role)
    assert_error(client.get(assistant_url(tenant_a)), 404, "not_found")
    assert_error(assistant_put(client, tenant_a, assistant_body()), 404, "not_found")
    assert not ProviderConfig.objects.for_tenant(tenant_a.tenant).exists()


def test_it_requires_authentication(tenant_a, anonymous):
    assert_error(anonymous.get(assistant_url(tenant_a)), 401)
    assert_error(assistant_put(anonymous, tenant_a, assistant_body()), 401)


def test_platform_admin_updates_any_tenant(tenant_a, platform_admin):
    response = assistant_put(client_for(platform_admin), tenant_a, assistant_body())
    assert response.status_code == 200, response.content
    assert ProviderConfig.objects.for_tenant(tenant_a.tenant).count() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"providers": []}, "providers"),
        ({"providers": [{"kind": "offline"}] * 6}, "providers"),
        ({"providers": [{"kind": "palm", "model": "x"}]}, "kind"),
        ({"providers": [{"kind": "openai"}]}, "model"),
        ({"providers": [{"kind": "anthropic", "model": "  "}]}, "model"),
        ({"providers": [{"kind": "openai_compatible", "model": "llama"}]}, "base_url"),
        ({"providers": [{"kind": "azure_openai", "model": "deployment"}]}, "base_url"),
        ({"providers": [{"kind": "openai_compatible", "model": "m", "base_url": "not a url"}]}, "base_url"),
        ({"providers": [{"kind": "openai", "model": "m", "temperature": 2.5}]}, "temperature"),
        ({"providers": [{"kind": "openai", "model": "m", "max_tokens": 0}]}, "max_tokens"),
        ({"providers": [{"kind": "openai", "model": "m", "max_tokens": 8193}]}, "max_tokens"),
        ({"history_token_budget": 32001}, "history_token_budget"),
        ({"history_token_budget": -1}, "history_token_budget"),
        ({"system_prompt": "x" * 8001}, "system_prompt"),
    ],
)
def test_invalid_settings_are_refused(tenant_a, change, field):
    error = assert_error(
        assistant_put(tenant_a.client("tenant_admin"), tenant_a, assistant_body(**change)),
        400,
        "validation_error",
    )

    assert field in json.dumps(error["details"])
    assert not ProviderConfig.objects.for_tenant(tenant_a.tenant).exists()


def test_a_new_base_url_needs_the_key_again(tenant_a):
    client = tenant_a.client("tenant_admin")
    provider = {"kind": "openai_compatible", "model": "llama", "base_url": "https://llm.example.com/v1"}
    assistant_put(client, tenant_a, assistant_body(providers=[{**provider, "api_key": PROVIDER_SECRET}]))

    moved = {**provider, "base_url": "https://elsewhere.example/v1"}
    error = assert_error(
        assistant_put(client, tenant_a, assistant_body(providers=[moved])), 400, "validation_error"
    )
    assert "api_key" in error["details"]["providers"]["0"]
    assert (
        assistant_put(
            client, tenant_a, assistant_body(providers=[{**moved, "api_key": "new-key"}])
        ).status_code
        == 200
    )


def test_the_key_appears_in_no_response_even_on_errors(tenant_a):
    client = tenant_a.client("tenant_admin")
    invalid = assistant_body(providers=[{"kind": "openai", "model": "", "api_key": PROVIDER_SECRET}])
    assert PROVIDER_SECRET not in assistant_put(client, tenant_a, invalid).content.decode()


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:6379/v1",  # the platform's own Redis
        "http://169.254.169.254/latest/",  # a cloud metadata service
        "http://10.0.0.7/v1",
        "http://[::1]:8000/v1",
        "http://localhost:11434/v1",
    ],
)
def test_internal_addresses_are_refused_unless_the_operator_allows_them(tenant_a, settings, base_url):
    settings.LLM_ALLOW_PRIVATE_BASE_URLS = False
    client = tenant_a.client("tenant_admin")
    provider = {"kind": "openai_compatible", "model": "llama", "base_url": base_url}

    error = assert_error(
        assistant_put(client, tenant_a, assistant_body(providers=[provider])), 400, "validation_error"
    )

    assert "internal address" in json.dumps(error["details"])
    assert not ProviderConfig.objects.for_tenant(tenant_a.tenant).exists()
    settings.LLM_ALLOW_PRIVATE_BASE_URLS = True
    assert assistant_put(client, tenant_a, assistant_body(providers=[provider])).status_code == 200


def test_a_public_address_is_accepted_with_private_ones_refused(tenant_a, settings):
    settings.LLM_ALLOW_PRIVATE_BASE_URLS = False
    provider = {"kind": "openai_compatible", "model": "llama", "base_url": "https://93.184.215.14/v1"}
    assert (
        assistant_put(
            tenant_a.client("tenant_admin"), tenant_a, assistant_body(providers=[provider])
        ).status_code
        == 200
    )
