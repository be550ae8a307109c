"""Small helpers for the llm tests: run a provider's stream to the end, and specs that point a
provider at the wire server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from llm.base import Delta, LLMRequest, Message, Reference, Usage
from llm.providers import ProviderSpec
from llm.tests.wire_server import LLMWireServer

QUESTION = "What is the return policy for laptops bought online?"
REQUEST = LLMRequest(
    system="You are a helpful assistant.",
    messages=[Message("user", QUESTION)],
    references=[Reference(1, "Returns", "Laptops may be returned within 14 days.")],
    question=QUESTION,
)


def spec_for(server: LLMWireServer, kind: str, model: str = "gpt-test", **overrides) -> ProviderSpec:
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
