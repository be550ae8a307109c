"""The platform's one error format, for DRF views and for Django's own error handlers:

    {"error": {"code": "<snake_case>", "message": "<human sentence>", "details": {...}}}

It lives in `tenants` because every other app raises these errors and `tenants` is the app
that everything may import.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db.utils import InterfaceError as DatabaseInterfaceError
from django.db.utils import OperationalError as DatabaseOperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class APIError(exceptions.APIException):
    """An error with a stable machine code and a sentence for people."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details=None):
        super().__init__(detail=message or self.default_detail, code=code or self.default_code)
        self.error_code = code or self.default_code
        self.details = details or {}


class Conflict(APIError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "duplicate"
    default_detail = "This already exists."


class Forbidden(APIError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "permission_denied"
    default_detail = "You do not have permission to perform this action."


class NotFound(APIError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"
    default_detail = "Not found."


class TenantSuspended(Forbidden):
    default_code = "tenant_suspended"
    default_detail = "This tenant is suspended. Contact the platform operator."


class PayloadTooLarge(APIError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class UploadBudgetExceeded(PayloadTooLarge):
    """A request alone carries more files or bytes than the plan allows in an hour: waiting
    never lets it through, so it is a 413 rather than a 429."""

    default_code = "upload_budget_exceeded"

    def __init__(self, *, quota: str, limit: int, requested: int):
        unit = "files" if quota == "files" else "bytes"
        super().__init__(
            f"This request carries {requested:,} {unit}; the plan accepts {limit:,} {unit} an hour.",
            details={"quota": f"{quota}_per_hour", "limit": limit, "requested": requested},
        )
        self.quota, self.limit, self.requested = quota, limit, requested


class TooManyRequests(APIError):
    """429 with `Retry-After` (DRF adds the header from `wait`)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"
    default_detail = "Too many requests. Try again later."

    def __init__(self, message: str | None = None, *, wait: int, code: str | None = None, details=None):
        self.wait = max(1, int(wait))
        super().__init__(message, code=code, details={"retry_after_seconds": self.wait, **(details or {})})


class ServiceUnavailable(APIError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "A service the platform depends on is unavailable. Try again shortly."


# SQLSTATEs with which a PostgreSQL server ends a connection: class 08 (connection exception),
# 57P01 (terminated by an administrator: `pg_terminate_backend`, a fast shutdown), 57P02 (the
# crash of another backend), 57P03 (starting up, shutting down, in recovery), 57P05 (an idle
# session timed out).
_CONNECTION_LOST_STATES = {"57P01", "57P02", "57P03", "57P05"}


def database_connection_lost(exc: BaseException) -> bool:
    """Whether a database error says that the connection is gone or could not be opened (the
    server is down or restarting, the backend was terminated, the network dropped), rather
    than that a query failed on a working connection.

    Only such errors are an outage (503): a client may retry, and Django replaces the
    connection (`close_old_connections` finds it unusable). Everything else stays a 500 so
    that it is seen and fixed: programming, integrity and data errors; a query cancelled by
    `statement_timeout` or a session ended by `idle_in_transaction_session_timeout` (the
    server is up, our own request was too slow or held its transaction open); deadlocks and
    lock timeouts; and every SQLite error, "database is locked" included (SQLite is a file
    opened in-process, with no server to lose: its lock timeout means a writer held the lock
    for the whole `timeout`, a bug or an overload to look at).
    """
    if not isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        return False
    cause = exc.__cause__  # Django re-raises the driver's error `from` it
    if cause is None or not type(cause).__module__.startswith("psycopg"):
        return False
    state = getattr(cause, "sqlstate", None)
    if state is None:
        # An error psycopg raised itself: as an OperationalError, a connection that was lost
        # ("server closed the connection unexpectedly", "consuming input failed", "the
        # connection is closed") or could not be opened, whatever the server said ("connection
        # failed: ... Connection refused", "... too many clients", "... password authentication
        # failed": psycopg gives failed connects no SQLSTATE, and to a client each is an
        # outage); as an InterfaceError, a misuse of the driver ("the cursor is closed"): a bug.
        return isinstance(exc, DatabaseOperationalError)
    return state.startswith("08") or state in _CONNECTION_LOST_STATES


def dependency_error(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 for an exception that says a service the platform depends on is down (the
    database, the cache and rate-limit store, the task queue), or None. A client's request is
    never the cause."""
    from django_redis.exceptions import ConnectionInterrupted
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if database_connection_lost(exc):
        return ServiceUnavailable(
            "The platform's database is unavailable. Try again shortly.", code="database_unavailable"
        )
    if isinstance(exc, ConnectionInterrupted | RedisConnectionError | RedisTimeoutError):
        return ServiceUnavailable(
            "The platform's cache is unavailable. Try again shortly.", code="cache_unavailable"
        )
    if isinstance(exc, BrokerError):
        return ServiceUnavailable(
            "The platform's task queue is unavailable. Try again shortly.", code="task_queue_unavailable"
        )
    return None


def log_dependency_error(exc: BaseException, unavailable: ServiceUnavailable) -> None:
    """One warning per refusal, with the cause (the driver's own error, for the database)."""
    cause = exc.__cause__ or exc
    logger.warning(
        "A dependency is down (%s): %s: %s",
        unavailable.error_code,
        type(cause).__name__,
        str(cause).strip() or type(exc).__name__,
    )


def error_body(code: str, message: str, details: dict | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


# DRF exception class -> (code, message) when the exception carries no sentence of its own.
_DRF_CODES: list[tuple[type[Exception], str, str]] = [
    (exceptions.ValidationError, "validation_error", "The request is invalid; see details."),
    (exceptions.ParseError, "malformed_request", "The request body could not be parsed."),
    (exceptions.NotAuthenticated, "not_authenticated", "Authentication credentials were not provided."),
    (exceptions.AuthenticationFailed, "authentication_failed", "Authentication failed."),
    (exceptions.PermissionDenied, "permission_denied", "You do not have permission to perform this action."),
    (exceptions.NotFound, "not_found", "Not found."),
    (exceptions.MethodNotAllowed, "method_not_allowed", "This method is not allowed here."),
    (exceptions.NotAcceptable, "not_acceptable", "The requested response format is not available."),
    (exceptions.UnsupportedMediaType, "unsupported_media_type", "This content type is not supported."),
    (exceptions.Throttled, "rate_limited", "Too many requests."),
]


def _message_of(detail: Any, fallback: str) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict) and isinstance(detail.get("detail"), str):
        return detail["detail"]
    return fallback


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, reshaped into the platform's error format."""
    unavailable = dependency_error(exc)
    if unavailable is not None:
        log_dependency_error(exc, unavailable)
        exc = unavailable
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, TooManyFieldsSent):
        exc = APIError("The request has too many fields.", code="too_many_fields")
    elif isinstance(exc, TooManyFilesSent):
        exc = PayloadTooLarge("The request has too many files.", code="too_many_files")
    elif isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = Forbidden()

    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: let Django's 500 handler answer (in the same format) and log it.
        return None

    if isinstance(exc, APIError):
        body = error_body(exc.error_code, str(exc.detail), exc.details)
    else:
        code, message = "error", "The request failed."
        for exception_class, candidate_code, candidate_message in _DRF_CODES:
            if isinstance(exc, exception_class):
                code, message = candidate_code, candidate_message
                break
        details: dict[str, Any] = {}
        if isinstance(exc, exceptions.ValidationError):
            details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        else:
            message = _message_of(response.data, message)
            # simplejwt puts the precise reason (expired, wrong type) in `messages`.
            if isinstance(response.data, dict) and "messages" in response.data:
                details = {"reasons": [str(item.get("message", "")) for item in response.data["messages"]]}
            if isinstance(response.data, dict) and response.data.get("code") == "token_not_valid":
                code = "token_invalid"
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_seconds": int(exc.wait + 0.999)}
        body = error_body(code, message, details)

    response.data = body
    return response


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        error_body(code, message), status=status_code, json_dumps_params={"ensure_ascii": False}
    )
