"""Request-rate throttles beside the chat limits (conversations/limits.py): per client address
for sign-up, invitation acceptance and password-reset requests, per tenant for ingestion (uploads
and reindexing: files and bytes per hour by plan). Rates come from settings (`THROTTLE_RATES`)
and, for ingestion, from the tenant's plan; the cache is Redis in production,
so every web process counts together. A refusal is a 429 with `Retry-After` in the error format
(`rate_limited`). The dashboard counts against the same buckets as the API (`throttle_wait`), so
neither is a way around the other.

`client_address()` is the one answer to "who is calling" for every limit and the audit trail.
"""

import ipaddress
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

_HOUR = 3600


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


def upload_budget_charge(*, tenant, files: int, size: int) -> int | None:
    """Count `files` files and `size` bytes against the tenant's ingestion budget for the last
    hour (its plan's `upload_files_per_hour` and `upload_bytes_per_hour`, 0 for no limit).
    Answers None when they fit (and counts them), else the seconds until they would (and
    counts nothing). Raises UploadBudgetExceeded when they exceed the hourly budget by
    themselves. A sliding window: each request's files and bytes leave the count an hour after
    it. Like DRF's throttles, two requests at the same instant may both read the count before
    either adds to it; the window is for budgets, not exact accounting."""
    # Here, not at the top: tenants.errors imports DRF's views, which import the authentication
    # classes, which import this module.
    from tenants.errors import UploadBudgetExceeded

    plan = tenant.plan
    limits = {"files": plan.upload_files_per_hour, "bytes": plan.upload_bytes_per_hour}
    requested = {"files": files, "bytes": size}
    for quota, limit in limits.items():
        if limit and requested[quota] > limit:
            raise UploadBudgetExceeded(quota=quota, limit=limit, requested=requested[quota])
    key = f"throttle_upload_budget_{tenant.pk}"
    now = time.time()
    history = [entry for entry in cache.get(key, []) if entry[0] > now - _HOUR]
    used = {"files": sum(entry[1] for entry in history), "bytes": sum(entry[2] for entry in history)}

    def fits(spent) -> bool:
        return all(not limit or spent[quota] + requested[quota] <= limit for quota, limit in limits.items())

    if not fits(used):
        # The oldest requests leave the window first: wait until enough of them have.
        for timestamp, old_files, old_bytes in history:
            used = {"files": used["files"] - old_files, "bytes": used["bytes"] - old_bytes}
            if fits(used):
                return max(1, int(timestamp + _HOUR - now) + 1)
        return _HOUR  # unreachable: an empty window fits whatever passed the check above
    history.append((now, files, size))
    cache.set(key, history, _HOUR)
    return None


class TenantUploadThrottle(BaseThrottle):
    """A tenant's ingestion requests against its plan's budget of files and bytes per hour: an
    upload of one file (its declared body size), a reindex request (one file, no bytes), a
    FAQ import. The bulk upload counts its files itself once it knows them
    (`upload_budget_charge`). Through the API or the dashboard, in the same budget. A request
    larger than the whole hourly budget is a 413 (`UploadBudgetExceeded`)."""

    def allow_request(self, request, view) -> bool:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return True
        declared = request.META.get("CONTENT_LENGTH") or "0"
        size = int(declared) if declared.isdigit() and request.method == "POST" else 0
        self._wait = upload_budget_charge(tenant=tenant, files=1, size=size)
        return self._wait is None

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
