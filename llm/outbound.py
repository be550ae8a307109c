"""The outbound-request guard: HTTP clients for addresses that tenants choose (a provider's base
URL; later, the pages of a crawled website), which never reach the platform's own network.

A check of the URL when it is saved is not enough: the name may resolve elsewhere at the next
request (DNS rebinding: public when saved, 127.0.0.1 or 10.x later), and a server may answer with
a redirect to an internal URL. So the check happens on every connection, in the network backend
under httpx: the host is resolved once, every address it resolves to must be public, and the
socket is opened to one of those checked addresses (never to the name, which could resolve again
to something else). TLS still verifies the certificate against the URL's name. The clients made
here never follow redirects, and ignore proxy variables from the environment (a proxy would open
the connection itself, past the check).

Addresses are judged by the IPv4 address they carry when they carry one: NAT64 (64:ff9b::/96),
6to4 (2002::/16), IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96) and Teredo (2001::/32)
forms of 127.0.0.1 or 169.254.169.254 are as internal as the originals.

Sync (`guarded_client`) and async (`guarded_async_client`) clients share one policy; the LLM
providers pass their transport to the openai and anthropic client libraries.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.to_thread
import httpcore2
import httpx2
from httpx2._config import DEFAULT_LIMITS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: the operator's own translators
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class AddressRefused(httpcore2.ConnectError):
    """A connection refused because `host` resolved to `address`, which is not public. httpx
    reports it as an `httpx2.ConnectError` caused by this; `refused_address_in()` finds it."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(
            f"{host} resolves to an internal address ({address}); only public servers may be called."
        )
        self.host = host
        self.address = address


def carried_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (NAT64, 6to4, IPv4-mapped or -compatible), or
    None. Teredo is judged in `is_public_address`, as it carries two."""
    if ip.version == 4:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _public_ipv4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def is_public_address(ip: IPAddress) -> bool:
    """Whether the platform may connect to `ip`: a globally routed unicast address, and for
    the IPv6 forms of an IPv4 address, a public IPv4 address."""
    if ip.version == 4:
        return _public_ipv4(ip)
    if ip.teredo is not None:
        server, client = ip.teredo
        return _public_ipv4(server) and _public_ipv4(client)
    carried = carried_ipv4(ip)
    if carried is not None:
        return _public_ipv4(carried)
    if ip in _LOCAL_NAT64:
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(host: str, port: int | None = None) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself), in the resolver's
    order. Raises OSError when it does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def internal_address_of(host: str, port: int | None = None) -> str | None:
    """The first address of `host` that is not public, "unresolvable" when it does not resolve,
    or None: for checks when a URL is saved (a form's early answer; connections are checked
    again, each time)."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError, ValueError):
        return "unresolvable"
    for address in addresses:
        if not is_public_address(address):
            return str(address)
    return None if addresses else "unresolvable"


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def checked_addresses(host: str, port: int, allowed_networks: Networks = ()) -> list[str]:
    """The addresses to connect to for `host`: all of them public or inside one of
    `allowed_networks` (internal networks the operator opened on purpose), else `AddressRefused`
    (one internal answer is enough, since a connection could be made to any of them)."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError, ValueError) as error:
        raise httpcore2.ConnectError(f"{host} could not be resolved: {error}") from error
    for address in addresses:
        if not is_public_address(address) and not any(address in network for network in allowed_networks):
            raise AddressRefused(host, str(address))
    if not addresses:
        raise httpcore2.ConnectError(f"{host} resolves to no address.")
    return [str(address) for address in addresses]


def refused_address_in(error: BaseException | None) -> AddressRefused | None:
    """The `AddressRefused` behind an error raised by httpx or a client library, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, AddressRefused):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


class GuardedBackend(httpcore2.NetworkBackend):
    """httpcore's sync backend, connecting only to checked public addresses, or addresses in
    `allowed_networks` (unless `allow_private`: then the name is connected to as it is)."""

    def __init__(self, *, allow_private: bool, allowed_networks: Networks = ()) -> None:
        self.allow_private = allow_private
        self.allowed_networks = allowed_networks
        self._backend = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        targets = [host] if self.allow_private else checked_addresses(host, port, self.allowed_networks)
        for index, target in enumerate(targets):
            try:
                return self._backend.connect_tcp(
                    target, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout):
                if index == len(targets) - 1:
                    raise
        raise AssertionError("unreachable")

    def connect_unix_socket(self, path: str, timeout=None, socket_options=None) -> httpcore2.NetworkStream:
        raise httpcore2.ConnectError("Unix sockets are not reachable through the outbound guard.")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class GuardedAsyncBackend(httpcore2.AsyncNetworkBackend):
    """The async twin of `GuardedBackend` (asyncio or trio, through anyio)."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._backend = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        if self.allow_private:
            targets = [host]
        else:
            try:
                with anyio.fail_after(timeout):
                    targets = await anyio.to_thread.run_sync(checked_addresses, host, port)
            except TimeoutError as error:
                raise httpcore2.ConnectTimeout(f"{host} did not resolve within {timeout} s.") from error
        for index, target in enumerate(targets):
            try:
                return await self._backend.connect_tcp(
                    target, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout):
                if index == len(targets) - 1:
                    raise
        raise AssertionError("unreachable")

    async def connect_unix_socket(
        self, path: str, timeout=None, socket_options=None
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("Unix sockets are not reachable through the outbound guard.")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def _pool_options(verify, limits: httpx2.Limits) -> dict:
    return {
        "ssl_context": httpx2.create_ssl_context(verify=verify, trust_env=False),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


class GuardedTransport(httpx2.HTTPTransport):
    def __init__(
        self,
        *,
        allow_private: bool,
        allowed_networks: Networks = (),
        verify=True,
        limits: httpx2.Limits = DEFAULT_LIMITS,
    ) -> None:
        self._pool = httpcore2.ConnectionPool(
            **_pool_options(verify, limits),
            network_backend=GuardedBackend(allow_private=allow_private, allowed_networks=allowed_networks),
        )


class GuardedAsyncTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, *, allow_private: bool, verify=True, limits: httpx2.Limits = DEFAULT_LIMITS) -> None:
        self._pool = httpcore2.AsyncConnectionPool(
            **_pool_options(verify, limits), network_backend=GuardedAsyncBackend(allow_private=allow_private)
        )


def guarded_client(
    *, allow_private: bool, allowed_networks: Networks = (), verify=True, **options
) -> httpx2.Client:
    """An httpx client whose every connection is checked, that never follows a redirect."""
    return httpx2.Client(
        transport=GuardedTransport(
            allow_private=allow_private, allowed_networks=allowed_networks, verify=verify
        ),
        follow_redirects=False,
        trust_env=False,
        **options,
    )


def guarded_async_client(
    *,
    allow_private: bool,
    verify=True,
    client_class: type[httpx2.AsyncClient] = httpx2.AsyncClient,
    **options,
) -> httpx2.AsyncClient:
    """The async twin of `guarded_client`; `client_class` lets a client library pass its own
    subclass (with its default timeouts)."""
    return client_class(
        transport=GuardedAsyncTransport(allow_private=allow_private, verify=verify),
        follow_redirects=False,
        trust_env=False,
        **options,
    )
