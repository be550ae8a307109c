"""OpenAI, Azure OpenAI and OpenAI-compatible servers (vLLM, Ollama, LiteLLM) through the
`openai` library's chat completions, streamed.

Retries: the client's own `max_retries` (timeouts, connection errors, 408, 409, 429, 5xx, with
exponential backoff honouring `Retry-After`) run inside `create()`, that is before the first
delta. An error once the stream has started is not retried here: text already sent cannot be
unsent, so it ends the answer (`llm.chain` decides what the caller sees).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2
import openai

from llm.base import Delta, LLMRequest, Provider, ProviderError, StreamEvent, Usage
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
from llm.providers.spec import NEEDS_API_KEY, ProviderSpec

_LABELS = {
    "openai": "OpenAI",
    "azure_openai": "Azure OpenAI",
    "openai_compatible": "The OpenAI-compatible server",
}
# An OpenAI-compatible server may need no key, but the client insists on one.
PLACEHOLDER_API_KEY = "no-key"  # noqa: S105 - not a secret
# A generally available Azure OpenAI API version, for a spec that names none.
DEFAULT_AZURE_API_VERSION = "2024-10-21"


class OpenAIChatProvider(Provider):
    def __init__(self, spec: ProviderSpec) -> None:
        if spec.kind not in _LABELS:
            raise ValueError(f"OpenAIChatProvider does not serve {spec.kind!r}")
        self.spec = spec
        self.name = spec.kind
        self.model = spec.model
        self.label = _LABELS[spec.kind]

    def _client(self) -> openai.AsyncOpenAI:
        spec = self.spec
        common = {
            "timeout": spec.timeout_seconds,
            "max_retries": spec.max_retries,
            "http_client": guarded_http_client(openai.DefaultAsyncHttpxClient),
        }
        if spec.kind == "azure_openai":
            # The model names the deployment: …/openai/deployments/{model}/chat/completions.
            return openai.AsyncAzureOpenAI(
                api_key=spec.api_key,
                azure_endpoint=spec.base_url,
                api_version=spec.api_version or DEFAULT_AZURE_API_VERSION,
                **common,
            )
        return openai.AsyncOpenAI(
            api_key=spec.api_key or PLACEHOLDER_API_KEY, base_url=spec.base_url or None, **common
        )

    def _parameters(self, request: LLMRequest) -> dict:
        spec = self.spec
        max_tokens = spec.max_tokens if spec.max_tokens is not None else request.max_tokens
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": message.role, "content": message.content} for message in request.messages]
        parameters = {
            "model": spec.model,
            "messages": messages,
            "temperature": spec.temperature if spec.temperature is not None else request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        # OpenAI's current models take max_completion_tokens (its reasoning models refuse
        # max_tokens); Azure deployments and compatible servers understand max_tokens.
        parameters["max_completion_tokens" if spec.kind == "openai" else "max_tokens"] = max_tokens
        return parameters

    def _error(self, error: Exception) -> ProviderError:
        common = {"provider": self.name, "label": self.label}
        refused = refused_address_in(error)
        if refused is not None:
            return refused_address_error(refused, **common)
        if isinstance(error, openai.APITimeoutError):
            return timeout_error(**common, seconds=self.spec.timeout_seconds)
        if isinstance(error, openai.APIConnectionError):
            return connection_error(**common)
        if isinstance(error, openai.APIStatusError):
            return status_error(
                **common, status=error.status_code, detail=error.message, secret=self.spec.api_key
            )
        if isinstance(error, openai.APIResponseValidationError):
            return malformed_error(**common)
        if isinstance(error, httpx2.HTTPError):
            return transport_error(error, **common, seconds=self.spec.timeout_seconds)
        if isinstance(error, openai.OpenAIError):
            message = f"{self.label} failed: {redact(str(error), secret=self.spec.api_key)}"
            return ProviderError(message, provider=self.name, retryable=True)
        return malformed_error(**common)

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        if self.spec.kind in NEEDS_API_KEY and not self.spec.api_key:
            raise missing_key_error(provider=self.name, label=self.label)
        parts: list[str] = []
        usage: Usage | None = None
        finished = False
        # `async with` on the client and on the stream: whether the answer completes, fails, or
        # its consumer stops (aclose, cancellation), the HTTP response and connection close here.
        async with self._client() as client:
            try:
                # The raw event stream: the client still makes the request (auth, retries, status
                # errors), but the chunks are read as JSON lines rather than built into models,
                # which cost most of a server's CPU time at a few thousand tokens a second.
                response = client.chat.completions.with_streaming_response.create(**self._parameters(request))
                opened = await response.__aenter__()
            except (openai.OpenAIError, httpx2.HTTPError) as error:
                raise self._error(error) from error
            try:
                lines = aiter(opened.iter_lines())
                while True:
                    try:
                        line = await anext(lines)
                    except StopAsyncIteration:
                        break
                    except (openai.OpenAIError, httpx2.HTTPError) as error:
                        raise self._error(error) from error
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, `event:` lines
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        finished = True
                        break
                    try:
                        chunk = json.loads(payload)
                        if chunk.get("error"):
                            raise ProviderError(
                                f"{self.label} failed mid-answer: "
                                f"{redact(str(chunk['error'].get('message', '')), secret=self.spec.api_key)}",
                                provider=self.name,
                            )
                        if chunk.get("usage"):
                            usage = Usage(
                                prompt_tokens=chunk["usage"].get("prompt_tokens") or 0,
                                completion_tokens=chunk["usage"].get("completion_tokens") or 0,
                                provider=self.name,
                                model=self.model,
                            )
                        for choice in (chunk.get("choices") or [])[:1]:
                            if choice.get("finish_reason"):
                                finished = True
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                parts.append(text)
                                yield Delta(text)
                    except MALFORMED as error:
                        raise malformed_error(provider=self.name, label=self.label) from error
            finally:
                await response.__aexit__(None, None, None)
        if not finished and usage is None:
            # A stream that stops without a finish reason or usage was cut (some servers close the
            # connection cleanly mid-answer, so no transport error says so).
            raise truncated_error(provider=self.name, label=self.label)
        yield usage or estimated_usage(request, "".join(parts), provider=self.name, model=self.model)
