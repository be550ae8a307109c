"""A socket's powers end when they are taken away, not only at connect: a removed or demoted
member, a deactivated user, a suspended tenant or an expired token is refused the next frame and
the next group event, told why, and closed (4401 or 4403). Real daphne and a real client."""

import asyncio
import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.tokens import AccessToken
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conversations import services
from conversations.models import Conversation, Message
from tenants import services as tenant_services
from tenants import websocket
from tenants.models import Membership, Tenant
from testsupport.live import TIMEOUT, receive, socket_url, token

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def remove(people, role):
    tenant_services.membership_delete(membership=Membership.objects.get(user=people.user(role)))


def demote(people, role):
    membership = Membership.objects.get(user=people.user(role))
    tenant_services.membership_set_role(membership=membership, role="end_user")


def suspend(people, role):
    tenant_services.tenant_suspend(tenant=people.tenant)


def deactivate(people, role):
    from accounts import services as account_services

    account_services.user_set_active(user=people.user(role), active=False)


CHANGES = {"remove": remove, "demote": demote, "suspend": suspend, "deactivate": deactivate}
CLOSE_CODES = {"remove": 4403, "demote": 4403, "suspend": 4403, "deactivate": 4401}


async def refused(socket) -> tuple[list[dict], int]:
    """Everything the server sends until it closes the socket, and the close code."""
    seen = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            seen.append(await receive(socket))
    return seen, closed.value.rcvd.code


def handoff_of_a_customer(people) -> Conversation:
    """A customer asks for a human: the tenant's staff group hears of it."""
    conversation = Conversation.objects.create(tenant=people.tenant, user=people.end_user, title="Help")
    return services.conversation_handoff(conversation=conversation, reason="a person, please")


@pytest.mark.parametrize("change", CHANGES)
def test_a_frame_after_access_is_taken_away_is_refused_and_the_socket_closed(live_asgi, tenant_a, change):
    url = socket_url(live_asgi, tenant_a, "agent")

    async def scenario():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            assert await receive(socket) == {"type": "pong"}
            await asyncio.to_thread(CHANGES[change], tenant_a, "agent")
            # A chat message: nothing may be saved or billed to the tenant.
            await socket.send(json.dumps({"type": "message", "message": "Still here?"}))
            return await refused(socket)

    seen, code = asyncio.run(scenario())
    assert [event["type"] for event in seen] == ["error"], seen
    assert seen[0]["error"]["message"]
    assert code == CLOSE_CODES[change]
    assert not Message.objects.exists()


@pytest.mark.parametrize("change", CHANGES)
def test_staff_events_after_access_is_taken_away_are_not_delivered(live_asgi, tenant_a, change):
    url = socket_url(live_asgi, tenant_a, "agent")

    async def scenario():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            assert await receive(socket) == {"type": "pong"}
            await asyncio.to_thread(CHANGES[change], tenant_a, "agent")
            await asyncio.to_thread(handoff_of_a_customer, tenant_a)
            return await refused(socket)

    seen, code = asyncio.run(scenario())
    assert [event["type"] for event in seen] == ["error"], seen
    assert code == CLOSE_CODES[change]


def test_staff_events_still_arrive_while_access_holds(live_asgi, tenant_a):
    url = socket_url(live_asgi, tenant_a, "agent")

    async def scenario():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            assert await receive(socket) == {"type": "pong"}
            # Another member's removal does not concern this socket.
            await asyncio.to_thread(remove, tenant_a, "end_user")
            conversation = await asyncio.to_thread(handoff_of_a_customer, tenant_a)
            return conversation, await receive(socket)

    conversation, event = asyncio.run(scenario())
    assert event["type"] == "status" and event["conversation_id"] == str(conversation.pk)


def test_a_change_made_without_the_services_is_seen_within_the_recheck_interval(
    live_asgi, tenant_a, settings
):
    settings.SOCKET_ACCESS_RECHECK_SECONDS = 1
    url = socket_url(live_asgi, tenant_a, "agent")

    async def scenario():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            assert await receive(socket) == {"type": "pong"}
            # An operator's direct update: no service, so no stamp moves.
            await asyncio.to_thread(Tenant.objects.filter(pk=tenant_a.tenant.pk).update, status="suspended")
            await asyncio.sleep(1.2)
            await socket.send(json.dumps({"type": "ping"}))
            return await refused(socket)

    seen, code = asyncio.run(scenario())
    assert [event["error"]["code"] for event in seen] == ["tenant_suspended"]
    assert code == 4403


def test_an_unchanged_socket_checks_its_access_without_the_database(
    tenant_a, django_assert_num_queries, django_assert_max_num_queries
):
    scope = websocket._authenticate(token(tenant_a, "agent"))
    access = websocket.SocketAccess(scope, tenant_id=tenant_a.tenant.pk, role="agent")
    with django_assert_num_queries(0):
        assert access.refusal() is None
        assert access.refusal() is None
    demote(tenant_a, "agent")
    with django_assert_max_num_queries(3):
        assert access.refusal().code == "role_changed"


