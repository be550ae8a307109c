"""The one chat service behind REST, SSE and the WebSocket.

A turn has two halves. `turn_start()` (sync, before any response is sent) admits the request
against the plan's limits, opens or continues the conversation and saves the user's message, so
that every refusal is a plain HTTP status. `turn_answer()` (async) first looks for a curated
answer (knowledge.faq_services.faq_match): one that matches is given word for word, streamed in
pieces, saved with grounding "faq", with no provider call and no tokens. Otherwise it retrieves
from the tenant's knowledge, builds the grounded prompt, streams the reply from the tenant's provider chain and
saves it. It yields transport-neutral events:

    {"type": "token", "delta": "..."}
    {"type": "done", "conversation_id": ..., "message": {...} | None, "usage": {...} | None, ...}
    {"type": "error", "error": {"code": ..., "message": ..., "details": {...}}}

If the consumer goes away (a closed socket cancels the task, a closed SSE response closes the
generator), the provider stream is closed with it and what was generated is saved as
`interrupted`.
"""

import asyncio
import contextlib
import logging
import re
import time
from contextlib import aclosing
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from conversations import selectors, services
from conversations.limits import chat_admit
from conversations.models import Contact, Conversation, Message
from knowledge import faq_services, retrieval
from knowledge.embedding import EmbeddingError
from llm.answering import (
    AllProvidersFailed,
    Delta,
    PreparedAnswer,
    PromptMessage,
    ProviderError,
    Reference,
    Usage,
    answer_prepare,
    answer_stream,
)
from tenants import blocking, metrics
from tenants.errors import APIError, ServiceUnavailable, dependency_error, log_dependency_error
from tenants.models import Tenant

logger = logging.getLogger(__name__)

_CITATION_MARK = re.compile(r"\[(\d{1,2})\]")
_PROMPT_ROLES = {
    Message.Role.USER: "user",
    Message.Role.ASSISTANT: "assistant",
    Message.Role.AGENT: "assistant",
}


@dataclass
class Turn:
    tenant: Tenant
    conversation: Conversation
    user_message: Message
    question: str
    started: float = field(default_factory=time.perf_counter)

    @property
    def bot_silent(self) -> bool:
        """A human holds the conversation (or it waits for one): the bot does not answer."""
        return self.conversation.status == Conversation.Status.HANDOFF


def turn_start(
    *,
    tenant: Tenant,
    user=None,
    role: str | None = None,
    contact: Contact | None = None,
    text: str,
    conversation_id=None,
    channel: str,
) -> Turn:
    """Admit a question and save it: from a member (`user` with their `role`) or from a contact
    of a customer channel (`contact`: a widget visitor, a LINE user)."""
    started = time.perf_counter()
    text = text.strip()
    if not text:
        raise APIError("The message is empty.", code="validation_error", details={"message": ["Required."]})
    if (user is None) == (contact is None):
        raise ValueError("turn_start() takes a user or a contact")
    chat_admit(tenant=tenant, user_id=user.pk if user else None, contact_id=contact.pk if contact else None)
    # One transaction: a connection lost between the two writes leaves no empty conversation.
    with transaction.atomic():
        if contact is not None:
            conversation = services.conversation_open_for_contact(
                tenant=tenant,
                contact=contact,
                conversation_id=conversation_id,
                channel=channel,
                first_message=text,
            )
        else:
            conversation = services.conversation_open(
                tenant=tenant,
                user=user,
                role=role,
                conversation_id=conversation_id,
                channel=channel,
                first_message=text,
            )
        message = services.message_user_add(conversation=conversation, user=user, content=text)
    return Turn(
        tenant=tenant, conversation=conversation, user_message=message, question=text, started=started
    )


# Said before an answer given while the knowledge index cannot be reached.
_WITHOUT_KNOWLEDGE = {
    "zh-Hant": "（知識庫暫時無法使用，以下回答未參考貴公司的資料。）\n\n",
    "en": "(The knowledge base is unavailable right now; this answer does not draw on it.)\n\n",
}


def _language(text: str) -> str:
    return "zh-Hant" if retrieval.is_chinese(text) else "en"


def _relevant(result: retrieval.SearchResult) -> bool:
    """Whether a hit is about the question, on scales that do not depend on the corpus: how much
    of the query's keyword weight it covers, or how close its embedding is."""
    coverage = result.scores.get("keyword_coverage")
    similarity = result.scores.get("vector")
    return (coverage is not None and coverage >= settings.CHAT_MIN_KEYWORD_COVERAGE) or (
        similarity is not None and similarity >= settings.CHAT_MIN_VECTOR_SCORE
    )


