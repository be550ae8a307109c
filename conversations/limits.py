"""Who may ask the bot now: the plan's requests per minute (per tenant, and per user) and its
monthly token quota. The same check guards REST, SSE and WebSocket chat, and raises the same
429 with a `Retry-After`.

The per-minute limits are fixed one-minute windows counted in the cache (Redis in production,
so every web process shares them); bucket keys carry the tenant id.
"""

import datetime as dt
import time

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from llm.selectors import usage_month_tokens
from tenants.errors import TooManyRequests
from tenants.models import Tenant


def _window_count(key: str, window: int) -> int:
    bucket = f"{key}:{window}"
    cache.add(bucket, 0, timeout=120)
    try:
        return cache.incr(bucket)
    except ValueError:  # expired between add() and incr()
        cache.set(bucket, 1, timeout=120)
        return 1


def _seconds_to_next_month(now: dt.datetime) -> int:
    local = timezone.localtime(now)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return int((following - local).total_seconds()) + 1


def chat_admit(*, tenant: Tenant, user_id: int | None = None, contact_id: int | None = None) -> None:
    """Count one chat request of a member (`user_id`) or a contact, or refuse it with a 429 that
    says when to come back."""
    now = time.time()
    window = int(now // 60)
    wait = 60 - int(now % 60)
    plan = tenant.plan
    if plan.requests_per_minute and (
        _window_count(f"ratelimit:{tenant.pk}:chat", window) > plan.requests_per_minute
    ):
        raise TooManyRequests(
            f"This organisation's plan allows {plan.requests_per_minute} chat requests a minute.",
            wait=wait,
        )
    per_user = settings.CHAT_USER_REQUESTS_PER_MINUTE
    sender = f"user:{user_id}" if user_id is not None else f"contact:{contact_id}" if contact_id else None
    if per_user and sender and (_window_count(f"ratelimit:{tenant.pk}:chat:{sender}", window) > per_user):
        raise TooManyRequests(f"You may send {per_user} messages a minute. Please wait a moment.", wait=wait)
    if plan.monthly_token_quota and usage_month_tokens(tenant=tenant) >= plan.monthly_token_quota:
        raise TooManyRequests(
            "This organisation has used its monthly token quota.",
            wait=_seconds_to_next_month(timezone.now()),
            code="quota_exceeded",
            details={"monthly_token_quota": plan.monthly_token_quota},
        )
