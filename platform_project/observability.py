"""Seeing inside the running platform: the request middleware (request id, one log line and the
HTTP metrics per request), open WebSockets, `GET /metrics` and its access rules, the gauges read
from the database at scrape time, the Celery signal handlers (task metrics, the request id
carried into tasks) and the Celery worker's own metrics port.

The metric families themselves are defined in `tenants/metrics.py`, the log context and formats
in `tenants/logcontext.py`: both in the kernel, so that every app can record and log through them.
"""

from __future__ import annotations

import atexit
import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from knowledge.models import Document
from tenants import logcontext, metrics
from tenants.errors import json_error
from tenants.throttling import client_address

request_logger = logging.getLogger("platform.request")
task_logger = logging.getLogger("platform.task")

REQUEST_ID_HEADER = "X-Request-ID"
# The Celery message header that carries the request id of whatever queued the task.
TASK_REQUEST_ID_HEADER = "x_request_id"


def multiprocess_dir() -> str | None:
    """prometheus-client's multiprocess directory, when this process writes its values there."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# --- HTTP requests ---------------------------------------------------------------------------


def _route(request) -> str:
    """The URL pattern that answered (`v1/tenants/<uuid:tenant_id>/documents/<int:pk>`), never the
    path: a path holds ids and would make a series per object."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.route or match.url_name or "unnamed"


def _caller_fields(request) -> dict:
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    return {
        "tenant_id": tenant.pk if tenant is not None else None,
        "user_id": user.pk if user is not None and user.is_authenticated else None,
    }


class RequestObservabilityMiddleware:
    """First in the middleware: gives each request its id (the caller's `X-Request-ID` when it is
    sane), binds it to every log line the request writes, returns it in the response, and when
    the answer is complete records the HTTP metrics and writes one line: method, route, status,
    duration, tenant, user or visitor. Streamed answers (SSE) are measured to their last byte."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_id = logcontext.request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = logcontext.replace({"request_id": request_id})
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            route = _route(request)
            # The tenant, user or visitor the view bound (an API token is read inside the view).
            context = {**_caller_fields(request), **logcontext.current(), "route": route}
            if response.streaming:
                self._measure_stream(request, response, context, started)
            else:
                _finished(request, response.status_code, context, started)
            return response
        finally:
            logcontext.restore(token)

    def _measure_stream(self, request, response, context, started):
        def finish():
            _finished(request, response.status_code, context, started)

        if response.is_async:
            response.streaming_content = _async_stream(response.streaming_content, context, finish)
        else:
            response.streaming_content = _sync_stream(response.streaming_content, context, finish)


def _finished(request, status: int, context: dict, started: float) -> None:
    seconds = time.perf_counter() - started
    metrics.http_request_observe(
        method=request.method, route=context["route"], status=status, seconds=seconds
    )
    token = logcontext.replace(context)
    try:
        request_logger.info(
            "%s %s %s %.0fms",
            request.method,
            request.path,
            status,
            seconds * 1000,
            extra={"method": request.method, "status": status, "duration_ms": round(seconds * 1000, 1)},
        )
    finally:
        logcontext.restore(token)


async def _async_stream(content: AsyncIterator, context: dict, finish) -> AsyncIterator:
    # Runs in the server's task after the middleware returned: bind the request's context again
    # so that lines logged while the answer streams carry it.
    logcontext.replace(context)
    try:
        async for chunk in content:
            yield chunk
    finally:
        finish()


def _sync_stream(content: Iterator, context: dict, finish) -> Iterator:
    logcontext.replace(context)
    try:
        yield from content
    finally:
        finish()


# --- WebSockets --------------------------------------------------------------------------------


def count_open_websockets(application, kind: str):
    """Wrap a WebSocket application: a socket counts as open from its accept to the end of its
    consumer (refused handshakes and sockets closed before accepting never count)."""

    async def counted(scope, receive, send):
        accepted = False

        async def send_counting(message):
            nonlocal accepted
            await send(message)
            if message.get("type") == "websocket.accept" and not accepted:
                accepted = True
                metrics.websocket_opened(kind)

        try:
            return await application(scope, receive, send_counting)
        finally:
            if accepted:
                metrics.websocket_closed(kind)

    return counted


# --- GET /metrics ------------------------------------------------------------------------------


class DatabaseCollector:
    """Gauges read from the database when scraped (one grouped query): documents by status, and
    the ingestion queue's depth (documents pending or processing), across all tenants."""

    def collect(self):
        counts = dict.fromkeys(Document.Status.values, 0)
        try:
            for row in Document.objects.values("status").annotate(count=Count("id")).order_by():
                counts[row["status"]] = row["count"]
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database did
            logging.getLogger(__name__).warning("Metrics: the database could not be read", exc_info=True)
            return
        documents = GaugeMetricFamily(
            "platform_documents", "Documents by ingestion status, all tenants.", labels=["status"]
        )
        for status, count in sorted(counts.items()):
            documents.add_metric([status], count)
        yield documents
        yield GaugeMetricFamily(
            "platform_ingestion_queue_depth",
            "Documents waiting for or in ingestion (pending or processing), all tenants.",
            value=counts[Document.Status.PENDING] + counts[Document.Status.PROCESSING],
        )


def exposition(*, with_database: bool) -> bytes:
    """The metrics of this process, or of every process writing to the multiprocess directory."""
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry = REGISTRY
    if not with_database:
        return generate_latest(registry)
    scrape = CollectorRegistry()
    scrape.register(_Union(registry))
    scrape.register(DatabaseCollector())
    return generate_latest(scrape)