@dataclass
class _Grounding:
    results: list[retrieval.SearchResult]
    # Why there is no knowledge: None, "no_match" or "knowledge_unavailable".
    gap: str | None
    took_ms: int = 0


def _retrieve(turn: Turn) -> _Grounding:
    started = time.perf_counter()
    try:
        results, _ = retrieval.search(tenant=turn.tenant, query=turn.question, mode="hybrid")
    except (ServiceUnavailable, EmbeddingError) as exc:
        logger.warning("Chat answers without knowledge for tenant %s: %s", turn.tenant.pk, exc)
        return _Grounding(results=[], gap="knowledge_unavailable")
    relevant = [result for result in results if _relevant(result)]
    took_ms = int((time.perf_counter() - started) * 1000)
    return _Grounding(results=relevant, gap=None if relevant else "no_match", took_ms=took_ms)


def _prepare(turn: Turn) -> tuple[_Grounding, PreparedAnswer]:
    """Everything the provider needs, read in one trip to a worker thread."""
    grounding = _retrieve(turn)
    earlier = selectors.history(
        tenant=turn.tenant,
        conversation=turn.conversation,
        before=turn.user_message,
        limit=settings.CHAT_HISTORY_MESSAGES,
    )
    history = [
        PromptMessage(role=_PROMPT_ROLES[message.role], content=message.content)
        for message in earlier
        if message.role in _PROMPT_ROLES and message.content
    ]
    references = [
        Reference(number=number, title=result.document_title, text=result.text)
        for number, result in enumerate(grounding.results, start=1)
    ]
    answer = answer_prepare(
        tenant=turn.tenant,
        question=turn.question,
        references=references,
        history=history,
        language=_language(turn.question),
    )
    return grounding, answer


def _curated_answer(turn: Turn) -> faq_services.FaqAnswer | None:
    """The tenant's curated answer to this question, if one matches above its threshold."""
    return faq_services.faq_match(tenant=turn.tenant, question=turn.question)


def _curated_answer_save(turn: Turn, curated: faq_services.FaqAnswer) -> Message:
    """Save the curated text as the answer, with no provider and no tokens, and count the hit."""
    elapsed_ms = int((time.perf_counter() - turn.started) * 1000)
    with transaction.atomic():
        message = services.message_answer_save(
            conversation=turn.conversation,
            content=curated.answer,
            citations=[],
            usage=None,
            status=Message.Status.COMPLETE,
            latency_ms=elapsed_ms,
            first_token_ms=elapsed_ms,
            grounding=Message.Grounding.FAQ,
            faq_id=curated.faq_id,
        )
        faq_services.faq_hit_record(tenant=turn.tenant, faq_id=curated.faq_id)
    return message


# Characters per token event when a curated answer is streamed: the text arrives as any answer
# does, in pieces that join to exactly the curated text.
_CURATED_PIECE = 8


def _citations(answer: str, results: list[retrieval.SearchResult]) -> list[dict]:
    """The passages the answer cites as [n]; all the passages it was given if it cites none."""
    cited = []
    for mark in _CITATION_MARK.findall(answer):
        number = int(mark)
        if 1 <= number <= len(results) and number not in cited:
            cited.append(number)
    chosen = [results[number - 1] for number in cited] if cited else results
    return [
        {
            "document_id": result.document_id,
            "document_title": result.document_title,
            "chunk_id": result.chunk_id,
            "source_url": result.source_url,
            "text": result.text,
        }
        for result in chosen
    ]


def _finish(
    turn: Turn,
    *,
    text: str,
    grounding: _Grounding,
    usage: Usage | None,
    status: str,
    first_token_ms,
    failed: bool = False,
):
    if failed:
        basis = Message.Grounding.ERROR
    else:
        basis = Message.Grounding.KNOWLEDGE if grounding.results else Message.Grounding.NO_KNOWLEDGE
    return services.message_answer_save(
        conversation=turn.conversation,
        content=text,
        citations=_citations(text, grounding.results),
        usage=usage,
        status=status,
        latency_ms=int((time.perf_counter() - turn.started) * 1000),
        first_token_ms=first_token_ms,
        grounding=basis,
    )


def _hand_off_if_unanswered(turn: Turn, answer: PreparedAnswer, grounding: _Grounding) -> bool:
    if grounding.gap is None or not answer.assistant.handoff_when_no_knowledge:
        return False
    services.conversation_handoff(conversation=turn.conversation, reason="The knowledge base had no answer.")
    return True


