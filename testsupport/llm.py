"""The assistant in tests: a sample request, specs that point a provider at the wire server, a
provider's stream run to its end, a tenant's provider chosen, and the assistant API's body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from llm.base import Delta, LLMRequest, Message, Reference, Usage
from llm.providers import ProviderSpec
from llm.services import assistant_update
from testsupport.wire_server import WireServer

QUESTION = "What is the return policy for laptops bought online?"
REQUEST = LLMRequest(
    system="You are a helpful assistant.",
    messages=[Message("user", QUESTION)],
    references=[Reference(1, "Returns", "Laptops may be returned within 14 days.")],
    question=QUESTION,
)


def spec_for(server: WireServer, kind: str, model: str = "gpt-test", **overrides) -> ProviderSpec:
    """A spec for `kind` on the wire server, with small timeouts and one retry."""
    base_url = server.root_url if kind in ("azure_openai", "anthropic") else server.base_url
    values = {
        "kind": kind,
        "model": model,
        "base_url": base_url,
        "api_key": server.api_key or "",
        "timeout_seconds": 2.0,
        "max_retries": 1,
        **overrides,
    }
    return ProviderSpec(**values)


async def _drain(stream: AsyncIterator) -> list:
    return [event async for event in stream]


def collect(stream: AsyncIterator) -> list:
    """Every event of an async stream, on a fresh event loop."""
    return asyncio.run(_drain(stream))


def text_of(events: list) -> str:
    return "".join(event.text for event in events if isinstance(event, Delta))


def usage_of(events: list) -> Usage:
    assert isinstance(events[-1], Usage), events[-1]
    assert sum(isinstance(event, Usage) for event in events) == 1
    return events[-1]


def use_provider(people, server: WireServer, model: str, kind: str = "openai") -> None:
    """Make the local wire server's `model` the tenant's only provider (no fallback)."""
    provider = {"kind": kind, "model": model, "base_url": server.base_url}
    if server.api_key:
        provider["api_key"] = server.api_key
    assistant_update(tenant=people.tenant, data={"providers": [provider]})


# --- The assistant API: GET and PUT /v1/tenants/{tenant_id}/assistant ---------------------------

PROVIDER_SECRET = "sk-live-verysecret-0123456789"


def assistant_url(people) -> str:
    return f"/v1/tenants/{people.tenant.pk}/assistant"


def assistant_body(**overrides) -> dict:
    """A valid body of the assistant API: OpenAI (with a key) falling back to offline."""
    return {
        "system_prompt": "You are Acme's assistant.",
        "history_token_budget": 1200,
        "handoff_when_no_knowledge": True,
        "providers": [
            {"kind": "openai", "model": "gpt-4o-mini", "api_key": PROVIDER_SECRET, "temperature": 0.4},
            {"kind": "offline"},
        ],
        **overrides,
    }


def assistant_put(client, people, data):
    return client.put(assistant_url(people), data, format="json")
