"""The fallback chain: a provider failing before its first delta hands over to the next; after a
delta, its error stands."""

import asyncio
import logging
from contextlib import aclosing

import pytest

from llm.base import Delta, ProviderError, Usage
from llm.chain import AllProvidersFailed, Fallback, stream_with_fallback
from llm.providers import build_provider
from llm.providers.offline import OfflineProvider
from testsupport.llm import REQUEST, collect, spec_for, text_of
from testsupport.wire_server import wire_server

SECRET = "sk-live-abcdefghijklmnop0123456789"


@pytest.fixture(scope="module")
def server():
    with wire_server(hang_seconds=10) as running:
        yield running


def provider(server, model, kind="openai", **overrides):
    return build_provider(spec_for(server, kind, model, max_retries=0, **overrides))


def test_the_first_provider_answers_when_it_works(server):
    events = collect(stream_with_fallback([provider(server, "primary"), OfflineProvider()], REQUEST))

    assert not any(isinstance(event, Fallback) for event in events)
    assert text_of(events).startswith("Answer from primary")
    assert events[-1].provider == "openai"


@pytest.mark.faults
def test_it_falls_back_on_a_server_error(server, caplog):
    with caplog.at_level(logging.WARNING, logger="llm.chain"):
        events = collect(stream_with_fallback([provider(server, "fail-500"), OfflineProvider()], REQUEST))

    assert events[0] == Fallback(
        from_provider="openai:fail-500", to_provider="offline:extractive", error=events[0].error
    )
    assert "500" in events[0].error
    assert text_of(events).startswith("Offline answer")
    assert isinstance(events[-1], Usage) and events[-1].provider == "offline"
    assert "openai:fail-500" in caplog.text


@pytest.mark.faults
def test_it_falls_back_on_a_timeout(server):
    chain = [provider(server, "hang", timeout_seconds=0.3), provider(server, "backup", kind="anthropic")]
    events = collect(stream_with_fallback(chain, REQUEST))

    fallbacks = [event for event in events if isinstance(event, Fallback)]
    assert [(f.from_provider, f.to_provider) for f in fallbacks] == [("openai:hang", "anthropic:backup")]
    assert text_of(events).startswith("Answer from backup")


def test_it_falls_back_on_a_refused_key_too(server):
    chain = [provider(server, "refused", api_key=SECRET), provider(server, "backup-2")]
    events = collect(stream_with_fallback(chain, REQUEST))

    assert isinstance(events[0], Fallback)
    assert "401" in events[0].error
    assert text_of(events).startswith("Answer from backup-2")


@pytest.mark.faults
def test_it_raises_all_providers_failed_when_none_is_left(server, caplog):
    chain = [provider(server, "fail-500"), provider(server, "refused-too", kind="anthropic", api_key=SECRET)]
    with caplog.at_level(logging.WARNING, logger="llm.chain"):
        with pytest.raises(AllProvidersFailed) as caught:
            collect(stream_with_fallback(chain, REQUEST))

    failure = caught.value
    assert isinstance(failure, ProviderError)
    assert [error.status for error in failure.errors] == [500, 401]
    assert failure.retryable is True  # the 500 may pass
    message = str(failure)
    assert "http" not in message.lower() and "127.0.0.1" not in message and SECRET not in message
    assert SECRET not in caplog.text
    assert "no provider left" in caplog.text


@pytest.mark.faults
def test_an_error_after_a_delta_is_raised_not_fallen_back(server):
    seen = []

    async def consume():
        async for event in stream_with_fallback([provider(server, "cut-stream"), OfflineProvider()], REQUEST):
            seen.append(event)

    with pytest.raises(ProviderError) as caught:
        asyncio.run(consume())

    assert not isinstance(caught.value, AllProvidersFailed)
    assert any(isinstance(event, Delta) for event in seen)
    assert not any(isinstance(event, Fallback) for event in seen)
    assert "Offline" not in text_of(seen)


def test_closing_the_chain_closes_the_provider_stream():
    async def read_two(chain):
        async with aclosing(stream_with_fallback(chain, REQUEST)) as stream:
            count = 0
            async for _event in stream:
                count += 1
                if count == 2:
                    return

    with wire_server() as fresh:
        asyncio.run(read_two([provider(fresh, "paced-100-20"), OfflineProvider()]))
        assert fresh.wait_for(lambda: fresh.closed_early == 1, timeout=3)
        assert fresh.active_streams == 0


def test_an_empty_chain_is_a_programming_error():
    with pytest.raises(ValueError):
        collect(stream_with_fallback([], REQUEST))
