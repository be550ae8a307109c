"""Django's own error handlers, answering in the platform's error format.

API clients get JSON; a browser asking for HTML (dashboard, admin) gets a plain page.
"""

import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponsePermanentRedirect
from django.shortcuts import render
from django.urls import Resolver404, resolve

from tenants.errors import dependency_error, json_error, log_dependency_error

_API_PREFIXES = ("/v1/", "/healthz", "/readyz", "/ws/")


def wants_html(path: str, accept: str) -> bool:
    """Whether to answer an error with a page: a browser's request outside the API."""
    if path.startswith(_API_PREFIXES):
        return False
    return "text/html" in accept


def _wants_html(request) -> bool:
    return wants_html(request.path, request.headers.get("Accept", ""))


def _respond(request, status: int, code: str, message: str):
    if _wants_html(request):
        return render(request, "error.html", {"status": status, "message": message}, status=status)
    return json_error(status, code, message)


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return _respond(request, 413, "payload_too_large", "The request body is too large.")
    return _respond(request, 400, "bad_request", "The request could not be understood.")


def permission_denied(request, exception=None):
    return _respond(request, 403, "permission_denied", "You do not have permission to see this.")


def not_found(request, exception=None):
    return _respond(request, 404, "not_found", "Not found.")


def api_path_not_found(request, unmatched: str = ""):
    """The last URL pattern under /v1/: an unknown API path answers 404 in the error format in
    every mode (with DEBUG on, Django would otherwise answer its HTML page listing every URL
    pattern). A path that only misses its trailing slash is redirected, as APPEND_SLASH does."""
    if settings.APPEND_SLASH and not request.path_info.endswith("/") and request.method in ("GET", "HEAD"):
        try:
            match = resolve(request.path_info + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_path_not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return json_error(404, "not_found", "Not found.")


def server_error(request):
    # Django calls this handler inside its `except`: the exception at hand failed the request.
    # A dependency that is down (the database lost, outside DRF: a dashboard page, a
    # middleware) is a 503 that says so, not a 500.
    failure = sys.exc_info()[1]
    unavailable = dependency_error(failure) if failure is not None else None
    if unavailable is not None:
        log_dependency_error(failure, unavailable)
        return _respond(request, 503, unavailable.error_code, str(unavailable.detail))
    return _respond(request, 500, "server_error", "Something went wrong on our side; it has been logged.")


def csrf_failure(request, reason=""):
    return _respond(
        request, 403, "csrf_failed", "The form expired or was sent from elsewhere; reload and try again."
    )
