"""What the network providers share: one TLS context, the guarded HTTP client (every connection
checked against internal addresses, no redirects followed), usage estimates, and error wording
that never carries a key."""

from __future__ import annotations

import functools
import re
import ssl

import httpx2
from django.conf import settings

from llm.base import LLMRequest, ProviderError, Usage
from llm.outbound import AddressRefused, guarded_async_client
from llm.tokens import estimate_tokens

# Server-sent details are shown to tenant admins and logged; anything key-like is masked.
_KEY_LIKE = re.compile(r"\b(?:sk|pk|key|api|ak)[-_][A-Za-z0-9_\-*.]{6,}", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_DETAIL_LIMIT = 300


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every client. Building one loads the CA bundle (about 20 ms of CPU);
    each stream gets its own short-lived client (so closing it surely closes the connection, on
    whatever event loop it runs), and the context is what makes such clients cheap."""
    return httpx2.create_ssl_context()


def guarded_http_client(client_class: type[httpx2.AsyncClient]) -> httpx2.AsyncClient:
    """The HTTP client to hand a client library (`client_class`: its own subclass, with its default
    timeouts): each connection goes only to a public address, resolved and checked when it is
    made (a name rebound to 127.0.0.1 after it was saved is refused), unless the operator allows
    private ones (`LLM_ALLOW_PRIVATE_BASE_URLS`); and a redirect is an answer, never followed."""
    return guarded_async_client(
        allow_private=settings.LLM_ALLOW_PRIVATE_BASE_URLS,
        verify=shared_ssl_context(),
        client_class=client_class,
    )


def prompt_text(request: LLMRequest) -> list[str]:
    return [request.system, *(message.content for message in request.messages)]


def estimated_usage(request: LLMRequest, answer: str, *, provider: str, model: str) -> Usage:
    """Usage by `estimate_tokens`, for a provider that reported none."""
    return Usage(
        prompt_tokens=sum(estimate_tokens(text) for text in prompt_text(request)),
        completion_tokens=estimate_tokens(answer),
        provider=provider,
        model=model,
    )


def redact(text: str, *, secret: str = "") -> str:
    """A server's error detail made safe to show: the key and key-like strings masked, URL
    credentials dropped, and the length bounded."""
    if secret:
        text = text.replace(secret, "***")
    text = _KEY_LIKE.sub("***", text)
    text = _URL_CREDENTIALS.sub("", text)
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def status_error(
    *, provider: str, label: str, status: int, detail: str = "", secret: str = ""
) -> ProviderError:
    """A ProviderError for an HTTP error status: 408, 409, 429 and 5xx may pass (retryable),
    a refused key or a bad request will not."""
    if status in (401, 403):
        reason = "refused the API key" if status == 401 else "denied access with this API key"
        return ProviderError(
            f"{label} {reason} (HTTP {status}).", provider=provider, retryable=False, status=status
        )
    if status == 429:
        message = f"{label} is rate limiting this account (HTTP 429)."
        return ProviderError(message, provider=provider, retryable=True, status=status)
    if 300 <= status < 400:
        # Never followed: the target could be an internal address the connection check would
        # have to catch, and a provider's API does not move by redirect.
        message = f"{label} answered with a redirect (HTTP {status}), which the platform does not follow."
        return ProviderError(message, provider=provider, retryable=False, status=status)
    if status >= 500 or status in (408, 409):
        message = f"{label} failed with HTTP {status}."
        return ProviderError(message, provider=provider, retryable=True, status=status)
    safe = redact(detail, secret=secret)
    message = f"{label} refused the request (HTTP {status})" + (f": {safe}" if safe else ".")
    return ProviderError(message, provider=provider, retryable=False, status=status)


def timeout_error(*, provider: str, label: str, seconds: float) -> ProviderError:
    return ProviderError(f"{label} did not answer within {seconds:g} s.", provider=provider, retryable=True)


def connection_error(*, provider: str, label: str) -> ProviderError:
    return ProviderError(
        f"{label} could not be reached, or the connection broke.", provider=provider, retryable=True
    )


def malformed_error(*, provider: str, label: str) -> ProviderError:
    return ProviderError(f"{label} sent a malformed response.", provider=provider, retryable=True)


def truncated_error(*, provider: str, label: str) -> ProviderError:
    return ProviderError(
        f"{label}'s stream ended before the answer was complete.", provider=provider, retryable=True
    )


def refused_address_error(refused: AddressRefused, *, provider: str, label: str) -> ProviderError:
    return ProviderError(
        f"{label} was not called: {refused.host} resolves to an internal address ({refused.address}); "
        "the platform only calls public servers unless its operator allows private ones.",
        provider=provider,
        retryable=False,
    )


def missing_key_error(*, provider: str, label: str) -> ProviderError:
    return ProviderError(f"{label} has no API key configured.", provider=provider, retryable=False)


def transport_error(error: httpx2.HTTPError, *, provider: str, label: str, seconds: float) -> ProviderError:
    """An httpx error that escaped the client library (anthropic lets those of a stream's body out)."""
    if isinstance(error, httpx2.TimeoutException):
        return timeout_error(provider=provider, label=label, seconds=seconds)
    return connection_error(provider=provider, label=label)


# A stream's body that does not parse surfaces as one of these from inside the client libraries
# (json.JSONDecodeError and pydantic's ValidationError are ValueErrors).
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError)
