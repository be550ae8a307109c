"""Every write of the llm app: a tenant's assistant settings and provider chain, and usage."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from llm.assistant import SETTINGS_KEY, AssistantSettings
from llm.base import Usage
from llm.crypto import encrypt_secret
from llm.models import ProviderConfig, UsageDay
from llm.selectors import provider_chain, provider_config_list, usage_month_tokens
from tenants.audit import audit_record
from tenants.errors import APIError
from tenants.models import Tenant

# The chat service reaches these reads through services too.
__all__ = ["assistant_update", "provider_chain", "usage_month_tokens", "usage_record"]

# A chain entry's settings, as the API, the dashboard and the Django admin edit them.
PROVIDER_FIELDS = (
    "kind",
    "model",
    "base_url",
    "api_version",
    "temperature",
    "max_tokens",
    "timeout_seconds",
    "enabled",
)


def _same_server(first: str, second: str) -> bool:
    return first.strip().rstrip("/").lower() == second.strip().rstrip("/").lower()


def _encrypted_key(entry: dict, previous: ProviderConfig | None) -> str:
    """The encrypted key an entry ends with. A given key replaces the stored one, "" clears it,
    and an omitted (or null) key keeps the stored key of the entry at the same position when it
    is the same kind of provider and the same server: a stored key is never sent to a server it
    was not entered for, since whoever changes the URL could otherwise read the key there."""
    key = entry.get("api_key")
    if key is not None:
        return encrypt_secret(key.strip()) if key.strip() else ""
    if previous is None or previous.kind != entry["kind"] or not previous.api_key_encrypted:
        return ""
    if not _same_server(previous.base_url, entry.get("base_url", "")):
        raise ValueError(
            "Re-enter the API key when changing the base URL: a stored key is only sent to the server it was entered for."
        )
    return previous.api_key_encrypted


@transaction.atomic
def assistant_update(*, tenant: Tenant, data: dict) -> tuple[AssistantSettings, list[ProviderConfig]]:
    """Replace the tenant's assistant settings and provider chain in one step.

    `data`: `system_prompt`, `history_token_budget`, `handoff_when_no_knowledge` (defaults when
    omitted) and `providers`, a list in chain order of dicts with the `ProviderConfig` fields and
    an optional plain `api_key` (see `_encrypted_key` for omitted and empty keys).
    """
    # One update at a time per tenant (a row lock where the database has them).
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    previous = {config.position: config for config in provider_config_list(tenant=locked)}

    configs: list[ProviderConfig] = []
    key_errors: dict[str, dict] = {}
    for position, entry in enumerate(data["providers"]):
        try:
            encrypted = _encrypted_key(entry, previous.get(position))
        except ValueError as error:
            key_errors[str(position)] = {"api_key": [str(error)]}
            continue
        defaults = {name: entry[name] for name in PROVIDER_FIELDS if entry.get(name) is not None}
        configs.append(
            ProviderConfig(tenant=locked, position=position, api_key_encrypted=encrypted, **defaults)
        )
    if key_errors:
        raise APIError(
            "The request is invalid; see details.",
            code="validation_error",
            details={"providers": key_errors},
        )

    defaults = AssistantSettings()
    assistant = AssistantSettings(
        system_prompt=data.get("system_prompt", defaults.system_prompt),
        history_token_budget=data.get("history_token_budget", defaults.history_token_budget),
        handoff_when_no_knowledge=data.get("handoff_when_no_knowledge", defaults.handoff_when_no_knowledge),
    )
    ProviderConfig.objects.for_tenant(locked).delete()
    ProviderConfig.objects.bulk_create(configs)
    locked.settings = {**(locked.settings or {}), SETTINGS_KEY: assistant.as_dict()}
    locked.save(update_fields=["settings", "updated_at"])
    tenant.settings = locked.settings  # the caller's instance sees the change too
    audit_record(
        tenant=locked,
        action="assistant.update",
        details={
            # What the chain is now; keys never (only whether one is stored).
            "providers": [
                {"kind": c.kind, "model": c.model, "has_api_key": bool(c.api_key_encrypted)} for c in configs
            ],
            "system_prompt_characters": len(assistant.system_prompt),
            "handoff_when_no_knowledge": assistant.handoff_when_no_knowledge,
        },
    )
    return assistant, list(provider_config_list(tenant=locked))


def usage_record(
    *, tenant: Tenant, usage: Usage | None, requests: int = 1, day: dt.date | None = None
) -> None:
    """Add one chat request's usage to the tenant's day: `requests` chat requests and, when the
    bot answered (`usage` given), one message and its tokens. An atomic upsert: concurrent
    answers add up, none is lost."""
    day = day or timezone.localdate()
    changes = {"requests": F("requests") + requests}
    if usage is not None:
        changes.update(
            prompt_tokens=F("prompt_tokens") + max(usage.prompt_tokens, 0),
            completion_tokens=F("completion_tokens") + max(usage.completion_tokens, 0),
            messages=F("messages") + 1,
        )
    with transaction.atomic():
        row, _created = UsageDay.objects.for_tenant(tenant).get_or_create(tenant=tenant, day=day)
        UsageDay.objects.for_tenant(tenant).filter(pk=row.pk).update(**changes)
