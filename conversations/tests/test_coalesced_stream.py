"""Token events coalesced (conversations.chat.coalesced): the first token goes out at once, the
pieces that arrive within the interval after a frame go out joined, nothing else is held back,
and closing the stream stops the answer being read."""

import asyncio
import time

import pytest

from conversations.chat import coalesced


def token(text: str) -> dict:
    return {"type": "token", "delta": text}


def _paced_answer(words: list[str], first_seen: asyncio.Event, pause: float):
    async def answer():
        yield token(words[0])
        await asyncio.wait_for(first_seen.wait(), 5)
        for word in words[1:]:
            yield token(word)
            await asyncio.sleep(pause)
        yield {"type": "done", "message": "".join(words)}

    return answer()


def _read(words: list[str], *, seconds: float, pause: float) -> tuple[list[dict], float]:
    async def scenario():
        first_seen = asyncio.Event()
        received = []
        started = time.monotonic()
        async for event in coalesced(_paced_answer(words, first_seen, pause), seconds):
            received.append(event)
            if event["type"] == "token":
                first_seen.set()
        return received, time.monotonic() - started

    return asyncio.run(scenario())


WORDS = [f"w{number} " for number in range(40)]


def test_the_first_token_is_not_held_back():
    """The source waits, before its second token, until the client has the first: held back for
    the interval (60 s here), the first would never arrive in the 5 s the source waits."""
    received, took = _read(WORDS, seconds=60, pause=0.001)
    tokens = [event["delta"] for event in received if event["type"] == "token"]
    assert tokens == [WORDS[0], "".join(WORDS[1:])]
    assert received[-1] == {"type": "done", "message": "".join(WORDS)}
    assert took < 5


def test_pieces_arriving_within_the_interval_go_out_joined():
    received, _took = _read(WORDS, seconds=0.05, pause=0.003)
    tokens = [event["delta"] for event in received if event["type"] == "token"]
    assert tokens[0] == WORDS[0]
    assert "".join(tokens) == "".join(WORDS)
    # 39 pieces 3 ms (or, on a busy machine, more) apart, sent at most every 50 ms.
    assert 3 <= len(tokens) < len(WORDS) // 2, tokens
    assert received[-1]["type"] == "done"


def test_the_end_of_the_answer_is_not_held_for_the_interval():
    """After a frame the next pieces gather for up to the interval (60 s here); the answer's end
    wakes the stream at once, and the pieces and `done` follow in order."""

    async def scenario():
        first_seen = asyncio.Event()

        async def answer():
            yield token("a")
            await asyncio.wait_for(first_seen.wait(), 5)
            yield token("b")
            await asyncio.sleep(0.01)
            yield token("c")
            yield {"type": "done"}

        received = []
        started = time.monotonic()
        async for event in coalesced(answer(), 60):
            received.append(event)
            first_seen.set()
        return received, time.monotonic() - started

    received, took = asyncio.run(scenario())
    assert received == [token("a"), token("bc"), {"type": "done"}]
    assert took < 5


def test_an_error_keeps_its_place_and_a_failure_is_raised_after_the_text():
    async def failing():
        yield token("a")
        yield token("b")
        yield {"type": "error", "error": {"code": "provider_interrupted"}}
        yield token("c")
        raise RuntimeError("broken")

    async def scenario():
        received = []
        with pytest.raises(RuntimeError, match="broken"):
            async for event in coalesced(failing(), 0.05):
                received.append(event)
        return received

    assert asyncio.run(scenario()) == [
        token("ab"),
        {"type": "error", "error": {"code": "provider_interrupted"}},
        token("c"),
    ]


@pytest.mark.parametrize("seconds", [0.05, 0])
def test_closing_the_stream_cancels_the_answer_being_read(seconds):
    """The socket closed: the answer sees its consumer go away (and saves what it said)."""
    seen = []

    async def endless():
        try:
            while True:
                yield token("x")
                await asyncio.sleep(0.001)
        except (asyncio.CancelledError, GeneratorExit) as exc:
            seen.append(type(exc).__name__)
            raise

    async def scenario():
        stream = coalesced(endless(), seconds)
        received = 0
        async for _event in stream:
            received += 1
            if received == 3:
                break
        await stream.aclose()

    asyncio.run(scenario())
    assert seen in (["CancelledError"], ["GeneratorExit"])


def test_off_every_delta_is_its_own_event():
    async def answer():
        for text in "abc":
            yield token(text)
        yield {"type": "done"}

    async def scenario():
        return [event async for event in coalesced(answer(), 0)]

    assert asyncio.run(scenario()) == [token("a"), token("b"), token("c"), {"type": "done"}]
