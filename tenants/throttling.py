"""Request-rate throttles beside the chat limits (conversations/limits.py): per client address
for sign-up, invitation acceptance and password-reset requests, per tenant for ingestion (uploads
and reindexing). Rates come from settings (`THROTTLE_RATES`); the cache is Redis in production,
so every web process counts together. A refusal is a 429 with `Retry-After` in the error format
(`rate_limited`). The dashboard counts against the same buckets as the API (`throttle_wait`), so
neither is a way around the other.

`client_address()` is the one answer to "who is calling" for every limit and the audit trail.
"""

import ipaddress

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


def _valid_address(candidate: str) -> str | None:
    try:
        return str(ipaddress.ip_address(candidate.strip()))
    except ValueError:
        return None


def client_address(request) -> str | None:
    """The address of the client that sent `request`.

    Each of the `TRUSTED_PROXY_COUNT` proxies in front of the platform appends the address it
    received the request from to `X-Forwarded-For`, so the client is the entry that many places
    from the right; everything to its left was written by the client and proves nothing. With
    no trusted proxy (the default), the header is anyone's to write and is ignored: the client
    is the TCP peer, `REMOTE_ADDR`. A header shorter than the proxy chain (a request that
    bypassed a proxy) or an entry that is not an IP address falls back to `REMOTE_ADDR` too.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return remote
    return _valid_address(hops[-proxies]) or remote


def address_bucket(address: str | None) -> str:
    """The rate-limit identity of an address: an IPv6 client usually holds a whole /64, so it
    counts as one; IPv4 addresses count one by one."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:  # not an IP address (a Unix socket's peer): as it is
        return address[:100]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class ClientAddressThrottle(SimpleRateThrottle):
    """Requests per client address (as `client_address` sees it, never a forged header)."""

    def get_ident(self, request) -> str:
        return address_bucket(client_address(request))

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class RegistrationThrottle(ClientAddressThrottle):
    """Sign-ups per client address."""

    scope = "register"


class InvitationAcceptAddressThrottle(ClientAddressThrottle):
    """Invitation acceptances (and guesses of invitation tokens) per client address."""

    scope = "invitation_accept"


class PasswordResetAddressThrottle(ClientAddressThrottle):
    """Password-reset requests and confirmations per client address."""

    scope = "password_reset"


def throttle_wait(throttles, request, view=None) -> int | None:
    """Run DRF throttles outside DRF (the dashboard's forms): every throttle counts the request;
    the answer is the longest wait in seconds, or None when all allow it."""
    waits = []
    for throttle in throttles:
        if not throttle.allow_request(request, view):
            waits.append(throttle.wait() or 1)
    return max(1, int(max(waits))) if waits else None


class TenantUploadThrottle(SimpleRateThrottle):
    """A tenant's ingestion requests: each uploaded file and each reindex request (of a document
    or of all of them), through the API or the dashboard. The bucket carries the tenant id,
    resolved before throttles run."""

    scope = "upload"

    def get_cache_key(self, request, view):
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": tenant.pk}
