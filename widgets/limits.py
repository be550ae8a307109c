"""The open internet's limits on a widget, beside the plan's (conversations.limits): messages per
visitor per minute and the widget's daily cap. Counted in the cache (Redis in production, shared
by every web process); the keys carry the tenant id."""

import time

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants.errors import TooManyRequests
from widgets.models import Visitor, Widget


def _count(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=timeout)
        return 1


def _seconds_to_midnight() -> int:
    now = timezone.localtime()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timezone.timedelta(days=1)
    return int((midnight - now).total_seconds()) + 1


def _daily_key(tenant_id, widget_id) -> str:
    return f"widget:{tenant_id}:{widget_id}:day:{timezone.localdate().isoformat()}"


def widget_messages_today(*, widgets: list[Widget]) -> dict[int, int]:
    """Visitor messages each widget has admitted today, as its daily cap counts them (one cache
    round trip for the whole list). Refused attempts past the cap are counted too, so the figure
    is held at the cap."""
    keys = {_daily_key(widget.tenant_id, widget.pk): widget for widget in widgets}
    counts = cache.get_many(list(keys))
    result = {}
    for key, widget in keys.items():
        count = int(counts.get(key) or 0)
        result[widget.pk] = min(count, widget.daily_message_cap) if widget.daily_message_cap else count
    return result


def visitor_message_admit(*, visitor: Visitor) -> None:
    """Count one message of `visitor`, or refuse it (429 with Retry-After)."""
    now = time.time()
    per_minute = settings.WIDGET_VISITOR_MESSAGES_PER_MINUTE
    if per_minute:
        window = int(now // 60)
        key = f"widget:{visitor.tenant_id}:visitor:{visitor.pk}:{window}"
        if _count(key, 120) > per_minute:
            raise TooManyRequests(
                _("You are sending messages too quickly. Please wait a moment."), wait=60 - int(now % 60)
            )
    widget = visitor.widget
    # Counted even without a cap, so the dashboard shows every widget's messages today.
    today = _count(_daily_key(visitor.tenant_id, widget.pk), 26 * 3600)
    if widget.daily_message_cap and today > widget.daily_message_cap:
        raise TooManyRequests(
            _("This chat has reached its limit for today. Please try again tomorrow."),
            wait=_seconds_to_midnight(),
            code="daily_cap_reached",
        )
