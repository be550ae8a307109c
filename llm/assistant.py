"""A tenant's assistant settings, kept in `tenant.settings["assistant"]` like the retrieval
settings in `tenant.settings["retrieval"]`: the tenant's own instructions, how much history goes
into a prompt, and whether a question the knowledge base cannot answer goes to a human."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rest_framework import serializers

from tenants.models import Tenant
from tenants.tenant_settings import tenant_settings_section

SETTINGS_KEY = "assistant"
MAX_SYSTEM_PROMPT_CHARACTERS = 8000
MAX_HISTORY_TOKEN_BUDGET = 32000


@dataclass(frozen=True)
class AssistantSettings:
    # The tenant's instructions; empty: the platform's default customer-service prompt.
    system_prompt: str = ""
    # Tokens (by llm.tokens.estimate_tokens) of earlier turns sent with each question.
    history_token_budget: int = 1500
    handoff_when_no_knowledge: bool = False

    @classmethod
    def for_tenant(cls, tenant: Tenant) -> AssistantSettings:
        """The defaults, overridden by the tenant's `settings["assistant"]` where its values pass
        `AssistantSettingsSchema`; a value it refuses (a wrong type, out of range, stored before
        the schema existed) falls back to the default."""
        return cls(**tenant_settings_section(tenant.settings, SETTINGS_KEY))

    def as_dict(self) -> dict:
        return asdict(self)


class AssistantSettingsSchema(serializers.Serializer):
    """`settings["assistant"]`: every key optional (the defaults above), each typed and bounded.
    The tenant API validates the section with it, and the assistant API and dashboard page
    (`llm.api.AssistantInput`) extend it."""

    system_prompt = serializers.CharField(
        max_length=MAX_SYSTEM_PROMPT_CHARACTERS,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The tenant's instructions; empty for the platform's default. Grounding rules are always added.",
    )
    history_token_budget = serializers.IntegerField(
        min_value=0, max_value=MAX_HISTORY_TOKEN_BUDGET, required=False
    )
    handoff_when_no_knowledge = serializers.BooleanField(required=False)
