"""Every read of the llm app; each takes the tenant."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import QuerySet, Sum
from django.utils import timezone

from llm.assistant import AssistantSettings
from llm.base import Provider
from llm.crypto import SecretUnreadable, decrypt_secret
from llm.models import ProviderConfig, UsageDay
from llm.providers import ProviderSpec, build_provider
from llm.providers.offline import OfflineProvider
from llm.providers.unavailable import UnavailableProvider
from tenants.models import Tenant

logger = logging.getLogger(__name__)

_COUNTERS = ("prompt_tokens", "completion_tokens", "messages", "requests")


def provider_config_list(*, tenant: Tenant, enabled_only: bool = False) -> QuerySet[ProviderConfig]:
    configs = ProviderConfig.objects.for_tenant(tenant).order_by("position")
    return configs.filter(enabled=True) if enabled_only else configs


def assistant_settings(*, tenant: Tenant) -> AssistantSettings:
    return AssistantSettings.for_tenant(tenant)


def provider_spec(*, config: ProviderConfig) -> ProviderSpec:
    """The config as a provider takes it, the API key decrypted (`SecretUnreadable` when no
    configured key opens it)."""
    return ProviderSpec(
        kind=config.kind,
        model=config.model,
        base_url=config.base_url,
        api_key=decrypt_secret(config.api_key_encrypted) if config.api_key_encrypted else "",
        api_version=config.api_version
        or (settings.AZURE_OPENAI_API_VERSION if config.kind == "azure_openai" else ""),
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        timeout_seconds=config.timeout_seconds,
        max_retries=settings.LLM_MAX_RETRIES,
    )


def provider_chain(*, tenant: Tenant) -> list[Provider]:
    """The tenant's enabled providers in position order, keys decrypted; the offline provider
    when none is configured (the platform's default). An entry whose key no longer decrypts stays
    in the chain as a provider that fails at once, so the next one answers and the logs say why."""
    providers: list[Provider] = []
    for config in provider_config_list(tenant=tenant, enabled_only=True):
        try:
            spec = provider_spec(config=config)
        except SecretUnreadable as error:
            logger.error("Tenant %s provider #%s (%s): %s", tenant.pk, config.position, config.kind, error)
            providers.append(UnavailableProvider(name=config.kind, model=config.model, reason=str(error)))
            continue
        providers.append(build_provider(spec))
    return providers or [OfflineProvider()]


def usage_month_tokens(*, tenant: Tenant, today: dt.date | None = None) -> int:
    """Prompt and completion tokens the tenant used in the calendar month of `today` (the
    platform's local date by default), for the plan's monthly quota."""
    today = today or timezone.localdate()
    totals = (
        UsageDay.objects.for_tenant(tenant)
        .filter(day__gte=today.replace(day=1), day__lte=today)
        .aggregate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
    )
    return (totals["prompt"] or 0) + (totals["completion"] or 0)


def usage_days(*, tenant: Tenant, start: dt.date, end: dt.date) -> list[dict]:
    """One dict per day from `start` to `end` inclusive, oldest first, with zeros for days without
    usage: `{day, prompt_tokens, completion_tokens, total_tokens, messages, requests}`."""
    if end < start:
        return []
    rows = {
        row["day"]: row
        for row in UsageDay.objects.for_tenant(tenant)
        .filter(day__gte=start, day__lte=end)
        .values("day", *_COUNTERS)
    }
    series = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        row = rows.get(day) or dict.fromkeys(_COUNTERS, 0)
        counters = {name: row[name] for name in _COUNTERS}
        series.append(
            {
                "day": day,
                **counters,
                "total_tokens": counters["prompt_tokens"] + counters["completion_tokens"],
            }
        )
    return series
