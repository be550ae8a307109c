"""WebSocket chat against a running ASGI server (daphne on a TCP port) with a real client:
streaming, refusals, a disconnect that stops generation, handoff to a live agent, limits."""

import asyncio
import json
import threading
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conversations.models import Conversation, Message
from conversations.services import conversation_handoff
from testsupport.live import post, receive, socket_url, token, until
from testsupport.llm import use_provider
from testsupport.wire_server import wire_server

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_question_streams_tokens_then_done_with_citations(live_asgi, tenant_a, knowledge_a, settings):
    settings.CHAT_STREAM_COALESCE_MS = 0  # every delta its own event (coalesced: the next test)
    url = socket_url(live_asgi, tenant_a, "end_user")

    async def scenario():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "message", "message": "How long is the warranty?"}))
            done, before = await until(socket, "done")
            return done, before

    done, before = asyncio.run(scenario())

    tokens = [event["delta"] for event in before if event["type"] == "token"]
    assert len(tokens) >= 5
    assert "".join(tokens) == done["message"]["content"]
    assert done["message"]["citations"][0]["document_id"] == knowledge_a[1].pk
    conversation = Conversation.objects.get(pk=done["conversation_id"])
    assert conversation.channel == "websocket"
    assert conversation.messages.count() == 2


def test_token_events_are_coalesced_without_delaying_the_first(live_asgi, tenant_a, settings):
    """40 tokens 20 ms apart (CHAT_STREAM_COALESCE_MS 100): the first goes out alone, at once;
    then a frame carries the pieces of up to 100 ms; the frames join to exactly the answer."""
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    settings.CHAT_STREAM_COALESCE_MS = 100
    with wire_server(api_key=None) as server:
        use_provider(tenant_a, server, "paced-40-20", kind="openai_compatible")
        url = socket_url(live_asgi, tenant_a, "end_user")

        async def scenario():
            async with connect(url) as socket:
                await socket.send(json.dumps({"type": "message", "message": "Tell me everything."}))
                return await until(socket, "done")

        done, before = asyncio.run(scenario())

    tokens = [event["delta"] for event in before if event["type"] == "token"]
    assert "".join(tokens) == done["message"]["content"]
    assert len(done["message"]["content"].split()) == 40
    assert tokens[0].startswith("w0@") and len(tokens[0].split()) == 1  # the first token alone
    assert 4 <= len(tokens) <= 20, tokens  # 0.8 s of answer in frames 100 ms apart


def test_questions_of_two_sockets_are_prepared_side_by_side(live_asgi, tenant_a, settings, monkeypatch):
    """Each socket's retrieval runs in the worker threads (tenants/blocking.py), not one after the
    other in Channels' single database thread: two questions asked at once are inside their
    retrieval at the same moment (one after the other, the barrier breaks and the answer fails)."""
    from conversations import chat

    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    both_inside = threading.Barrier(2, timeout=10)
    retrieve = chat._retrieve

    def meeting(turn):
        both_inside.wait()
        return retrieve(turn)

    monkeypatch.setattr(chat, "_retrieve", meeting)
    url = socket_url(live_asgi, tenant_a, "end_user")

    async def ask():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "message", "message": "How long is the warranty?"}))
            while (event := await receive(socket))["type"] not in ("done", "error"):
                pass
            return event

    async def scenario():
        return await asyncio.gather(ask(), ask())

    first, second = asyncio.run(scenario())
    assert first["type"] == second["type"] == "done", (first, second)
    assert first["conversation_id"] != second["conversation_id"]


def test_the_token_can_travel_as_a_subprotocol(live_asgi, tenant_a, settings):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0  # no knowledge needed

    url = f"{live_asgi.ws_url}/ws/tenants/{tenant_a.tenant.pk}/chat/"
    bearer = token(tenant_a, "agent")

    async def scenario():
        async with connect(url, subprotocols=["bearer", bearer]) as socket:
            assert socket.subprotocol == "bearer"
            await socket.send(json.dumps({"type": "ping"}))
            return await receive(socket)

    assert asyncio.run(scenario()) == {"type": "pong"}


