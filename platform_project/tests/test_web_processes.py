"""Several web processes, as production runs them behind its proxy: two real servers
(platform_project/webserver.py) on two ports, one test database, one Redis. What one process
does must reach a socket held by the other (the channel layer), and a limit counted in one must
count in the other (the cache). And an answer streams from the production server as it does
from the suite's in-process daphne."""

import asyncio
import http.client
import json
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect

from conversations.models import Conversation
from conversations.services import conversation_handoff
from testsupport.environment import committed
from testsupport.live import TIMEOUT, post, socket_url, token, until

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_an_agents_reply_posted_to_one_process_reaches_the_customers_socket_on_the_other(
    web_processes, tenant_a
):
    first, second = web_processes(2)
    conversation = Conversation.objects.create(
        tenant=tenant_a.tenant, user=tenant_a.end_user, channel=Conversation.Channel.WEBSOCKET
    )
    with committed():
        conversation_handoff(conversation=conversation, reason="a person, please")
    customer_url = socket_url(first, tenant_a, "end_user")
    agent_url = socket_url(second, tenant_a, "agent")
    bearer = token(tenant_a, "agent")
    base = f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation.pk}"

    async def scenario():
        async with connect(customer_url) as customer, connect(agent_url) as agent:
            await customer.send(json.dumps({"type": "subscribe", "conversation_id": str(conversation.pk)}))
            await until(customer, "subscribed")
            await agent.send(json.dumps({"type": "subscribe", "conversation_id": str(conversation.pk)}))
            await until(agent, "subscribed")
            # Posted to the second process: the customer's socket lives in the first.
            taken = await asyncio.to_thread(post, second, f"{base}/take", bearer)
            assert taken.status == 200, taken.read()
            reply = await asyncio.to_thread(
                post, second, f"{base}/reply", bearer, {"message": "您好，我來幫您。"}
            )
            assert reply.status == 201, reply.read()
            received, _ = await until(customer, "agent_message")
            # And back: the customer writes on the first process, the agent's socket on the
            # second hears it.
            await customer.send(
                json.dumps({"type": "message", "message": "謝謝！", "conversation_id": str(conversation.pk)})
            )
            relayed, _ = await until(agent, "user_message")
            return received, relayed

    received, relayed = asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    assert received["message"]["content"] == "您好，我來幫您。"
    assert received["message"]["role"] == "agent"
    assert relayed["message"]["content"] == "謝謝！"


def sign_in(server, email: str, password: str) -> tuple[int, dict]:
    address = urlsplit(server.http_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=TIMEOUT)
    body = json.dumps({"email": email, "password": password})
    connection.request("POST", "/v1/auth/login", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_the_sign_in_limit_counts_failures_made_on_either_process(web_processes, tenant_a):
    first, second = web_processes(2, LOGIN_FAILURE_LIMIT="4")
    email = tenant_a.agent.email

    # Four wrong passwords, alternating processes: two each, so each process's own memory would
    # have counted two and let a fifth through.
    statuses = [sign_in((first, second)[attempt % 2], email, "wrong-password")[0] for attempt in range(4)]
    assert statuses == [401, 401, 401, 401]
    for server in (first, second):
        status, body = sign_in(server, email, "wrong-password")
        assert status == 429, body
        assert body["error"]["code"] == "rate_limited"


def test_an_answer_streams_token_by_token_from_the_production_server(web_processes, tenant_a, knowledge_a):
    """Every delta its own frame here (CHAT_STREAM_COALESCE_MS=0), frames never compressed: the
    client offers permessage-deflate, as browsers do, and the server declines it
    (platform_project/webserver.py)."""
    (server,) = web_processes(1, CHAT_STREAM_COALESCE_MS="0")
    url = socket_url(server, tenant_a, "end_user")

    async def scenario():
        async with connect(url) as socket:
            assert "permessage-deflate" in socket.request.headers["Sec-WebSocket-Extensions"]
            assert "Sec-WebSocket-Extensions" not in socket.response.headers
            await socket.send(json.dumps({"type": "message", "message": "How long is the warranty?"}))
            return await until(socket, "done")

    done, before = asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    tokens = [event["delta"] for event in before if event["type"] == "token"]
    assert len(tokens) >= 5
    assert "".join(tokens) == done["message"]["content"]
    assert done["message"]["citations"][0]["document_id"] == knowledge_a[1].pk
