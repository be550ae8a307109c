"""Assistant settings and the provider chain (keys encrypted at rest), and usage accounting."""

import datetime as dt

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from llm import selectors, services
from llm.assistant import AssistantSettings
from llm.base import Usage
from llm.chain import Fallback, stream_with_fallback
from llm.models import ProviderConfig, UsageDay
from llm.providers.offline import OfflineProvider
from llm.providers.openai_chat import OpenAIChatProvider
from llm.providers.unavailable import UnavailableProvider
from tenants.errors import APIError
from testsupport.llm import REQUEST, collect, text_of

pytestmark = pytest.mark.django_db

SECRET = "sk-live-verysecret-0123456789"


def entry(kind="openai", model="gpt-4o-mini", **extra):
    return {"kind": kind, "model": model, "base_url": "", "api_version": "", **extra}


def update(tenant, providers, **settings):
    return services.assistant_update(tenant=tenant, data={**settings, "providers": providers})


def test_assistant_update_stores_settings_and_the_chain(tenant_a):
    tenant = tenant_a.tenant
    assistant, configs = update(
        tenant,
        [entry(api_key=SECRET, temperature=0.5), entry("offline", "")],
        system_prompt="Be brief.",
        history_token_budget=900,
        handoff_when_no_knowledge=True,
    )

    assert assistant == AssistantSettings("Be brief.", 900, True)
    tenant.refresh_from_db()
    assert AssistantSettings.for_tenant(tenant) == assistant
    assert [(config.position, config.kind, config.has_api_key) for config in configs] == [
        (0, "openai", True),
        (1, "offline", False),
    ]
    assert configs[0].temperature == 0.5


def test_the_key_is_stored_encrypted_and_only_the_chain_decrypts_it(tenant_a):
    update(tenant_a.tenant, [entry(api_key=SECRET)])

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ProviderConfig._meta.db_table}")  # noqa: S608 - a fixed table name
        rows = cursor.fetchall()
    assert rows and all(SECRET not in str(value) for row in rows for value in row)

    [provider] = selectors.provider_chain(tenant=tenant_a.tenant)
    assert isinstance(provider, OpenAIChatProvider)
    assert provider.spec.api_key == SECRET


def test_an_omitted_key_keeps_the_stored_one_and_an_empty_key_clears_it(tenant_a):
    tenant = tenant_a.tenant
    update(tenant, [entry(api_key=SECRET), entry("anthropic", "claude", api_key="anthropic-key")])

    update(tenant, [entry(model="gpt-4o"), entry("anthropic", "claude", api_key="")])
    first, second = selectors.provider_chain(tenant=tenant)
    assert (first.spec.model, first.spec.api_key) == ("gpt-4o", SECRET)
    assert second.spec.api_key == ""

    # Another kind at the same position does not inherit the key.
    update(tenant, [entry("openai_compatible", "llama", base_url="http://vllm.internal/v1")])
    [compatible] = selectors.provider_chain(tenant=tenant)
    assert compatible.spec.api_key == ""


def test_a_stored_key_is_not_sent_to_a_new_server_without_reentering_it(tenant_a):
    tenant = tenant_a.tenant
    update(
        tenant, [entry("openai_compatible", "llama", base_url="https://llm.example.com/v1", api_key=SECRET)]
    )

    with pytest.raises(APIError) as refused:
        update(tenant, [entry("openai_compatible", "llama", base_url="https://attacker.example/v1")])
    assert "api_key" in refused.value.details["providers"]["0"]
    [kept] = selectors.provider_chain(tenant=tenant)
    assert kept.spec.base_url == "https://llm.example.com/v1"  # nothing changed

    update(tenant, [entry("openai_compatible", "llama", base_url="https://llm.example.com/v1/")])
    assert selectors.provider_chain(tenant=tenant)[0].spec.api_key == SECRET


def test_without_providers_the_chain_is_the_offline_provider(tenant_a):
    [provider] = selectors.provider_chain(tenant=tenant_a.tenant)
    assert isinstance(provider, OfflineProvider)


def test_disabled_providers_are_skipped(tenant_a):
    update(tenant_a.tenant, [entry(enabled=False, api_key=SECRET), entry("anthropic", "claude", api_key="k")])
    assert [provider.name for provider in selectors.provider_chain(tenant=tenant_a.tenant)] == ["anthropic"]


def test_a_key_that_no_longer_decrypts_fails_that_provider_only(tenant_a, settings):
    settings.LLM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    update(tenant_a.tenant, [entry(api_key=SECRET), entry("offline", "")])
    settings.LLM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    chain = selectors.provider_chain(tenant=tenant_a.tenant)
    assert [type(provider) for provider in chain] == [UnavailableProvider, OfflineProvider]
    events = collect(stream_with_fallback(chain, REQUEST))
    assert isinstance(events[0], Fallback) and "decrypt" in events[0].error
    assert text_of(events).startswith("Offline answer")


def test_the_chain_is_per_tenant(tenant_a, tenant_b):
    update(tenant_a.tenant, [entry(api_key=SECRET)])
    [provider] = selectors.provider_chain(tenant=tenant_b.tenant)
    assert isinstance(provider, OfflineProvider)
    assert selectors.provider_config_list(tenant=tenant_b.tenant).count() == 0


def test_azure_gets_the_default_api_version(tenant_a, settings):
    update(
        tenant_a.tenant,
        [entry("azure_openai", "deployment", base_url="https://x.openai.azure.com", api_key="k")],
    )
    [provider] = selectors.provider_chain(tenant=tenant_a.tenant)
    assert provider.spec.api_version == settings.AZURE_OPENAI_API_VERSION


def test_usage_record_upserts_one_row_per_tenant_and_day(tenant_a, tenant_b):
    day = dt.date(2026, 3, 14)
    services.usage_record(tenant=tenant_a.tenant, usage=Usage(100, 20, "openai", "m"), day=day)
    services.usage_record(tenant=tenant_a.tenant, usage=Usage(50, 5, "openai", "m"), day=day)
    services.usage_record(tenant=tenant_a.tenant, usage=None, day=day)  # a request with no answer
    services.usage_record(tenant=tenant_b.tenant, usage=Usage(7, 7, "offline", "extractive"), day=day)

    row = UsageDay.objects.for_tenant(tenant_a.tenant).get()
    assert (row.prompt_tokens, row.completion_tokens, row.messages, row.requests) == (150, 25, 2, 3)
    assert UsageDay.objects.for_tenant(tenant_b.tenant).get().total_tokens == 14


def test_month_tokens_sum_the_calendar_month_only(tenant_a):
    tenant = tenant_a.tenant
    for day, tokens in [(dt.date(2026, 2, 28), 1000), (dt.date(2026, 3, 1), 10), (dt.date(2026, 3, 20), 5)]:
        services.usage_record(tenant=tenant, usage=Usage(tokens, tokens, "openai", "m"), day=day)

    assert selectors.usage_month_tokens(tenant=tenant, today=dt.date(2026, 3, 25)) == 30
    assert services.usage_month_tokens(tenant=tenant, today=dt.date(2026, 2, 28)) == 2000


def test_usage_days_fills_the_days_without_usage(tenant_a):
    tenant = tenant_a.tenant
    services.usage_record(tenant=tenant, usage=Usage(3, 4, "openai", "m"), day=dt.date(2026, 3, 2))

    days = selectors.usage_days(tenant=tenant, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 3))
    assert [day["day"] for day in days] == [dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)]
    assert days[0]["total_tokens"] == 0
    assert days[1] == {
        "day": dt.date(2026, 3, 2),
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "messages": 1,
        "requests": 1,
        "total_tokens": 7,
    }
