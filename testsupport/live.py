"""Clients of the live ASGI server (the `live_asgi` fixture): a member's token, the chat
WebSocket and its events, and a real HTTP request."""

import asyncio
import http.client
import json
from urllib.parse import urlsplit

from accounts.services import token_pair_for
from tenants.models import Membership

TIMEOUT = 60


def token(people, role: str) -> str:
    user = people.user(role)
    membership = Membership.objects.get(user=user, tenant=people.tenant)
    access, _ = token_pair_for(user=user, membership=membership)
    return access


def socket_url(server, people, role: str, tenant=None) -> str:
    tenant_id = (tenant or people.tenant).pk
    return f"{server.ws_url}/ws/tenants/{tenant_id}/chat/?token={token(people, role)}"


async def receive(socket) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))


def post(server, path: str, bearer: str, body: dict | None = None, accept: str = "application/json"):
    """A real HTTP request to the live server; the response is open for reading."""
    address = urlsplit(server.http_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=TIMEOUT)
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json", "Accept": accept}
    connection.request("POST", path, body=json.dumps(body or {}), headers=headers)
    return connection.getresponse()


async def until(socket, kind: str) -> tuple[dict, list[dict]]:
    """Read events until one of `kind`; returns it and everything read before."""
    seen = []
    while True:
        event = await receive(socket)
        if event["type"] == kind:
            return event, seen
        seen.append(event)
