"""The network providers, through the real openai and anthropic clients, against the local wire
server: streams, usage, auth headers, retries, timeouts, broken streams and cancellation."""

import asyncio
import time
from contextlib import aclosing

import anthropic
import openai
import pytest

from llm.base import Delta, LLMRequest, Message, ProviderError, Usage
from llm.providers import ProviderSpec, build_provider
from llm.providers._common import redact, status_error
from llm.providers.anthropic_messages import anthropic_messages
from llm.tokens import estimate_tokens
from testsupport.llm import QUESTION, REQUEST, collect, spec_for, text_of, usage_of
from testsupport.wire_server import wire_server

NETWORK_KINDS = ["openai", "openai_compatible", "azure_openai", "anthropic"]
SECRET = "sk-live-abcdefghijklmnop0123456789"


@pytest.fixture(scope="module")
def server():
    with wire_server(hang_seconds=10) as running:
        yield running


def stream_of(spec: ProviderSpec, request: LLMRequest = REQUEST) -> list:
    return collect(build_provider(spec).stream(request))


def failure_of(spec: ProviderSpec, request: LLMRequest = REQUEST) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        stream_of(spec, request)
    return caught.value


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_each_provider_streams_deltas_then_usage(server, kind):
    events = stream_of(spec_for(server, kind, "answer-model"))

    deltas = [event for event in events if isinstance(event, Delta)]
    assert len(deltas) > 3
    assert text_of(events) == f"Answer from answer-model [1]: {QUESTION[:40]}"
    usage = usage_of(events)
    assert usage == Usage(
        prompt_tokens=server.last_usage["prompt"],
        completion_tokens=server.last_usage["completion"],
        provider=kind,
        model="answer-model",
    )


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_complete_joins_the_stream(server, kind):
    text, usage = asyncio.run(build_provider(spec_for(server, kind, "complete-model")).complete(REQUEST))
    assert text.startswith("Answer from complete-model [1]")
    assert usage.completion_tokens == server.last_usage["completion"]


def test_openai_sends_the_system_prompt_and_asks_for_stream_usage(server):
    stream_of(spec_for(server, "openai", "openai-body", temperature=0.7, max_tokens=123))

    body = server.requests_for("openai-body")[-1].body
    assert body["messages"][0] == {"role": "system", "content": REQUEST.system}
    assert body["messages"][-1] == {"role": "user", "content": QUESTION}
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    # The spec's temperature and max tokens win over the request's.
    assert body["temperature"] == 0.7
    assert body["max_completion_tokens"] == 123


def test_openai_compatible_takes_the_request_settings_and_max_tokens(server):
    stream_of(spec_for(server, "openai_compatible", "compatible-body"))

    body = server.requests_for("compatible-body")[-1].body
    assert body["temperature"] == REQUEST.temperature
    assert body["max_tokens"] == REQUEST.max_tokens


def test_azure_calls_the_deployment_with_its_api_key_header(server):
    stream_of(spec_for(server, "azure_openai", "my-deployment", api_version="2024-10-21"))

    request = server.requests_for("my-deployment")[-1]
    assert request.route == "azure"
    assert request.path == "/openai/deployments/my-deployment/chat/completions"
    assert request.query["api-version"] == ["2024-10-21"]
    assert request.headers["api-key"] == server.api_key
    assert "authorization" not in request.headers


def test_anthropic_sends_the_system_prompt_apart_and_reports_its_usage(server):
    request = LLMRequest(
        system="Answer briefly.",
        messages=[
            Message("assistant", "Hello! How can I help?"),  # the window starts with the bot
            Message("user", "First question"),
            Message("user", "and a second line"),
            Message("assistant", "An answer"),
            Message("system", "Extra platform note"),
            Message("user", QUESTION),
        ],
    )
    events = stream_of(spec_for(server, "anthropic", "claude-test"), request)

    recorded = server.requests_for("claude-test")[-1]
    assert recorded.headers["anthropic-version"]
    assert server.api_key in (
        recorded.headers.get("x-api-key"),
        recorded.headers.get("authorization", "")[7:],
    )
    assert recorded.body["system"] == "Answer briefly.\n\nExtra platform note"
    assert [turn["role"] for turn in recorded.body["messages"]] == ["user", "assistant", "user"]
    assert recorded.body["messages"][0]["content"] == "First question\n\nand a second line"
    assert "temperature" not in recorded.body
    usage = usage_of(events)
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        server.last_usage["prompt"],
        server.last_usage["completion"],
    )


def test_anthropic_messages_skip_empty_turns():
    system, turns = anthropic_messages(
        [Message("user", "  "), Message("assistant", "x"), Message("user", "q")]
    )
    assert system == []
    assert turns == [{"role": "user", "content": "q"}]


def test_openai_compatible_server_without_key_gets_a_placeholder():
    with wire_server(api_key=None) as open_server:
        events = stream_of(spec_for(open_server, "openai_compatible", "local-llama", api_key=""))
    assert text_of(events).startswith("Answer from local-llama")
    assert open_server.requests[-1].headers["authorization"] == "Bearer no-key"


@pytest.mark.parametrize("kind", ["openai", "azure_openai", "anthropic"])
def test_a_provider_that_needs_a_key_fails_without_calling_out(server, kind):
    before = len(server.requests)
    error = failure_of(spec_for(server, kind, "keyless", api_key=""))
    assert error.retryable is False
    assert "no API key" in str(error)
    assert len(server.requests) == before


