"""The outbound-request guard: every connection to an address a tenant chose (a provider's base
URL) is checked when it is made, against the address actually connected to, and redirects are
never followed. The providers go through the real openai and anthropic clients and httpx; only
DNS is stood in for (a name that answers a public address at save time and loopback at chat)."""

import asyncio
import ipaddress
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import pytest

from llm import outbound, selectors
from llm.base import ProviderError
from llm.chain import AllProvidersFailed, stream_with_fallback
from llm.providers import build_provider
from testsupport.api import assert_error
from testsupport.llm import REQUEST, assistant_body, assistant_put, collect, spec_for
from testsupport.wire_server import wire_server

PUBLIC = "93.184.215.14"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254, the metadata service
        ("64:ff9b::a00:7", False),  # NAT64 of 10.0.0.7
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:169.254.169.254", False),
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated, still routed by some stacks)
        ("::a00:1", False),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo whose client is 127.0.0.1
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 (RFC 8215)
        ("127.0.0.1", False),
        ("::1", False),
        ("fd00::1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - an address under test, nothing binds to it
        (f"64:ff9b::{PUBLIC}", True),
        ("2002:5db8:d70e::1", True),  # 6to4 of 93.184.215.14
        (f"::ffff:{PUBLIC}", True),
        (PUBLIC, True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_addresses_are_classified_by_the_ipv4_address_they_carry(address, public):
    assert outbound.is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.django_db
@pytest.mark.urls("llm.tests.urls")
@pytest.mark.parametrize(
    "base_url", ["http://[64:ff9b::7f00:1]/v1", "http://[2002:a9fe:a9fe::1]/v1", "http://[::ffff:a00:7]/v1"]
)
def test_saving_refuses_a_nat64_6to4_or_mapped_form_of_an_internal_address(tenant_a, settings, base_url):
    settings.LLM_ALLOW_PRIVATE_BASE_URLS = False
    provider = {"kind": "openai_compatible", "model": "llama", "base_url": base_url}

    error = assert_error(
        assistant_put(tenant_a.client("tenant_admin"), tenant_a, assistant_body(providers=[provider])),
        400,
        "validation_error",
    )

    assert "internal address" in str(error["details"])


class FakeDNS:
    """Answers `name` with `address` (changeable), and every other name as the system does."""

    def __init__(self, name: str, address: str) -> None:
        self.name = name
        self.address = address
        self.real = socket.getaddrinfo

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's names
        wanted = host.decode() if isinstance(host, bytes) else host
        if wanted != self.name:
            return self.real(host, port, family, type, proto, flags)
        port_number = int(port) if port not in (None, b"", "") else 0
        ip = ipaddress.ip_address(self.address)
        if ip.version == 6:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (self.address, port_number, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.address, port_number))]


@pytest.fixture
def fake_dns(monkeypatch):
    dns = FakeDNS("llm.rebinding.test", PUBLIC)
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    return dns


def _chat_with_the_stored_chain(tenant) -> list:
    return collect(stream_with_fallback(selectors.provider_chain(tenant=tenant), REQUEST))


@pytest.mark.django_db
@pytest.mark.urls("llm.tests.urls")
@pytest.mark.parametrize(("kind", "path"), [("openai_compatible", "/v1"), ("anthropic", "")])
def test_a_name_that_resolves_public_at_save_and_loopback_at_chat_is_refused_at_chat(
    tenant_a, settings, fake_dns, kind, path
):
    settings.LLM_ALLOW_PRIVATE_BASE_URLS = False
    with wire_server() as server:
        provider = {
            "kind": kind,
            "model": "rebound",
            "base_url": f"http://{fake_dns.name}:{server.port}{path}",
            "api_key": server.api_key,
            "timeout_seconds": 2,
        }
        saved = assistant_put(tenant_a.client("tenant_admin"), tenant_a, assistant_body(providers=[provider]))
        assert saved.status_code == 200, saved.content  # public when saved

        fake_dns.address = "127.0.0.1"  # the name's owner rebinds it to the platform's own host
        with pytest.raises(AllProvidersFailed) as caught:
            _chat_with_the_stored_chain(tenant_a.tenant)

        assert server.requests == []
    (error,) = caught.value.errors
    assert not error.retryable
    assert "internal address" in str(error) and "127.0.0.1" in str(error)


@pytest.mark.django_db
@pytest.mark.urls("llm.tests.urls")
def test_a_rebound_name_still_connects_when_the_operator_allows_private_addresses(
    tenant_a, settings, fake_dns
):
    settings.LLM_ALLOW_PRIVATE_BASE_URLS = True
    fake_dns.address = "127.0.0.1"
    with wire_server() as server:
        provider = {
            "kind": "openai_compatible",
            "model": "local-model",
            "base_url": f"http://{fake_dns.name}:{server.port}/v1",
            "api_key": server.api_key,
        }
        assert (
            assistant_put(
                tenant_a.client("tenant_admin"), tenant_a, assistant_body(providers=[provider])
            ).status_code
            == 200
        )

        events = _chat_with_the_stored_chain(tenant_a.tenant)

    assert len(server.requests_for("local-model")) == 1
    assert events[-1].provider == "openai_compatible"


@contextmanager
def redirecting_server(location: str, status: int = 307):
    """A server answering every request with `status` and `Location: location + path`."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002
            pass

        def _redirect(self):
            seen.append(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(status)
            self.send_header("Location", location + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _redirect  # noqa: N815 - the http.server naming

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["openai_compatible", "anthropic"])
def test_a_provider_never_follows_a_redirect(settings, kind):
    settings.LLM_ALLOW_PRIVATE_BASE_URLS = True  # both servers are local: only the redirect is at stake
    with wire_server() as second, redirecting_server(second.root_url) as (first_url, seen):
        spec = spec_for(
            second, kind, "redirected", base_url=first_url + ("/v1" if kind != "anthropic" else "")
        )

        with pytest.raises(ProviderError) as caught:
            collect(build_provider(spec).stream(REQUEST))

        assert seen  # the first server was asked...
        assert second.requests == []  # ...and the second never
    assert "redirect" in str(caught.value) and not caught.value.retryable


class _Answering(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@contextmanager
def answering_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_guard_serves_sync_clients_too(fake_dns):
    """The same guard for other outbound requests (a crawler): sync, and async below."""
    with answering_server() as url:
        rebound = url.replace("127.0.0.1", fake_dns.name)
        fake_dns.address = "127.0.0.1"
        with outbound.guarded_client(allow_private=False) as client:
            with pytest.raises(httpx2.ConnectError) as caught:
                client.get(rebound)
        refused = outbound.refused_address_in(caught.value)
        assert refused is not None and refused.address == "127.0.0.1"
        with outbound.guarded_client(allow_private=True) as client:
            assert client.get(rebound).text == "ok"
        with redirecting_server(url) as (first_url, seen):
            with outbound.guarded_client(allow_private=True) as client:
                response = client.get(first_url + "/page")
        assert response.status_code == 307 and seen == ["/page"]


def test_the_guard_serves_async_clients(fake_dns):
    async def fetch(url: str, *, allow_private: bool) -> str:
        async with outbound.guarded_async_client(allow_private=allow_private) as client:
            return (await client.get(url)).text

    with answering_server() as url:
        fake_dns.address = "::ffff:127.0.0.1"
        rebound = url.replace("127.0.0.1", fake_dns.name)
        with pytest.raises(httpx2.ConnectError) as caught:
            asyncio.run(fetch(rebound, allow_private=False))
        assert outbound.refused_address_in(caught.value) is not None
        assert asyncio.run(fetch(url, allow_private=True)) == "ok"
