"""The visitor's WebSocket against a running ASGI server: streamed answers with citations, a
person's reply delivered live, and refusals (another site's page, a member's token)."""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from accounts.services import token_pair_for
from conversations.models import Conversation
from tenants.models import Membership
from testsupport.live import post, receive, until
from testsupport.widgets import SHOP
from widgets.models import Visitor
from widgets.services import visitor_session_open
from widgets.tokens import visitor_token_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def visitor_url(server, widget) -> str:
    visitor, _resume = visitor_session_open(
        widget=widget, visitor_id=None, visitor_hash=None, resume_token=None
    )
    return f"{server.ws_url}/ws/widget/?token={visitor_token_for(visitor)}"


def test_a_visitor_streams_an_answer_and_receives_an_agents_reply_live(
    live_asgi, tenant_a, widget_a, knowledge_a
):
    url = visitor_url(live_asgi, widget_a)
    membership = Membership.objects.get(user=tenant_a.agent, tenant=tenant_a.tenant)
    bearer, _ = token_pair_for(user=tenant_a.agent, membership=membership)

    async def scenario():
        async with connect(url, origin=SHOP) as socket:
            await socket.send(json.dumps({"type": "message", "message": "退貨要幾天內申請？"}))
            done, before = await until(socket, "done")
            conversation = done["conversation_id"]
            await socket.send(json.dumps({"type": "handoff", "conversation_id": conversation}))
            status, _ = await until(socket, "status")
            base = f"/v1/tenants/{tenant_a.tenant.pk}/chat/conversations/{conversation}"
            reply = await asyncio.to_thread(
                post, live_asgi, f"{base}/reply", bearer, {"message": "您好，我是客服。"}
            )
            assert reply.status == 201, reply.read()
            received, _ = await until(socket, "agent_message")
            return done, before, status, received

    done, before, status, received = asyncio.run(scenario())
    tokens = [event["delta"] for event in before if event["type"] == "token"]
    assert tokens and "".join(tokens) == done["message"]["content"]
    assert done["message"]["citations"]
    assert status["status"] == "handoff"
    assert received["message"]["content"] == "您好，我是客服。" and received["message"]["role"] == "agent"
    assert "@" not in received["message"]["author"]
    conversation = Conversation.objects.get(pk=done["conversation_id"])
    assert conversation.channel == "widget"
    assert conversation.contact == Visitor.objects.get().contact


def test_another_sites_page_and_a_members_token_get_no_widget_socket(live_asgi, tenant_a, widget_a):
    url = visitor_url(live_asgi, widget_a)
    membership = Membership.objects.get(user=tenant_a.end_user, tenant=tenant_a.tenant)
    member_token, _ = token_pair_for(user=tenant_a.end_user, membership=membership)

    async def refused(address, origin):
        async with connect(address, origin=origin) as socket:
            event = await receive(socket)
            await socket.wait_closed()
            return event, socket.close_code

    event, code = asyncio.run(refused(url, "https://evil.example.com"))
    assert event["error"]["code"] == "origin_not_allowed" and code == 4403
    event, code = asyncio.run(refused(f"{live_asgi.ws_url}/ws/widget/?token={member_token}", SHOP))
    assert event["error"]["code"] == "token_invalid" and code == 4401
    # And a visitor token opens no member socket.
    visitor_token = url.split("token=")[1]
    tenant_socket = f"{live_asgi.ws_url}/ws/tenants/{tenant_a.tenant.pk}/chat/?token={visitor_token}"
    event, code = asyncio.run(refused(tenant_socket, None))
    assert event["type"] == "error" and code == 4401
