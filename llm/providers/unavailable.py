"""A chain entry that cannot work (its stored API key no longer decrypts): it fails at once, so
the chain moves on to the next provider and the reason is logged, instead of the whole chain
failing to build."""

from collections.abc import AsyncIterator

from llm.base import LLMRequest, Provider, ProviderError, StreamEvent


class UnavailableProvider(Provider):
    def __init__(self, *, name: str, model: str, reason: str) -> None:
        self.name = name
        self.model = model
        self.reason = reason

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        raise ProviderError(self.reason, provider=self.name, retryable=False)
        yield  # pragma: no cover - makes this an async generator like every other provider
