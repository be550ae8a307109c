"""Request-rate throttles beside the chat limits (conversations/limits.py): per client address
for sign-up, per tenant for ingestion (uploads and reindexing). Rates come from settings
(`THROTTLE_RATES`); the cache is Redis in production, so every web process counts together. A
refusal is a 429 with `Retry-After` in the error format (`rate_limited`). The dashboard counts
against the same buckets as the API (`throttle_wait`), so neither is a way around the other."""

import math

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle


class RegistrationThrottle(AnonRateThrottle):
    """Sign-ups per client address."""

    scope = "register"


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


def throttle_wait(throttle_class: type[SimpleRateThrottle], request) -> int | None:
    """Count one request of a plain Django view (a dashboard page) against an API throttle's
    bucket: None when it is allowed, else the seconds to wait before the next one."""
    throttle = throttle_class()
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))