def _observe(turn: Turn, *, first_token_ms: int | None, usage: Usage | None, streaming_seconds):
    """An answered question in the metrics: its time to first token, its tokens per second."""
    metrics.chat_answer_observe(
        tenant_id=turn.tenant.pk,
        channel=turn.conversation.channel,
        first_token_seconds=first_token_ms / 1000 if first_token_ms is not None else None,
        provider=usage.provider if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        streaming_seconds=streaming_seconds,
    )


def _error(code: str, message: str, details: dict | None = None) -> dict:
    return {"type": "error", "error": {"code": code, "message": message, "details": details or {}}}


def _done(turn: Turn, message: Message | None, **extra) -> dict:
    return {
        "type": "done",
        "conversation_id": str(turn.conversation.pk),
        "user_message_id": turn.user_message.pk,
        "status": turn.conversation.status,
        "message": services.message_as_event(message) if message else None,
        "usage": message.usage if message else None,
        **extra,
        # For the callers in this module only; turn_answer() leaves it out of the events.
        "saved_message": message,
    }


async def turn_answer(turn: Turn):
    """Stream the bot's answer to a started turn (see the module's docstring for the events).

    A dependency lost on the way (the database connection dropped while reading the history or
    saving the answer) ends the stream with an error event, `database_unavailable` for
    instance, rather than breaking it off: the question is kept (`turn_start()` committed it),
    the answer being generated is not. Token events are coalesced (`coalesced`)."""
    async with aclosing(coalesced(_events(turn), settings.CHAT_STREAM_COALESCE_MS / 1000)) as events:
        async for event in events:
            event.pop("saved_message", None)
            yield event


def _merged(events: list[dict]) -> list[dict]:
    """`events` with every run of token events joined into one."""
    merged: list[dict] = []
    for event in events:
        if event["type"] == "token" and merged and merged[-1]["type"] == "token":
            merged[-1] = {"type": "token", "delta": merged[-1]["delta"] + event["delta"]}
        else:
            merged.append(event)
    return merged


async def coalesced(events, seconds: float):
    """`events` (an async iterator of chat events), with the token events that arrive within
    `seconds` of the last one given joined into one: the first token goes out at once, as does a
    token after a pause; then at most one token event every `seconds`, carrying all the text
    that arrived meanwhile (deltas joined are still a delta: the client appends them). Other
    events (`done`, `error`) keep their place and are never held back.

    Relaying costs per event (JSON, a WebSocket frame or an SSE chunk, the socket write), not
    per character: a provider streaming 100 deltas a second to hundreds of sockets spent the web
    process's CPU on frames (bench/chat_streaming.py). `events` is read in a task of its own, so
    that text keeps arriving while this waits; closing this generator (or cancelling its task)
    cancels that reading, which the answer sees as its consumer going away."""
    if seconds <= 0:
        async with aclosing(events):
            async for event in events:
                yield event
        return
    queued: list[dict] = []
    arrived = asyncio.Event()

    async def read() -> None:
        try:
            async with aclosing(events):
                async for event in events:
                    queued.append(event)
                    arrived.set()
        finally:
            arrived.set()

    reader = asyncio.create_task(read())
    try:
        while True:
            await arrived.wait()
            arrived.clear()
            batch = _merged(queued)
            queued.clear()
            for event in batch:
                yield event
            if reader.done() and not queued:
                reader.result()  # the reader's exception, if it failed
                return
            if batch and batch[-1]["type"] == "token":
                # Let the next pieces gather; the end of the answer wakes this at once.
                await asyncio.wait((reader,), timeout=seconds)
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        elif not reader.cancelled():
            reader.exception()  # raised above, or of no interest to a consumer that left early


async def turn_answer_whole(turn: Turn) -> tuple[dict, Message | None]:
    """The answer at once: the last event (`done` or `error`) and the saved answer, if any, for
    a channel that replies once (REST, LINE)."""
    final: dict = {}
    async with aclosing(_events(turn)) as events:
        async for event in events:
            final = event
    return final, final.pop("saved_message", None)


async def _events(turn: Turn):
    try:
        async with aclosing(_answer_events(turn)) as answer_events:
            async for event in answer_events:
                yield event
    except Exception as exc:  # noqa: BLE001 - only a dependency outage becomes an event
        unavailable = dependency_error(exc)
        if unavailable is None:
            raise
        log_dependency_error(exc, unavailable)
        yield _error(
            unavailable.error_code,
            str(unavailable.detail),
            {"conversation_id": str(turn.conversation.pk), "user_message_id": turn.user_message.pk},
        )


