"""Every Prometheus metric family of the platform, in one place, and the helpers that record them.

Apps record through the functions below (never by creating metrics of their own), so that the
names, labels and buckets stay consistent and no label can grow without bound:
- HTTP routes are URL templates (`v1/tenants/<uuid:tenant_id>/documents/<int:pk>`), never paths;
- providers are kinds (`openai`, `anthropic`, ...), never models or base URLs;
- tenant ids label only two counters (tokens and chat messages), and at most
  `METRICS_TENANT_LABEL_LIMIT` distinct ones per process: later tenants count as `other`.

The exposition (`GET /metrics`, the worker's port), the gauges read from the database at scrape
time and the Celery signal handlers are in `platform_project/observability.py`.

With `PROMETHEUS_MULTIPROC_DIR` set (before this module is imported), every process writes its
values there and the exposition sums the processes: web processes and Celery's prefork children
alike (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import threading

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

# Seconds: from a fast API answer to a long answer or a slow provider.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_TASK_BUCKETS = (0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800)
_RATE_BUCKETS = (1, 5, 10, 20, 40, 80, 160, 320, 640)

HTTP_REQUESTS = Counter(
    "platform_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "platform_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the body for streamed answers).",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
WEBSOCKETS_OPEN = Gauge(
    "platform_websockets_open",
    "WebSockets open now, by kind (member: the chat API's; widget: website visitors').",
    ["kind"],
    multiprocess_mode="livesum",
)
CHAT_TIME_TO_FIRST_TOKEN = Histogram(
    "platform_chat_time_to_first_token_seconds",
    "From a question's arrival to the first token of its answer.",
    ["channel"],
    buckets=_LATENCY_BUCKETS,
)
CHAT_TOKENS_PER_SECOND = Histogram(
    "platform_chat_tokens_per_second",
    "Completion tokens per second of an answer, from its first token to its last.",
    ["provider"],
    buckets=_RATE_BUCKETS,
)
CHAT_MESSAGES = Counter(
    "platform_chat_messages",
    "Chat questions answered (or refused by a provider), by tenant (capped) and channel.",
    ["tenant", "channel"],
)
LLM_TOKENS = Counter(
    "platform_llm_tokens",
    "Tokens used by answers, by tenant (capped) and kind (prompt or completion).",
    ["tenant", "kind"],
)
PROVIDER_DURATION = Histogram(
    "platform_llm_provider_duration_seconds",
    "One provider call, from the request to the end of its stream, by provider kind and outcome.",
    ["provider", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "platform_llm_provider_errors",
    "Provider calls that failed, by provider kind and when (before_answer or mid_answer).",
    ["provider", "stage"],
)
RETRIEVAL_DURATION = Histogram(
    "platform_retrieval_duration_seconds",
    "Knowledge retrieval (embedding the query and searching), by mode.",
    ["mode"],
    buckets=_LATENCY_BUCKETS,
)
TASK_DURATION = Histogram(
    "platform_celery_task_duration_seconds",
    "Celery task run time, by task name and final state.",
    ["task", "state"],
    buckets=_TASK_BUCKETS,
)
TASK_FAILURES = Counter(
    "platform_celery_task_failures",
    "Celery tasks that raised, by task name.",
    ["task"],
)

OTHER_TENANTS = "other"
_tenant_labels: set[str] = set()
_tenant_labels_lock = threading.Lock()


def tenant_label(tenant_id) -> str:
    """The tenant's label value: its id while fewer than METRICS_TENANT_LABEL_LIMIT tenants have
    one in this process, `other` after, so that a thousand tenants make no thousand series."""
    value = str(tenant_id)
    with _tenant_labels_lock:
        if value in _tenant_labels:
            return value
        if len(_tenant_labels) < settings.METRICS_TENANT_LABEL_LIMIT:
            _tenant_labels.add(value)
            return value
    return OTHER_TENANTS


def http_request_observe(*, method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} else "other"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method, route).observe(seconds)


def chat_answer_observe(
    *,
    tenant_id,
    channel: str,
    first_token_seconds: float | None,
    provider: str | None,
    completion_tokens: int | None,
    streaming_seconds: float | None,
) -> None:
    """An answered question: time to first token, tokens per second, the tenant's message."""
    CHAT_MESSAGES.labels(tenant_label(tenant_id), channel).inc()
    if first_token_seconds is not None:
        CHAT_TIME_TO_FIRST_TOKEN.labels(channel).observe(first_token_seconds)
    if provider and completion_tokens and streaming_seconds and streaming_seconds > 0:
        CHAT_TOKENS_PER_SECOND.labels(provider).observe(completion_tokens / streaming_seconds)


def tokens_observe(*, tenant_id, prompt_tokens: int, completion_tokens: int) -> None:
    label = tenant_label(tenant_id)
    if prompt_tokens:
        LLM_TOKENS.labels(label, "prompt").inc(prompt_tokens)
    if completion_tokens:
        LLM_TOKENS.labels(label, "completion").inc(completion_tokens)


def provider_call_observe(*, provider: str, seconds: float, outcome: str) -> None:
    """`outcome`: ok, error_before_answer, error_mid_answer or closed (its consumer went away)."""
    PROVIDER_DURATION.labels(provider, outcome).observe(seconds)
    if outcome.startswith("error_"):
        PROVIDER_ERRORS.labels(provider, outcome.removeprefix("error_")).inc()


def retrieval_observe(*, mode: str, seconds: float) -> None:
    RETRIEVAL_DURATION.labels(mode if mode in {"vector", "keyword", "hybrid"} else "other").observe(seconds)


def websocket_opened(kind: str) -> None:
    WEBSOCKETS_OPEN.labels(kind).inc()


def websocket_closed(kind: str) -> None:
    WEBSOCKETS_OPEN.labels(kind).dec()


def task_observe(*, task: str, state: str, seconds: float | None) -> None:
    if seconds is not None:
        TASK_DURATION.labels(task, state).observe(seconds)
    if state == "FAILURE":
        TASK_FAILURES.labels(task).inc()