class _Union:
    """Another registry's families, as one collector (a registry cannot be registered twice)."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in settings.METRICS_ALLOWED_ADDRESSES]


def metrics_access(*, address: str | None, authorization: str) -> int | None:
    """None when the caller may read the metrics, else the status to refuse with: 401 for a
    missing or wrong bearer token (when a token is configured), 404 when no token is configured
    and the address is not allowed (nothing there for that caller)."""
    if address:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            ip = None
        if ip is not None and any(ip in network for network in _networks()):
            return None
    expected = settings.METRICS_TOKEN
    if not expected:
        return 404
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected.encode()):
        return None
    return 401


def metrics_view(request):
    """`GET /metrics`: Prometheus text format, for a configured bearer token or an allowed address."""
    refusal = metrics_access(
        address=client_address(request), authorization=request.headers.get("Authorization", "")
    )
    if refusal == 404:
        return json_error(404, "not_found", "Not found.")
    if refusal == 401:
        response = json_error(401, "not_authenticated", "A valid metrics token is required.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if request.method not in ("GET", "HEAD"):
        response = json_error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        response["Allow"] = "GET, HEAD"
        return response
    return HttpResponse(exposition(with_database=True), content_type=CONTENT_TYPE_LATEST)


# --- Celery ------------------------------------------------------------------------------------

_task_started: dict[str, float] = {}
_task_tokens: dict[str, object] = {}


def task_request_id_attach(headers=None, **_):
    """before_task_publish: the request (or task) that queues a task passes its id along."""
    request_id = logcontext.current().get("request_id")
    if headers is not None and request_id and TASK_REQUEST_ID_HEADER not in headers:
        headers[TASK_REQUEST_ID_HEADER] = request_id


def _queued_request_id(task) -> str | None:
    request = task.request
    value = getattr(request, TASK_REQUEST_ID_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(TASK_REQUEST_ID_HEADER)
    return logcontext.request_id_from(value) if value else None


def task_started(task_id=None, task=None, **_):
    """task_prerun: the task's log lines carry the request id that queued it, and its task id."""
    _task_started[task_id] = time.perf_counter()
    # An eager task (run inside the request that queued it) keeps that request's id.
    request_id = (
        _queued_request_id(task) or logcontext.current().get("request_id") or logcontext.new_request_id()
    )
    _task_tokens[task_id] = logcontext.replace({"request_id": request_id, "task_id": task_id})


def task_finished(task_id=None, task=None, state=None, **_):
    """task_postrun: the task's duration by name and state (a FAILURE also counts a failure)."""
    started = _task_started.pop(task_id, None)
    metrics.task_observe(
        task=getattr(task, "name", "unknown"),
        state=state or "UNKNOWN",
        seconds=time.perf_counter() - started if started is not None else None,
    )
    task_logger.info(
        "Task %s %s",
        getattr(task, "name", "unknown"),
        state,
        extra={"task": getattr(task, "name", "unknown"), "state": state},
    )
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            logcontext.restore(token)
        except ValueError:  # reset from another context (an eager task inside a request)
            logcontext.replace({})


def connect_celery_signals() -> None:
    from celery import signals

    signals.before_task_publish.connect(task_request_id_attach, weak=False)
    signals.task_prerun.connect(task_started, weak=False)
    signals.task_postrun.connect(task_finished, weak=False)
    signals.worker_init.connect(_worker_metrics_serve, weak=False)
    signals.worker_process_shutdown.connect(_process_dead, weak=False)


def multiprocess_dir_prepare(default: Path) -> None:
    """For a command that starts the platform's processes: PROMETHEUS_MULTIPROC_DIR (`default`
    unless set) emptied of an earlier run's values and handed to the processes it starts."""
    directory = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(default)))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def process_exit_register() -> None:
    """In multiprocess mode, a process that exits takes its live gauges (open sockets) with it."""
    if multiprocess_dir():
        atexit.register(_process_dead)


def _process_dead(pid=None, **_):
    directory = multiprocess_dir()
    if directory:
        multiprocess.mark_process_dead(pid or os.getpid(), directory)


# --- The worker's metrics port -------------------------------------------------------------------


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def _worker_metrics_app(environ, start_response):
    refusal = metrics_access(
        address=environ.get("REMOTE_ADDR"), authorization=environ.get("HTTP_AUTHORIZATION", "")
    )
    if refusal is not None:
        start_response(f"{refusal} {'Unauthorized' if refusal == 401 else 'Not Found'}", [])
        return [b""]
    # The database gauges come from the web processes' /metrics, not once more from each worker.
    body = exposition(with_database=False)
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
    return [body]


def worker_metrics_serve(port: int, address: str):
    """Serve the worker's metrics (every prefork child's, through the multiprocess directory)
    on `address:port`, same access rules as `/metrics`, in a daemon thread. Returns the server."""
    server = make_server(address, port, _worker_metrics_app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    atexit.register(server.shutdown)
    return server


def _worker_metrics_serve(**_):
    """worker_init (the worker's main process): open the port when METRICS_WORKER_PORT is set."""
    if not settings.METRICS_WORKER_PORT:
        return
    if not multiprocess_dir():
        logging.getLogger(__name__).warning(
            "METRICS_WORKER_PORT is set but PROMETHEUS_MULTIPROC_DIR is not: the prefork children's "
            "task metrics cannot reach the worker's port."
        )
    worker_metrics_serve(settings.METRICS_WORKER_PORT, settings.METRICS_WORKER_ADDRESS)
