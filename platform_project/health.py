"""Liveness and readiness. /readyz reports every dependency and answers 503 when a required
one is down, so a load balancer stops sending traffic to an instance that cannot serve it."""

import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from rest_framework.exceptions import APIException, AuthenticationFailed

from knowledge.vector_index import vector_index_ping
from platform_project.celery import app as celery_app
from tenants.authentication import TenantJWTAuthentication

CHECK_TIMEOUT_SECONDS = 2.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("the cache did not return what was written")
    cache.delete(key)


def _check_broker() -> None:
    with celery_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)


def _check_vector_index() -> None:
    vector_index_ping(timeout=CHECK_TIMEOUT_SECONDS)


def _backend_name(check: str) -> str:
    if check == "database":
        return connection.vendor
    if check == "cache":
        return settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    if check == "broker":
        return settings.CELERY_BROKER_URL.split(":", 1)[0]
    return "milvus"


CHECKS = {
    "database": (_check_database, True),
    "cache": (_check_cache, True),
    "broker": (_check_broker, True),
    "vector_index": (_check_vector_index, settings.VECTOR_INDEX_REQUIRED),
}


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _caller_is_operator(request) -> bool:
    """A platform admin signed in to the dashboard or the Django admin, or holding a valid access
    token. A missing, expired or forged token only means "not an operator" here."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_platform_admin:
        return True
    try:
        authenticated = TenantJWTAuthentication().authenticate(request)
    except (AuthenticationFailed, APIException):
        return False
    return authenticated is not None and authenticated[0].is_platform_admin


@require_GET
def readyz(request):
    """Every dependency's state for anyone (load balancers, monitors); the error text, which
    names hosts, ports and drivers, for operators only."""
    show_errors = _caller_is_operator(request)
    report = {}
    ready = True
    for name, (check, required) in CHECKS.items():
        started = time.perf_counter()
        entry = {"backend": _backend_name(name), "required": required}
        try:
            check()
            entry["status"] = "ok"
        except Exception as error:  # noqa: BLE001 - any failure means "down", reported as such
            entry["status"] = "down"
            if show_errors:
                entry["error"] = f"{type(error).__name__}: {error}"[:300]
            ready = ready and not required
        entry["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        report[name] = entry
    return JsonResponse(
        {"status": "ready" if ready else "not_ready", "checks": report}, status=200 if ready else 503
    )
