"""Request-rate throttles beside the chat limits (conversations/limits.py): per client address
for sign-up, per tenant for uploads. Rates come from settings (`THROTTLE_RATES`); the cache is
Redis in production, so every web process counts together. A refusal is a 429 with
`Retry-After` in the error format (`rate_limited`)."""

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle


class RegistrationThrottle(AnonRateThrottle):
    """Sign-ups per client address."""

    scope = "register"


class TenantUploadThrottle(SimpleRateThrottle):
    """Uploads per tenant (the bucket carries the tenant id, resolved before throttles run)."""

    scope = "upload"

    def get_cache_key(self, request, view):
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": tenant.pk}