@pytest.mark.parametrize("case", ["no_token", "bad_token", "other_tenant", "suspended"])
def test_refused_sockets_are_told_why_and_closed(live_asgi, tenant_a, tenant_b, case):
    url = {
        "no_token": f"{live_asgi.ws_url}/ws/tenants/{tenant_a.tenant.pk}/chat/",
        "bad_token": f"{live_asgi.ws_url}/ws/tenants/{tenant_a.tenant.pk}/chat/?token=not-a-jwt",
        "other_tenant": socket_url(live_asgi, tenant_b, "tenant_admin", tenant=tenant_a.tenant),
        "suspended": socket_url(live_asgi, tenant_a, "end_user"),
    }[case]
    if case == "suspended":
        tenant_a.tenant.status = "suspended"
        tenant_a.tenant.save()
    expected = {"no_token": 4401, "bad_token": 4401, "other_tenant": 4404, "suspended": 4403}[case]

    async def scenario():
        async with connect(url) as socket:
            error = await receive(socket)
            with pytest.raises(ConnectionClosed) as closed:
                await receive(socket)
            return error, closed.value.rcvd.code

    error, code = asyncio.run(scenario())
    assert error["type"] == "error" and error["error"]["message"]
    assert code == expected


def test_bad_frames_get_error_events_and_the_socket_stays_open(live_asgi, tenant_a):
    url = socket_url(live_asgi, tenant_a, "end_user")

    async def scenario():
        async with connect(url) as socket:
            answers = []
            for frame in [
                "not json",
                "[1, 2]",
                json.dumps({"type": "dance"}),
                json.dumps({"type": "message"}),
                json.dumps({"type": "message", "message": "x", "conversation_id": "nope"}),
            ]:
                await socket.send(frame)
                answers.append(await receive(socket))
            await socket.send(json.dumps({"type": "ping"}))
            answers.append(await receive(socket))
            return answers

    answers = asyncio.run(scenario())
    assert [answer["type"] for answer in answers] == ["error"] * 5 + ["pong"]
    assert not Conversation.objects.exists()


def test_tenant_b_cannot_subscribe_to_or_continue_tenant_a_conversations(
    live_asgi, tenant_a, tenant_b, settings
):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    conversation = Conversation.objects.create(
        tenant=tenant_a.tenant, user=tenant_a.user("end_user"), title="A"
    )

    url = socket_url(live_asgi, tenant_b, "tenant_admin")

    async def scenario():
        async with connect(url) as socket:
            answers = []
            for kind in ("subscribe", "message", "handoff"):
                await socket.send(
                    json.dumps({"type": kind, "message": "hi", "conversation_id": str(conversation.pk)})
                )
                answers.append(await receive(socket))
            return answers

    for answer in asyncio.run(scenario()):
        assert answer["type"] == "error" and answer["error"]["code"] == "not_found", answer
    assert conversation.messages.count() == 0


@pytest.mark.faults
def test_a_disconnect_mid_stream_stops_generation_and_keeps_what_was_said(live_asgi, tenant_a, settings):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    with wire_server(api_key=None) as server:
        use_provider(tenant_a, server, "paced-400-20", kind="openai_compatible")

        url = socket_url(live_asgi, tenant_a, "end_user")

        async def scenario():
            async with connect(url) as socket:
                await socket.send(json.dumps({"type": "message", "message": "Tell me everything."}))
                for _ in range(5):
                    assert (await receive(socket))["type"] == "token"
            # The socket is closed here, about 100 ms into an 8 s answer.

        asyncio.run(scenario())
        deadline = time.monotonic() + 10
        while not Message.objects.filter(role="assistant").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        answer = Message.objects.get(role="assistant")
        assert answer.status == "interrupted"
        assert 5 <= len(answer.content.split()) < 400
        # The platform closed its stream to the provider: the provider stopped early.
        deadline = time.monotonic() + 10
        while server.closed_early < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.closed_early == 1


