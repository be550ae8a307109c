"""The one provider interface: stream a reply as text deltas, then its usage.

`llm` knows nothing of chunks or conversations. The caller hands a provider an `LLMRequest`
(system prompt, message window, the numbered reference passages and the question) and reads
`Delta`s until the last event, which is always one `Usage`. Every provider is async, so that one
server process can hold hundreds of streams open without a thread per stream; `complete()` is the
non-streaming call built on the same stream.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Reference:
    """A retrieved passage the answer may cite as [number]. Reference data, never instructions."""

    number: int
    title: str
    text: str


@dataclass(frozen=True)
class LLMRequest:
    # The whole system prompt: the tenant's prompt and the platform's grounding rules.
    system: str
    # The conversation window, oldest first, ending with the user turn that carries the
    # reference block and the question.
    messages: list[Message]
    # The same passages, structured, for providers that work on them directly (offline).
    references: list[Reference] = field(default_factory=list)
    question: str = ""
    # "zh-Hant" or "en": the language the answer should be in.
    language: str = "en"
    temperature: float = 0.2
    max_tokens: int = 800


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    provider: str
    model: str

    def as_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "provider": self.provider,
            "model": self.model,
        }


StreamEvent = Delta | Usage


class ProviderError(Exception):
    """A provider failed. `retryable` says whether another provider (or a later try) may help:
    timeouts, 429, 5xx and broken streams are; a refused key or a bad request are not."""

    def __init__(self, message: str, *, provider: str, retryable: bool = True, status: int | None = None):
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable
        self.status = status


class Provider(ABC):
    #: The provider kind: offline, openai, azure_openai, anthropic, openai_compatible.
    name: str = ""
    model: str = ""

    @abstractmethod
    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        """Yield `Delta`s, then exactly one `Usage`. Raise `ProviderError` on failure."""

    async def complete(self, request: LLMRequest) -> tuple[str, Usage]:
        parts: list[str] = []
        usage: Usage | None = None
        async for event in self.stream(request):
            if isinstance(event, Delta):
                parts.append(event.text)
            else:
                usage = event
        if usage is None:
            raise ProviderError("The provider's stream ended without usage.", provider=self.name)
        return "".join(parts), usage
