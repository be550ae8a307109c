"""Anthropic's Messages API through the `anthropic` library, streamed.

Temperature is not sent: the Messages API of this client version (anthropic 2.x) no longer
takes sampling parameters, and an unknown field would be refused.

Retries, as for OpenAI: the client's own `max_retries` (timeouts, connection errors, 408, 409,
429, 5xx, with exponential backoff honouring `Retry-After`) inside `create()`, before the first
delta; an error once the stream has started ends the answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx2

from llm.base import Delta, LLMRequest, Message, Provider, ProviderError, StreamEvent, Usage
from llm.outbound import refused_address_in
from llm.providers._common import (
    MALFORMED,
    connection_error,
    estimated_usage,
    guarded_http_client,
    malformed_error,
    missing_key_error,
    redact,
    refused_address_error,
    status_error,
    timeout_error,
    transport_error,
    truncated_error,
)
from llm.providers.spec import ProviderSpec

LABEL = "Anthropic"


def anthropic_messages(messages: list[Message]) -> tuple[list[str], list[dict]]:
    """(extra system texts, messages) as Anthropic takes them: system turns move to the system
    prompt, empty turns go, consecutive turns of one role merge, and the first turn is the user's
    (the API refuses anything else)."""
    system: list[str] = []
    turns: list[dict] = []
    for message in messages:
        content = message.content.strip()
        if not content:
            continue
        if message.role == "system":
            system.append(content)
        elif not turns and message.role == "assistant":
            continue  # a window that starts with the bot's turn: its question fell off the budget
        elif turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += "\n\n" + content
        else:
            turns.append({"role": message.role, "content": content})
    return system, turns


class AnthropicMessagesProvider(Provider):
    name = "anthropic"

    def __init__(self, spec: ProviderSpec) -> None:
        self.spec = spec
        self.model = spec.model

    def _client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=self.spec.api_key,
            base_url=self.spec.base_url or None,
            timeout=self.spec.timeout_seconds,
            max_retries=self.spec.max_retries,
            http_client=guarded_http_client(anthropic.DefaultAsyncHttpxClient),
        )

    def _parameters(self, request: LLMRequest) -> dict:
        spec = self.spec
        extra_system, messages = anthropic_messages(request.messages)
        system = "\n\n".join(text for text in [request.system, *extra_system] if text)
        parameters = {
            "model": spec.model,
            "messages": messages,
            "max_tokens": spec.max_tokens if spec.max_tokens is not None else request.max_tokens,
            "stream": True,
        }
        if system:
            parameters["system"] = system
        return parameters

    def _error(self, error: Exception) -> ProviderError:
        common = {"provider": self.name, "label": LABEL}
        refused = refused_address_in(error)
        if refused is not None:
            return refused_address_error(refused, **common)
        if isinstance(error, anthropic.APITimeoutError):
            return timeout_error(**common, seconds=self.spec.timeout_seconds)
        if isinstance(error, anthropic.APIConnectionError):
            return connection_error(**common)
        if isinstance(error, anthropic.APIStatusError):
            if error.status_code < 300:
                # An `error` event inside a stream that began with 200 (overloaded_error, api_error).
                return ProviderError(
                    f"{LABEL} reported an error inside the stream: {redact(error.message, secret=self.spec.api_key)}",
                    provider=self.name,
                    retryable=True,
                )
            return status_error(
                **common, status=error.status_code, detail=error.message, secret=self.spec.api_key
            )
        if isinstance(error, anthropic.APIResponseValidationError):
            return malformed_error(**common)
        if isinstance(error, httpx2.HTTPError):
            return transport_error(error, **common, seconds=self.spec.timeout_seconds)
        if isinstance(error, anthropic.AnthropicError):
            message = f"{LABEL} failed: {redact(str(error), secret=self.spec.api_key)}"
            return ProviderError(message, provider=self.name, retryable=True)
        return malformed_error(**common)

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        if not self.spec.api_key:
            raise missing_key_error(provider=self.name, label=LABEL)
        parts: list[str] = []
        input_tokens: int | None = None
        output_tokens: int | None = None
        stopped = False
        # `async with` on the client and on the stream: whether the answer completes, fails, or
        # its consumer stops (aclose, cancellation), the HTTP response and connection close here.
        async with self._client() as client:
            try:
                stream = await client.messages.create(**self._parameters(request))
            except (anthropic.AnthropicError, httpx2.HTTPError) as error:
                raise self._error(error) from error
            async with stream:
                events = aiter(stream)
                while True:
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        break
                    except (anthropic.AnthropicError, httpx2.HTTPError, *MALFORMED) as error:
                        raise self._error(error) from error
                    if event.type == "message_start":
                        usage = event.message.usage
                        input_tokens = (
                            (usage.input_tokens or 0)
                            + (usage.cache_creation_input_tokens or 0)
                            + (usage.cache_read_input_tokens or 0)
                        )
                        output_tokens = usage.output_tokens
                    elif event.type == "content_block_delta":
                        if event.delta.type == "text_delta" and event.delta.text:
                            parts.append(event.delta.text)
                            yield Delta(event.delta.text)
                    elif event.type == "message_delta":
                        # Cumulative counts: the last message_delta has the totals.
                        if event.usage.output_tokens is not None:
                            output_tokens = event.usage.output_tokens
                        if input_tokens is None and getattr(event.usage, "input_tokens", None):
                            input_tokens = event.usage.input_tokens
                    elif event.type == "message_stop":
                        stopped = True
        if not stopped:
            raise truncated_error(provider=self.name, label=LABEL)
        if input_tokens is None or output_tokens is None:
            yield estimated_usage(request, "".join(parts), provider=self.name, model=self.model)
        else:
            yield Usage(
                prompt_tokens=input_tokens,
                completion_tokens=output_tokens,
                provider=self.name,
                model=self.model,
            )