@pytest.mark.parametrize("kind", ["openai", "azure_openai", "anthropic"])
def test_a_refused_key_is_not_retried_and_not_repeated(server, kind):
    error = failure_of(spec_for(server, kind, "wrong-key", api_key=SECRET))

    assert error.status == 401
    assert error.retryable is False
    assert SECRET not in str(error) and SECRET[:12] not in str(error)
    assert len(server.requests_for("wrong-key")) >= 1
    assert all(request.route != "unknown" for request in server.requests_for("wrong-key"))


@pytest.mark.parametrize("kind", ["openai", "azure_openai", "anthropic"])
def test_rate_limit_is_retried_by_the_client_then_succeeds(server, kind):
    events = stream_of(spec_for(server, kind, "flaky-429"))

    assert text_of(events).startswith("Answer from flaky-429")
    route = {"openai": "openai", "azure_openai": "azure", "anthropic": "anthropic"}[kind]
    assert [request.route for request in server.requests_for("flaky-429")].count(route) == 2


@pytest.mark.faults
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_server_errors_fail_after_the_retries(server, kind):
    before = len(server.requests_for("fail-500"))
    started = time.monotonic()
    error = failure_of(spec_for(server, kind, "fail-500", max_retries=1))

    assert time.monotonic() - started < 3
    assert error.status == 500
    assert error.retryable is True
    assert len(server.requests_for("fail-500")) - before == 2  # the try and one retry


@pytest.mark.faults
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_hanging_server_times_out_within_the_timeout(server, kind):
    started = time.monotonic()
    error = failure_of(spec_for(server, kind, "hang", timeout_seconds=0.3, max_retries=0))

    assert time.monotonic() - started < 1.5
    assert error.retryable is True
    assert "0.3 s" in str(error)


@pytest.mark.faults
@pytest.mark.parametrize("model", ["garbage", "cut-stream"])
@pytest.mark.parametrize("kind", ["openai", "azure_openai", "anthropic"])
def test_broken_responses_raise_provider_errors(server, kind, model):
    error = failure_of(spec_for(server, kind, model, max_retries=0))
    assert error.retryable is True


def test_a_stream_without_usage_gets_an_estimate(server):
    events = stream_of(spec_for(server, "openai", "no-usage"))

    usage = usage_of(events)
    prompt = estimate_tokens(REQUEST.system) + estimate_tokens(QUESTION)
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, estimate_tokens(text_of(events)))


async def _read_then_close(provider, deltas: int) -> list[str]:
    seen = []
    async with aclosing(provider.stream(REQUEST)) as stream:
        async for event in stream:
            seen.append(event.text)
            if len(seen) == deltas:
                break
    return seen


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_closing_the_stream_mid_answer_closes_the_http_stream(kind):
    with wire_server() as fresh:
        provider = build_provider(spec_for(fresh, kind, "paced-200-20"))
        seen = asyncio.run(_read_then_close(provider, 3))

        assert [word.split("@")[0].strip() for word in seen] == ["w0", "w1", "w2"]  # paced words carry a time
        assert fresh.wait_for(lambda: fresh.closed_early == 1, timeout=3)
        assert fresh.active_streams == 0
        assert fresh.streams_completed == 0


async def _cancel_after(provider, deltas: int) -> None:
    started = asyncio.Event()

    async def consume():
        count = 0
        async for _event in provider.stream(REQUEST):
            count += 1
            if count == deltas:
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("kind", ["openai_compatible", "anthropic"])
def test_cancelling_the_consumer_closes_the_http_stream(kind):
    with wire_server() as fresh:
        asyncio.run(_cancel_after(build_provider(spec_for(fresh, kind, "paced-200-20")), 2))

        assert fresh.wait_for(lambda: fresh.closed_early == 1, timeout=3)
        assert fresh.active_streams == 0


def test_wire_server_answers_non_streaming_requests(server):
    answer = openai.OpenAI(
        api_key=server.api_key, base_url=server.base_url, max_retries=0
    ).chat.completions.create(model="plain-json", messages=[{"role": "user", "content": "Hello there"}])
    assert answer.choices[0].message.content == "Answer from plain-json [1]: Hello there"
    assert answer.usage.completion_tokens == server.last_usage["completion"]

    message = anthropic.Anthropic(
        api_key=server.api_key, base_url=server.root_url, max_retries=0
    ).messages.create(
        model="plain-json", max_tokens=50, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert message.content[0].text == "Answer from plain-json [1]: Hello there"
    assert message.usage.output_tokens == server.last_usage["completion"]


def test_wire_server_refuses_a_wrong_key_in_each_format(server):
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(api_key="wrong", base_url=server.base_url, max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert refused.value.body["code"] == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError) as refused_anthropic:
        anthropic.Anthropic(api_key="wrong", base_url=server.root_url, max_retries=0).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert refused_anthropic.value.body["error"]["type"] == "authentication_error"


def test_spec_repr_never_shows_the_key():
    assert SECRET not in repr(ProviderSpec(kind="openai", model="m", api_key=SECRET))


def test_error_details_shown_to_admins_never_carry_the_key():
    error = status_error(
        provider="openai",
        label="OpenAI",
        status=400,
        detail=f"Invalid request for key {SECRET} at https://user:pass@proxy.example/v1 (key-abcdef123456)",
        secret=SECRET,
    )
    assert error.retryable is False and error.status == 400
    for leaked in (SECRET, "user:pass", "key-abcdef123456"):
        assert leaked not in str(error)
    assert redact("x" * 1000).endswith("…") and len(redact("x" * 1000)) == 300


@pytest.mark.parametrize(
    ("status", "retryable"), [(401, False), (403, False), (404, False), (408, True), (429, True), (503, True)]
)
def test_status_errors_say_whether_another_try_may_help(status, retryable):
    assert status_error(provider="openai", label="OpenAI", status=status).retryable is retryable
