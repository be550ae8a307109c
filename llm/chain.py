"""A tenant's providers tried in order: the fallback chain.

A provider that fails before its first delta hands over to the next one (the caller sees a
`Fallback` event, to log or show). Once a provider has sent text it owns the answer: an error
after that is raised as it is, because text already sent cannot be unsent, and answering the
rest from another model would splice two answers into one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from llm.base import Delta, LLMRequest, Provider, ProviderError, Usage
from tenants import metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fallback:
    """`from_provider` failed before answering; `to_provider` answers instead. Providers are
    named `kind:model` (`openai:gpt-4o-mini`, `offline:extractive`)."""

    from_provider: str
    to_provider: str
    error: str


class AllProvidersFailed(ProviderError):
    """Every provider of the chain failed before answering. The message is safe to show to an end
    user; `errors` holds each provider's error (for logs and tenant admins)."""

    def __init__(self, errors: list[ProviderError]) -> None:
        super().__init__(
            "The assistant cannot answer right now: no language model is available. Please try again shortly.",
            provider="chain",
            retryable=any(error.retryable for error in errors),
            status=503,
        )
        self.errors = errors


def provider_label(provider: Provider) -> str:
    return f"{provider.name}:{provider.model}" if provider.model else provider.name


async def stream_with_fallback(
    providers: list[Provider], request: LLMRequest
) -> AsyncIterator[Delta | Usage | Fallback]:
    """The first provider's answer that starts, as deltas then usage, with a `Fallback` event for
    each provider that failed before it. Raises `AllProvidersFailed` when none could start, and a
    provider's own `ProviderError` when it fails after it began."""
    if not providers:
        raise ValueError("stream_with_fallback() needs at least one provider")
    errors: list[ProviderError] = []
    for index, provider in enumerate(providers):
        label = provider_label(provider)
        started = False
        called = time.perf_counter()
        outcome = "closed"
        try:
            # aclosing: when our consumer stops early, the provider's stream (and its HTTP
            # response) closes at once rather than whenever the generator is collected.
            async with aclosing(provider.stream(request)) as events:
                async for event in events:
                    if isinstance(event, Delta):
                        started = True
                    yield event
            outcome = "ok"
            return
        except ProviderError as error:
            outcome = "error_mid_answer" if started else "error_before_answer"
            if started:
                logger.warning("LLM provider %s failed mid-answer: %s", label, error)
                raise
            errors.append(error)
            following = providers[index + 1] if index + 1 < len(providers) else None
            logger.warning(
                "LLM provider %s failed before answering (%s, status %s): %s%s",
                label,
                "retryable" if error.retryable else "not retryable",
                error.status,
                error,
                f"; falling back to {provider_label(following)}" if following else "; no provider left",
            )
            if following is not None:
                yield Fallback(from_provider=label, to_provider=provider_label(following), error=str(error))
        finally:
            # The provider's kind only: models and base URLs are the tenants' free text.
            metrics.provider_call_observe(
                provider=provider.name or "unknown", seconds=time.perf_counter() - called, outcome=outcome
            )
    raise AllProvidersFailed(errors)
