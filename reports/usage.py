"""What a tenant used, per day and against its plan: tokens and answers (recorded by `llm` per
message), chat requests, conversations started, documents and bytes uploaded."""

import datetime as dt

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from rest_framework import serializers

from conversations.models import Conversation
from knowledge import selectors as knowledge_selectors
from knowledge.models import Document
from llm.selectors import usage_days, usage_month_tokens
from tenants.models import Tenant

_COUNTERS = (
    "prompt_tokens",
    "completion_tokens",
    "tokens",
    "messages",
    "requests",
    "conversations",
    "documents_added",
    "bytes_added",
)


def _per_day(queryset, **aggregates) -> dict[dt.date, dict]:
    rows = queryset.annotate(day=TruncDate("created_at")).values("day").annotate(**aggregates)
    return {row["day"]: row for row in rows}


def tenant_usage(*, tenant: Tenant, days: int) -> dict:
    today = timezone.localdate()
    start = today - dt.timedelta(days=days - 1)
    tokens = {row["day"]: row for row in usage_days(tenant=tenant, start=start, end=today)}
    conversations = _per_day(
        Conversation.objects.for_tenant(tenant).filter(created_at__date__gte=start), count=Count("id")
    )
    documents = _per_day(
        Document.objects.for_tenant(tenant).filter(created_at__date__gte=start),
        count=Count("id"),
        size=Sum("size_bytes"),
    )
    series = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        used = tokens.get(day, {})
        prompt, completion = used.get("prompt_tokens", 0), used.get("completion_tokens", 0)
        series.append(
            {
                "day": day,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "tokens": prompt + completion,
                "messages": used.get("messages", 0),
                "requests": used.get("requests", 0),
                "conversations": conversations.get(day, {}).get("count", 0),
                "documents_added": documents.get(day, {}).get("count", 0),
                "bytes_added": documents.get(day, {}).get("size") or 0,
            }
        )
    plan = tenant.plan
    document_count, storage_bytes = knowledge_selectors.tenant_storage(tenant=tenant)
    month_tokens = usage_month_tokens(tenant=tenant)
    return {
        "period": {"start": start, "end": today, "days": days},
        "plan": {"code": plan.code, "name": plan.name},
        "quotas": {
            "monthly_tokens": {"used": month_tokens, "limit": plan.monthly_token_quota or None},
            "documents": {"used": document_count, "limit": plan.max_documents or None},
            "storage_bytes": {"used": storage_bytes, "limit": plan.max_storage_bytes or None},
            "requests_per_minute": {"limit": plan.requests_per_minute or None},
        },
        "totals": {name: sum(day[name] for day in series) for name in _COUNTERS},
        "days": series,
    }


class _Quota(serializers.Serializer):
    used = serializers.IntegerField(required=False)
    limit = serializers.IntegerField(allow_null=True, help_text="None: unlimited.")


class _Day(serializers.Serializer):
    day = serializers.DateField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    tokens = serializers.IntegerField()
    messages = serializers.IntegerField(help_text="Answers from the assistant.")
    requests = serializers.IntegerField(help_text="Chat requests.")
    conversations = serializers.IntegerField(help_text="Conversations started.")
    documents_added = serializers.IntegerField()
    bytes_added = serializers.IntegerField()


class TenantUsageOutput(serializers.Serializer):
    period = serializers.DictField()
    plan = serializers.DictField()
    quotas = serializers.DictField(child=_Quota())
    totals = serializers.DictField(child=serializers.IntegerField())
    days = _Day(many=True)