def test_handoff_an_agent_reply_reaches_the_end_users_socket(live_asgi, tenant_a, settings):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0

    end_user_url = socket_url(live_asgi, tenant_a, "end_user")
    agent_url = socket_url(live_asgi, tenant_a, "agent")
    bearer = token(tenant_a, "agent")

    async def scenario():
        async with connect(end_user_url) as end_user:
            await end_user.send(json.dumps({"type": "message", "message": "My order never arrived."}))
            done, _ = await until(end_user, "done")
            conversation = done["conversation_id"]
            await end_user.send(json.dumps({"type": "handoff", "conversation_id": conversation}))
            status, _ = await until(end_user, "status")
            assert status["status"] == "handoff"

            # An agent, on their own socket, sees the queue change; they answer over REST.
            async with connect(agent_url) as agent_socket:
                await agent_socket.send(json.dumps({"type": "subscribe", "conversation_id": conversation}))
                await until(agent_socket, "subscribed")
                base = f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation}"
                taken = await asyncio.to_thread(post, live_asgi, f"{base}/take", bearer)
                assert taken.status == 200, taken.read()
                reply = await asyncio.to_thread(
                    post, live_asgi, f"{base}/reply", bearer, {"message": "您好，我來幫您查詢訂單。"}
                )
                assert reply.status == 201, reply.read()

                received, _ = await until(end_user, "agent_message")
                # While a human holds it, the bot is silent: the end user's next message reaches the agent.
                await end_user.send(
                    json.dumps({"type": "message", "message": "謝謝！", "conversation_id": conversation})
                )
                silent, before = await until(end_user, "done")
                relayed, _ = await until(agent_socket, "user_message")
                return received, silent, before, relayed

    received, silent, before, relayed = asyncio.run(scenario())
    assert received["message"]["content"] == "您好，我來幫您查詢訂單。"
    assert received["message"]["role"] == "agent"
    assert silent["message"] is None and not [event for event in before if event["type"] == "token"]
    assert relayed["message"]["content"] == "謝謝！"


@pytest.mark.parametrize(
    ("limit", "code"), [("requests_per_minute", "rate_limited"), ("monthly_token_quota", "quota_exceeded")]
)
def test_an_exhausted_limit_answers_an_error_event_with_retry_after(
    live_asgi, tenant_a, settings, limit, code
):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    plan = tenant_a.tenant.plan
    setattr(plan, limit, 1)  # one request a minute, or one token a month (the first answer uses more)
    plan.save()
    url = socket_url(live_asgi, tenant_a, "end_user")

    async def scenario():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "message", "message": "first"}))
            await until(socket, "done")
            await socket.send(json.dumps({"type": "message", "message": "second"}))
            return await until(socket, "error")

    error, _ = asyncio.run(scenario())
    assert error["error"]["code"] == code
    assert error["error"]["details"]["retry_after_seconds"] > 0
    assert Message.objects.filter(role="user").count() == 1


@pytest.mark.faults
def test_no_provider_left_gives_an_error_event_and_keeps_the_question(live_asgi, tenant_a, settings):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    with wire_server() as server:
        use_provider(tenant_a, server, "fail-500")

        url = socket_url(live_asgi, tenant_a, "end_user")

        async def scenario():
            async with connect(url) as socket:
                await socket.send(json.dumps({"type": "message", "message": "Anyone there?"}))
                return await until(socket, "error")

        error, before = asyncio.run(scenario())
    assert error["error"]["code"] == "provider_unavailable"
    assert not [event for event in before if event["type"] == "token"]
    assert list(Message.objects.values_list("role", "content")) == [("user", "Anyone there?")]


def test_sse_streams_over_a_real_connection_before_the_answer_is_complete(live_asgi, tenant_a, settings):
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    with wire_server(api_key=None) as server:
        use_provider(tenant_a, server, "paced-50-20", kind="openai_compatible")
        path = f"/v1/tenants/{tenant_a.tenant.pk}/chat/stream"
        bearer = token(tenant_a, "end_user")
        started = time.monotonic()
        arrivals = []
        response = post(live_asgi, path, bearer, {"message": "Hello"}, accept="text/event-stream")
        assert response.status == 200
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("event: "):
                arrivals.append((line[7:], time.monotonic() - started))
    assert arrivals[-1][0] == "done"
    first_token = next(moment for kind, moment in arrivals if kind == "token")
    # 50 tokens 20 ms apart take about a second: the first one arrives long before the end.
    assert arrivals[-1][1] - first_token > 0.5


