"""The front of llm for a channel that answers a question: what the chat service of any channel
(the member API, the website widget, LINE) calls, in two steps.

    answer = answer_prepare(tenant=..., question=..., references=..., history=..., language=...)
    async for event in answer_stream(answer):  # Delta ... then one Usage
        ...

`answer_prepare` (sync: it reads the database) takes the tenant's assistant settings, builds the
grounded prompt and loads the provider chain. `answer_stream` streams the first provider of the
chain that answers and records the tenant's usage once, however the stream ends: answered,
failed (`AllProvidersFailed` before any text, a provider's `ProviderError` after some), or closed
early by its consumer after text was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from llm.assistant import AssistantSettings
from llm.base import Delta, LLMRequest, Provider, ProviderError, Reference, Usage
from llm.base import Message as PromptMessage
from llm.chain import AllProvidersFailed, stream_with_fallback
from llm.prompts import build_request
from llm.selectors import provider_chain
from llm.services import usage_record
from tenants import blocking, metrics
from tenants.models import Tenant

__all__ = [
    "AllProvidersFailed",
    "Delta",
    "PreparedAnswer",
    "PromptMessage",
    "ProviderError",
    "Reference",
    "Usage",
    "answer_prepare",
    "answer_stream",
]

ANSWER_TEMPERATURE = 0.2
ANSWER_MAX_TOKENS = 800


@dataclass(frozen=True)
class PreparedAnswer:
    tenant: Tenant
    assistant: AssistantSettings
    request: LLMRequest
    providers: list[Provider]


def answer_prepare(
    *,
    tenant: Tenant,
    question: str,
    references: list[Reference],
    history: list[PromptMessage],
    language: str,
) -> PreparedAnswer:
    assistant = AssistantSettings.for_tenant(tenant)
    request = build_request(
        system_prompt=assistant.system_prompt,
        references=references,
        history=history,
        question=question,
        language=language,
        history_token_budget=assistant.history_token_budget,
        temperature=ANSWER_TEMPERATURE,
        max_tokens=ANSWER_MAX_TOKENS,
    )
    return PreparedAnswer(
        tenant=tenant, assistant=assistant, request=request, providers=provider_chain(tenant=tenant)
    )


async def answer_stream(answer: PreparedAnswer) -> AsyncIterator[Delta | Usage]:
    """The answer as deltas, then its usage (fallbacks between providers are logged by the
    chain, not yielded). Raises `AllProvidersFailed` when no provider could start and a
    provider's `ProviderError` when it broke off after starting."""
    usage: Usage | None = None
    answered = False
    ended = False
    try:
        async with aclosing(stream_with_fallback(answer.providers, answer.request)) as stream:
            async for event in stream:
                if isinstance(event, Delta):
                    answered = True
                elif isinstance(event, Usage):
                    usage = event
                else:
                    continue
                yield event
        ended = True
    except ProviderError:
        ended = True
        raise
    finally:
        # A consumer that went away before any text was sent asked for nothing worth counting.
        if ended or answered:
            if usage is not None:
                metrics.tokens_observe(
                    tenant_id=answer.tenant.pk,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                )
            await asyncio.shield(blocking.run(usage_record)(tenant=answer.tenant, usage=usage))
