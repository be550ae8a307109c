"""Rate limits of the public webhook, both counted in the cache before any event is stored:

- per client address, the calls that fail (no or a wrong signature, an unknown channel): a caller
  guessing channel ids or signatures gets 429 before its next guess costs a database lookup.
  LINE's own calls are valid and never count, so a stranger cannot exhaust a bucket LINE needs
  (LINE calls from a few addresses shared by every tenant: a limit on all calls per address
  would throttle every tenant's channel at once);
- per channel, the signed calls: one account's flood (or replays of a captured call) cannot fill
  the shared workers' queue. It is checked after the signature and before anything is stored:
  LINE redelivers a call refused with 429 (with "Webhook redelivery" on), so no event the
  platform accepted is ever dropped.

Rates come from settings (`THROTTLE_LINE_WEBHOOK`, `THROTTLE_LINE_WEBHOOK_FAILURES`); a refusal is
a 429 with `Retry-After` in the error format (`rate_limited`).
"""

from rest_framework.throttling import SimpleRateThrottle

from line_channel.models import LineChannel
from tenants.throttling import ClientAddressThrottle


class WebhookFailureThrottle(ClientAddressThrottle):
    """Failed webhook calls per client address: `refused()` reads the bucket without counting,
    `record_failure()` counts the call once it has failed."""

    scope = "line_webhook_failures"

    def refused(self, request, view) -> bool:
        if self.rate is None:
            return False
        self.key = self.get_cache_key(request, view)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) >= self.num_requests

    def record_failure(self) -> None:
        if self.rate is None:
            return
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


class WebhookChannelThrottle(SimpleRateThrottle):
    """Signed webhook calls per channel; the bucket carries the tenant id and the channel id."""

    scope = "line_webhook"

    def __init__(self, channel: LineChannel):
        super().__init__()
        self.channel = channel

    def get_cache_key(self, request, view):
        return self.cache_format % {
            "scope": self.scope,
            "ident": f"{self.channel.tenant_id}:{self.channel.pk}",
        }