def test_an_idle_socket_stays_open_and_still_receives_events(live_asgi, tenant_a):
    """Nothing arrives for longer than the channel layer's blocking read (5 s): the socket must
    still be there, and still hear its groups."""
    url = socket_url(live_asgi, tenant_a, "agent")

    def handoff():
        conversation = Conversation.objects.create(
            tenant=tenant_a.tenant, user=tenant_a.end_user, title="Help"
        )
        return conversation_handoff(conversation=conversation)

    async def scenario():
        async with connect(url) as socket:
            await asyncio.sleep(12)
            await socket.send(json.dumps({"type": "ping"}))
            pong = await receive(socket)
            await asyncio.to_thread(handoff)
            return pong, await receive(socket)

    pong, status = asyncio.run(scenario())
    assert pong == {"type": "pong"}
    assert status["type"] == "status" and status["status"] == "handoff"


def test_a_socket_in_the_test_process_is_served_while_one_is_open_on_the_live_server(live_asgi, tenant_a):
    """The live server's thread and a test's own event loop both receive from the channel layer at
    once (a socket of an earlier test may still be closing): channels_redis serves one loop per
    layer instance, so each thread has its own (conftest's ChannelLayerPerThread)."""
    from channels.testing import WebsocketCommunicator

    from platform_project.routing import websocket_application

    in_process = f"/ws/tenants/{tenant_a.tenant.pk}/chat/?token={token(tenant_a, 'end_user')}"
    url = socket_url(live_asgi, tenant_a, "end_user")

    async def scenario():
        async with connect(url) as live:
            await live.send(json.dumps({"type": "ping"}))
            assert await receive(live) == {"type": "pong"}  # its consumer is receiving
            communicator = WebsocketCommunicator(websocket_application, in_process)
            connected, _ = await communicator.connect()
            assert connected
            await communicator.send_to(text_data=json.dumps({"type": "ping"}))
            pong = json.loads(await communicator.receive_from(timeout=20))
            await communicator.disconnect()
            return pong

    assert asyncio.run(scenario()) == {"type": "pong"}


def test_a_client_gone_while_its_answer_streams_ends_the_answer_as_a_disconnect(tenant_a, settings, caplog):
    """uvicorn answers a send to a socket whose client has gone with ClientDisconnected, before the
    consumer hears of the disconnect: the answer ends as on a disconnect (what was said kept, the
    provider's stream closed), with no error logged and nothing more sent."""
    import logging

    from channels.testing import WebsocketCommunicator
    from uvicorn.protocols.utils import ClientDisconnected

    from platform_project.routing import websocket_application

    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    settings.CHAT_STREAM_COALESCE_MS = 0
    path = f"/ws/tenants/{tenant_a.tenant.pk}/chat/?token={token(tenant_a, 'end_user')}"

    async def gone_after_five_tokens(scope, receive, send):
        tokens = 0

        async def send_until_gone(message):
            nonlocal tokens
            if message["type"] == "websocket.send" and json.loads(message["text"])["type"] == "token":
                tokens += 1
                if tokens > 5:
                    raise ClientDisconnected()
            await send(message)

        await websocket_application(scope, receive, send_until_gone)

    with wire_server(api_key=None) as server:
        use_provider(tenant_a, server, "paced-400-20", kind="openai_compatible")

        async def scenario():
            communicator = WebsocketCommunicator(gone_after_five_tokens, path)
            connected, _ = await communicator.connect()
            assert connected
            await communicator.send_to(
                text_data=json.dumps({"type": "message", "message": "Tell me everything."})
            )
            for _ in range(5):
                assert json.loads(await communicator.receive_from(timeout=20))["type"] == "token"
            nothing_more = await communicator.receive_nothing(timeout=2)
            await communicator.disconnect()
            return nothing_more

        with caplog.at_level(logging.WARNING):
            assert asyncio.run(scenario()), "an event followed the client's departure"
        deadline = time.monotonic() + 10
        while server.closed_early < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.closed_early == 1

    answer = Message.objects.get(role="assistant")
    assert answer.status == "interrupted"
    assert 5 <= len(answer.content.split()) < 400
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