def short_lived_token(people, role: str, seconds: float) -> str:
    membership = Membership.objects.get(user=people.user(role), tenant=people.tenant)
    crafted = AccessToken(token(people, role))
    crafted.set_exp(lifetime=timedelta(seconds=seconds))
    assert crafted["tenant_id"] == str(membership.tenant_id)
    return str(crafted)


def test_an_expired_token_closes_the_socket_with_4401(live_asgi, tenant_a):
    bearer = short_lived_token(tenant_a, "agent", seconds=2)
    url = f"{live_asgi.ws_url}/ws/tenants/{tenant_a.tenant.pk}/chat/?token={bearer}"

    async def scenario():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            assert await receive(socket) == {"type": "pong"}
            await asyncio.sleep(max(0, AccessToken(bearer)["exp"] - time.time()) + 1.1)
            await socket.send(json.dumps({"type": "ping"}))
            return await refused(socket)

    seen, code = asyncio.run(scenario())
    assert [event["error"]["code"] for event in seen] == ["token_expired"]
    assert code == 4401


def test_a_staff_event_after_the_token_expired_is_not_delivered(live_asgi, tenant_a):
    bearer = short_lived_token(tenant_a, "agent", seconds=2)
    url = f"{live_asgi.ws_url}/ws/tenants/{tenant_a.tenant.pk}/chat/?token={bearer}"

    async def scenario():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            assert await receive(socket) == {"type": "pong"}
            await asyncio.sleep(max(0, AccessToken(bearer)["exp"] - time.time()) + 1.1)
            await asyncio.to_thread(handoff_of_a_customer, tenant_a)
            return await refused(socket)

    seen, code = asyncio.run(scenario())
    assert [event["error"]["code"] for event in seen] == ["token_expired"]
    assert code == 4401


def test_a_socket_renewed_with_a_fresh_token_outlives_its_first_token(live_asgi, tenant_a):
    bearer = short_lived_token(tenant_a, "agent", seconds=2)
    url = f"{live_asgi.ws_url}/ws/tenants/{tenant_a.tenant.pk}/chat/?token={bearer}"
    fresh = token(tenant_a, "agent")

    async def scenario():
        async with connect(url) as socket:
            await socket.send(json.dumps({"type": "renew", "token": fresh}))
            renewed = await receive(socket)
            await asyncio.sleep(max(0, AccessToken(bearer)["exp"] - time.time()) + 1.1)
            await socket.send(json.dumps({"type": "ping"}))
            return renewed, await receive(socket)

    renewed, answer = asyncio.run(scenario())
    assert renewed == {"type": "renewed", "expires_at": AccessToken(fresh)["exp"]}
    assert answer == {"type": "pong"}


def test_a_socket_cannot_be_renewed_with_another_persons_token(live_asgi, tenant_a, tenant_b):
    url = socket_url(live_asgi, tenant_a, "end_user")
    others = [token(tenant_a, "agent"), token(tenant_b, "end_user"), "not-a-jwt"]

    async def scenario():
        async with connect(url) as socket:
            answers = []
            for bearer in others:
                await socket.send(json.dumps({"type": "renew", "token": bearer}))
                answers.append(await receive(socket))
            await socket.send(json.dumps({"type": "ping"}))
            answers.append(await receive(socket))
            return answers

    answers = asyncio.run(scenario())
    assert [answer.get("error", {}).get("code") for answer in answers[:3]] == ["token_invalid"] * 3
    assert answers[3] == {"type": "pong"}


# --- The dashboard's socket token (item 10a) ------------------------------------------------


def dashboard_socket_token(people, role: str) -> str:
    client = Client()
    client.force_login(people.user(role))
    response = client.get(reverse("dashboard:live-chat", kwargs={"tenant_id": people.tenant.pk}))
    assert response.status_code == 200
    return response.context["socket"]["token"]


def test_the_dashboards_socket_token_opens_the_socket(live_asgi, tenant_a):
    bearer = dashboard_socket_token(tenant_a, "agent")
    url = f"{live_asgi.ws_url}/ws/tenants/{tenant_a.tenant.pk}/chat/"

    async def scenario():
        async with connect(url, subprotocols=["bearer", bearer]) as socket:
            await socket.send(json.dumps({"type": "ping"}))
            return await asyncio.wait_for(socket.recv(), TIMEOUT)

    assert json.loads(asyncio.run(scenario())) == {"type": "pong"}


# --- Staff post into a customer's conversation only as agents (item 10b) --------------------


def test_staff_cannot_post_as_the_customer_over_the_socket(live_asgi, tenant_a):
    conversation = Conversation.objects.create(tenant=tenant_a.tenant, user=tenant_a.end_user, title="Mine")
    url = socket_url(live_asgi, tenant_a, "agent")

    async def scenario():
        async with connect(url) as socket:
            await socket.send(
                json.dumps(
                    {"type": "message", "message": "Cancel my order", "conversation_id": str(conversation.pk)}
                )
            )
            return await receive(socket)

    error = asyncio.run(scenario())
    assert error["type"] == "error" and error["error"]["code"] == "reply_as_agent", error
    assert not conversation.messages.exists()