async def _answer_events(turn: Turn):
    if turn.bot_silent:
        # The message reached the agents (services.message_user_add); the bot stays silent.
        yield _done(turn, None)
        return
    # Off the caller's thread when it asked for it (the sockets: blocking.offload()), so that
    # many questions are prepared at once instead of one after the other.
    db = blocking.run
    curated = await db(_curated_answer)(turn)
    if curated is not None:
        # Saved before it is streamed: the answer is known whole, and a client that goes away
        # half-way still has it in the conversation.
        message = await db(_curated_answer_save)(turn, curated)
        _observe(turn, first_token_ms=message.latency_ms, usage=None, streaming_seconds=None)
        for start in range(0, len(curated.answer), _CURATED_PIECE):
            yield {"type": "token", "delta": curated.answer[start : start + _CURATED_PIECE]}
        timings = {"retrieval_ms": 0, "prepared_ms": message.latency_ms, "first_token_ms": message.latency_ms}
        yield _done(
            turn,
            message,
            knowledge="faq",
            handed_off=False,
            timings={**timings, "total_ms": message.latency_ms},
        )
        return
    try:
        grounding, answer = await db(_prepare)(turn)
        prepared_ms = int((time.perf_counter() - turn.started) * 1000)
    except ServiceUnavailable as exc:
        yield _error(exc.error_code, str(exc.detail))
        return
    parts: list[str] = []
    usage: Usage | None = None
    first_token_ms: int | None = None

    def save(status: str, *, failed: bool = False):
        """Save what has been generated so far as the answer."""
        return db(_finish)(
            turn,
            text="".join(parts),
            grounding=grounding,
            usage=usage,
            status=status,
            first_token_ms=first_token_ms,
            failed=failed,
        )

    if grounding.gap == "knowledge_unavailable":
        notice = _WITHOUT_KNOWLEDGE[_language(turn.question)]
        parts.append(notice)
        yield {"type": "token", "delta": notice}
    try:
        async with aclosing(answer_stream(answer)) as stream:
            async for event in stream:
                if isinstance(event, Delta):
                    if first_token_ms is None:
                        first_token_ms = int((time.perf_counter() - turn.started) * 1000)
                    parts.append(event.text)
                    yield {"type": "token", "delta": event.text}
                elif isinstance(event, Usage):
                    usage = event
    except AllProvidersFailed as exc:
        yield _error(
            "provider_unavailable",
            "The assistant could not answer right now. Your message is saved; please try again shortly.",
            {"conversation_id": str(turn.conversation.pk), "user_message_id": turn.user_message.pk},
        )
        logger.warning("Every provider failed for tenant %s: %s", turn.tenant.pk, exc)
        return
    except ProviderError as exc:
        # The provider broke off after it had started answering: keep what it said.
        message = await save(Message.Status.INTERRUPTED, failed=True)
        yield _error(
            "provider_interrupted",
            "The assistant stopped in the middle of its answer. Please ask again.",
            {"conversation_id": str(turn.conversation.pk), "message_id": message.pk},
        )
        logger.warning("Provider broke off for tenant %s: %s", turn.tenant.pk, exc)
        return
    except (GeneratorExit, asyncio.CancelledError):
        if parts:
            # Cancelled or closed by the consumer (the client went away): save what was said.
            try:
                await asyncio.shield(save(Message.Status.INTERRUPTED))
            except Exception as exc:  # noqa: BLE001 - nobody is left to tell but the log
                unavailable = dependency_error(exc)
                if unavailable is None:
                    raise
                log_dependency_error(exc, unavailable)
        raise
    message = await save(Message.Status.COMPLETE)
    streaming_seconds = (
        (time.perf_counter() - turn.started) - first_token_ms / 1000 if first_token_ms else None
    )
    _observe(turn, first_token_ms=first_token_ms, usage=usage, streaming_seconds=streaming_seconds)
    handed_off = await db(_hand_off_if_unanswered)(turn, answer, grounding)
    # From the question's arrival: retrieval alone, everything before the provider call, the
    # first token from the provider, the saved answer.
    timings = {
        "retrieval_ms": grounding.took_ms,
        "prepared_ms": prepared_ms,
        "first_token_ms": first_token_ms,
        "total_ms": message.latency_ms,
    }
    yield _done(turn, message, knowledge=grounding.gap or "found", handed_off=handed_off, timings=timings)
