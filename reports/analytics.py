"""A tenant's analytics for a period: what the bot answered and how, what it could not, how
conversations ended, and how fast people answered after a handoff.

Every figure is a database aggregate: a fixed number of queries whatever the number of
conversations (see the query-count test). Only the top unanswered questions are grouped in
Python, over at most UNANSWERED_SAMPLE rows that the database has already picked, because "the
same question in other words" (keyword overlap after folding Traditional to Simplified) has no
portable SQL form.

Definitions (docs/analytics.md):
- a conversation belongs to the day it started, a message and a rating to the day they were
  written; `until` is inclusive, days are in the platform's TIME_ZONE;
- answers are assistant messages; answered by FAQ / knowledge by their `grounding`; not answered
  are those grounded `no_knowledge` or broken off (`error`);
- abandoned: marked so by the daily job, or, not yet marked, with no close and no message for
  CONVERSATION_ABANDONED_HOURS (so the figure does not wait for the job);
- resolution without a person: conversations closed as resolved by the bot, over all
  conversations of the period;
- the agents' first-response time runs from the handoff to the first agent reply (nearest-rank
  median and 90th percentile over the conversations that got one).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone
from rest_framework import serializers

from conversations.models import Conversation, Feedback, Message
from knowledge.keywords import tokenize
from tenants.models import Tenant

# The most recent unanswered questions that are grouped; older ones fall out of the top list.
UNANSWERED_SAMPLE = 500
UNANSWERED_TOP = 10
# Two questions are one when their keyword sets overlap this much (Jaccard), or when they are
# equal once case, width, punctuation and Traditional/Simplified are folded.
SAME_QUESTION_OVERLAP = 0.5

_GROUNDINGS = Message.Grounding


def period_bounds(since: dt.date, until: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The period as aware datetimes [start, end), `until` included, in the current time zone."""
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(since, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start, end


def abandoned_condition(now: dt.datetime | None = None) -> Q:
    """Conversations that count as abandoned: marked so, or idle and never resolved."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.CONVERSATION_ABANDONED_HOURS)
    return Q(resolution=Conversation.Resolution.ABANDONED) | Q(resolution="", updated_at__lt=cutoff)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _nearest_rank(queryset, field: str, count: int, fraction: float) -> float | None:
    """The value at the nearest rank of `fraction` (0-1), read by the database (ordered, one row)."""
    if not count:
        return None
    index = max(math.ceil(fraction * count) - 1, 0)
    value = queryset.order_by(field).values_list(field, flat=True)[index : index + 1]
    row = list(value)
    return round(row[0].total_seconds(), 1) if row else None


def tenant_analytics(*, tenant: Tenant, since: dt.date, until: dt.date, channel: str | None = None) -> dict:
    start, end = period_bounds(since, until)
    conversations = Conversation.objects.for_tenant(tenant).filter(created_at__gte=start, created_at__lt=end)
    messages = Message.objects.for_tenant(tenant).filter(created_at__gte=start, created_at__lt=end)
    # Ratings given in the period (their own time: no join to the messages).
    feedback = Feedback.objects.for_tenant(tenant).filter(created_at__gte=start, created_at__lt=end)
    if channel:
        conversations = conversations.filter(channel=channel)
        messages = messages.filter(conversation__channel=channel)
        feedback = feedback.filter(message__conversation__channel=channel)

    answer = Q(role=Message.Role.ASSISTANT)
    message_counts = {
        "messages": Count("id"),
        "questions": Count("id", filter=Q(role=Message.Role.USER)),
        "answers": Count("id", filter=answer),
        "answered_by_faq": Count("id", filter=answer & Q(grounding=_GROUNDINGS.FAQ)),
        "answered_by_knowledge": Count("id", filter=answer & Q(grounding=_GROUNDINGS.KNOWLEDGE)),
        "no_knowledge": Count("id", filter=answer & Q(grounding=_GROUNDINGS.NO_KNOWLEDGE)),
        "errors": Count("id", filter=answer & Q(grounding=_GROUNDINGS.ERROR)),
        "agent_messages": Count("id", filter=Q(role=Message.Role.AGENT)),
    }
    conversation_counts = {
        "conversations": Count("id"),
        "handoffs": Count("id", filter=Q(handoff_at__isnull=False)),
        "resolved_by_bot": Count("id", filter=Q(resolution=Conversation.Resolution.BOT)),
        "resolved_after_handoff": Count("id", filter=Q(resolution=Conversation.Resolution.AFTER_HANDOFF)),
        "abandoned": Count("id", filter=abandoned_condition()),
    }

    # Messages: one query grouped by day and channel; the days' and channels' figures are sums
    # over its rows (at most days x channels of them, never one per message).
    message_groups = list(
        messages.annotate(day=TruncDate("created_at"))
        .order_by()
        .values("day", "conversation__channel")
        .annotate(**message_counts)
    )
    message_days: dict = {}
    channel_messages: dict = {}
    for row in message_groups:
        for key, into in ((row["day"], message_days), (row["conversation__channel"], channel_messages)):
            summed = into.setdefault(key, dict.fromkeys(message_counts, 0))
            for name in message_counts:
                summed[name] += row[name]
    conversation_days = {
        row["day"]: row["count"]
        for row in conversations.annotate(day=TruncDate("created_at"))
        .order_by()
        .values("day")
        .annotate(count=Count("id"))
    }
    days = []
    for offset in range((until - since).days + 1):
        day = since + dt.timedelta(days=offset)
        counted = message_days.get(day, {})
        days.append(
            {
                "day": day,
                "conversations": conversation_days.get(day, 0),
                **{name: counted.get(name, 0) for name in message_counts},
            }
        )

    # Per channel: the conversations grouped by channel, beside the messages' sums.
    channels = []
    for row in conversations.order_by().values("channel").annotate(**conversation_counts).order_by("channel"):
        counted = channel_messages.pop(row["channel"], {})
        channels.append({**row, **{name: counted.get(name, 0) for name in message_counts}})
    for name, counted in sorted(channel_messages.items()):
        # Messages of the period in conversations started before it.
        channels.append(
            {
                "channel": name,
                **dict.fromkeys(conversation_counts, 0),
                **{key: counted.get(key, 0) for key in message_counts},
            }
        )
    totals = {name: sum(row[name] for row in channels) for name in [*conversation_counts, *message_counts]}
    totals["not_answered"] = totals["no_knowledge"] + totals["errors"]
    resolved = totals["resolved_by_bot"] + totals["resolved_after_handoff"] + totals["abandoned"]
    totals["open"] = max(totals["conversations"] - resolved, 0)
    rated = feedback.aggregate(
        up=Count("id", filter=Q(rating=Feedback.Rating.UP)),
        down=Count("id", filter=Q(rating=Feedback.Rating.DOWN)),
    )
    totals["feedback_up"], totals["feedback_down"] = rated["up"], rated["down"]

    # Agents' first response after a handoff: a count and two ordered one-row reads.
    waits = conversations.filter(handoff_at__isnull=False, first_agent_reply_at__isnull=False).annotate(
        wait=ExpressionWrapper(F("first_agent_reply_at") - F("handoff_at"), output_field=DurationField())
    )
    answered_handoffs = waits.count()

    return {
        "period": {"since": since, "until": until, "channel": channel or None},
        "totals": totals,
        "rates": {
            "answered_by_faq": _share(totals["answered_by_faq"], totals["answers"]),
            "answered_by_knowledge": _share(totals["answered_by_knowledge"], totals["answers"]),
            "not_answered": _share(totals["not_answered"], totals["answers"]),
            "handoff": _share(totals["handoffs"], totals["conversations"]),
            "resolved_without_person": _share(totals["resolved_by_bot"], totals["conversations"]),
            "abandoned": _share(totals["abandoned"], totals["conversations"]),
            "feedback_up": _share(totals["feedback_up"], totals["feedback_up"] + totals["feedback_down"]),
        },
        "first_response": {
            "conversations": answered_handoffs,
            "median_seconds": _nearest_rank(waits, "wait", answered_handoffs, 0.5),
            "p90_seconds": _nearest_rank(waits, "wait", answered_handoffs, 0.9),
        },
        "channels": channels,
        "days": days,
        "unanswered": unanswered_questions(messages=messages),
    }


# --- Top unanswered questions ------------------------------------------------------------------


def tenant_unanswered(
    *, tenant: Tenant, since: dt.date, until: dt.date, channel: str | None = None, limit: int | None = None
) -> list[dict]:
    """The period's unanswered questions alone (the dashboard's list of them), grouped as in
    the analytics report, most asked first; all of the sampled ones when `limit` is None."""
    start, end = period_bounds(since, until)
    messages = Message.objects.for_tenant(tenant).filter(created_at__gte=start, created_at__lt=end)
    if channel:
        messages = messages.filter(conversation__channel=channel)
    return unanswered_questions(messages=messages, limit=limit)


_NOT_WORDS = re.compile(r"[\W_]+")


def _folded(text: str) -> str:
    """Case, width, punctuation, spaces and Traditional/Simplified folded: equal means the same."""
    return "".join(sorted(set(tokenize(text)))) or _NOT_WORDS.sub(
        "", unicodedata.normalize("NFKC", text).lower()
    )


def unanswered_questions(*, messages, limit: int | None = UNANSWERED_TOP) -> list[dict]:
    """The questions whose answer was `no_knowledge` or got a thumbs-down, most asked first,
    grouped when they are the same question in other words. `messages`: the period's messages
    (already scoped to the tenant)."""
    thumbs_down = Feedback.objects.filter(
        tenant_id=OuterRef("tenant_id"), message=OuterRef("pk"), rating=Feedback.Rating.DOWN
    )
    asked = Message.objects.filter(
        tenant_id=OuterRef("tenant_id"),
        conversation_id=OuterRef("conversation_id"),
        role=Message.Role.USER,
        created_at__lte=OuterRef("created_at"),
    ).order_by("-created_at", "-id")
    rows = (
        messages.filter(role=Message.Role.ASSISTANT)
        .annotate(thumbs_down=Exists(thumbs_down), question=Subquery(asked.values("content")[:1]))
        # An answer with no question before it (none in practice) is skipped below, not here:
        # filtering on the subquery makes PostgreSQL's estimate, and its JIT compile, explode.
        .filter(Q(grounding=_GROUNDINGS.NO_KNOWLEDGE) | Q(thumbs_down=True))
        .order_by("-created_at", "-id")
        .values("question", "grounding", "thumbs_down", "created_at", "conversation_id")[:UNANSWERED_SAMPLE]
    )
    with transaction.atomic(using=messages.db):
        if connections[messages.db].vendor == "postgresql":
            # The subqueries make the planner's estimate large enough for JIT compilation, which
            # took 2 s for a query that runs in 0.2 s (bench/analytics.py): off for this one.
            with connections[messages.db].cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        rows = list(rows)
    groups: list[dict] = []
    by_folded: dict[str, dict] = {}
    for row in rows:
        if not row["question"]:
            continue
        text = " ".join(row["question"].split())
        folded = _folded(text)
        terms = set(tokenize(text))
        group = by_folded.get(folded)
        if group is None and terms:
            best, best_overlap = None, 0.0
            for candidate in groups:
                overlap = len(terms & candidate["_terms"]) / len(terms | candidate["_terms"])
                if overlap > best_overlap:
                    best, best_overlap = candidate, overlap
            if best_overlap >= SAME_QUESTION_OVERLAP:
                group = best
        if group is None:
            group = {
                "question": text,
                "count": 0,
                "no_knowledge": 0,
                "thumbs_down": 0,
                "last_asked_at": row["created_at"],
                "conversation_id": row["conversation_id"],
                "phrasings": [],
                "_terms": terms,
            }
            groups.append(group)
        by_folded.setdefault(folded, group)
        group["count"] += 1
        group["no_knowledge"] += row["grounding"] == _GROUNDINGS.NO_KNOWLEDGE
        group["thumbs_down"] += bool(row["thumbs_down"])
        if text != group["question"] and text not in group["phrasings"] and len(group["phrasings"]) < 3:
            group["phrasings"].append(text)
    groups.sort(key=lambda group: (-group["count"], -group["last_asked_at"].timestamp()))
    for group in groups:
        del group["_terms"]
    return groups[:limit]


# --- Output shape, for the OpenAPI schema ------------------------------------------------------


class AnalyticsDay(serializers.Serializer):
    day = serializers.DateField()
    conversations = serializers.IntegerField()
    messages = serializers.IntegerField()
    questions = serializers.IntegerField()
    answers = serializers.IntegerField()
    answered_by_faq = serializers.IntegerField()
    answered_by_knowledge = serializers.IntegerField()
    no_knowledge = serializers.IntegerField()
    errors = serializers.IntegerField()
    agent_messages = serializers.IntegerField()


class AnalyticsChannel(AnalyticsDay):
    day = None
    channel = serializers.CharField()
    handoffs = serializers.IntegerField()
    resolved_by_bot = serializers.IntegerField()
    resolved_after_handoff = serializers.IntegerField()
    abandoned = serializers.IntegerField()


class UnansweredQuestion(serializers.Serializer):
    question = serializers.CharField(help_text="The most recent wording of the question.")
    count = serializers.IntegerField(help_text="How often it was asked in the period, in any wording.")
    no_knowledge = serializers.IntegerField()
    thumbs_down = serializers.IntegerField()
    last_asked_at = serializers.DateTimeField()
    conversation_id = serializers.UUIDField(help_text="The conversation where it was last asked.")
    phrasings = serializers.ListField(child=serializers.CharField(), help_text="Other wordings (up to 3).")


class FirstResponseTime(serializers.Serializer):
    conversations = serializers.IntegerField(help_text="Handed-off conversations an agent answered.")
    median_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)


class TenantAnalyticsOutput(serializers.Serializer):
    period = serializers.DictField()
    totals = serializers.DictField(child=serializers.IntegerField())
    rates = serializers.DictField(child=serializers.FloatField(allow_null=True))
    first_response = FirstResponseTime()
    channels = AnalyticsChannel(many=True)
    days = AnalyticsDay(many=True)
    unanswered = UnansweredQuestion(many=True)
