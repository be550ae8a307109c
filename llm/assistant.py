"""A tenant's assistant settings, kept in `tenant.settings["assistant"]` like the retrieval
settings in `tenant.settings["retrieval"]`: the tenant's own instructions, how much history goes
into a prompt, and whether a question the knowledge base cannot answer goes to a human."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tenants.models import Tenant

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
        """The defaults, overridden by the tenant's `settings["assistant"]`; a value of the wrong
        type (a hand-edited setting) falls back to the default."""
        stored = (tenant.settings or {}).get(SETTINGS_KEY) or {}
        defaults = cls()
        values = {}
        for name in cls.__dataclass_fields__:
            value = stored.get(name)
            default = getattr(defaults, name)
            if isinstance(value, type(default)) and not (isinstance(value, bool) and type(default) is int):
                values[name] = value
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)
