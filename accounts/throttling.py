"""Limits of the accounts endpoints that need more than a rate per client address.

Sign-in: one limiter for the API, the dashboard and the Django admin. Failures are counted in
fixed windows of `LOGIN_FAILURE_WINDOW_SECONDS`, three ways:

- per email from one client address (`LOGIN_FAILURE_LIMIT`): guessing one account's password
  blocks the guesser's address, not the owner, who signs in from elsewhere;
- per client address over all emails (`LOGIN_ADDRESS_FAILURE_LIMIT`): one password sprayed over
  many accounts, or many accounts tried in turn, stops at this count;
- per email over all addresses (`LOGIN_EMAIL_FAILURE_LIMIT`, far higher): the ceiling of a guess
  spread over many addresses. This is the only count a stranger can fill for someone else, it
  takes many addresses to do so, it lasts one window at most, and a password reset clears it.

A success clears the email's count from that address (never the address's own count: signing in
to one's own account between guesses must not reset a sprayer).

Invitation acceptance is throttled per token as well as per address, and password-reset
requests per email as well as per address (tenants/throttling.py has the address throttles).
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import hash_token, normalise_email
from tenants.throttling import address_bucket


def _email_digest(email: str) -> str:
    # Cache keys carry no email address in clear.
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


def _sign_in_counts(*, email: str, address: str | None) -> list[tuple[str, int]]:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    number = int(time.time() // window)
    digest, bucket = _email_digest(email), address_bucket(address)
    return [
        (f"sign-in-failures:{number}:email-address:{digest}:{bucket}", settings.LOGIN_FAILURE_LIMIT),
        (f"sign-in-failures:{number}:address:{bucket}", settings.LOGIN_ADDRESS_FAILURE_LIMIT),
        (f"sign-in-failures:{number}:email:{digest}", settings.LOGIN_EMAIL_FAILURE_LIMIT),
    ]


def _seconds_left_in_window() -> int:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    return max(1, int(window - time.time() % window) + 1)


def sign_in_retry_after(*, email: str, address: str | None) -> int | None:
    """Seconds until this email may try again from this address, or None when it may try now."""
    counts = _sign_in_counts(email=email, address=address)
    values = cache.get_many([key for key, _limit in counts])
    if any(values.get(key, 0) >= limit for key, limit in counts):
        return _seconds_left_in_window()
    return None


def sign_in_failure_record(*, email: str, address: str | None) -> None:
    timeout = settings.LOGIN_FAILURE_WINDOW_SECONDS + 1
    for key, _limit in _sign_in_counts(email=email, address=address):
        cache.add(key, 0, timeout=timeout)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=timeout)


def sign_in_success_record(*, email: str, address: str | None) -> None:
    own_count, _address_count, _email_count = _sign_in_counts(email=email, address=address)
    cache.delete(own_count[0])


def sign_in_failures_forget(*, email: str) -> None:
    """After a password reset: the owner proved control of the mailbox, so the count strangers
    filled for this email over all addresses no longer holds them back."""
    _own, _address, (email_key, _limit) = _sign_in_counts(email=email, address=None)
    cache.delete(email_key)


def _field(request, name: str) -> str | None:
    """A string field of a DRF request's body or a Django form post, without failing on
    bodies of the wrong shape (validation answers those)."""
    data = getattr(request, "data", None)
    if data is None:
        data = request.POST
    value = data.get(name) if hasattr(data, "get") else None
    return value if isinstance(value, str) and value else None


class InvitationTokenThrottle(SimpleRateThrottle):
    """Attempts per invitation token, from any address (the token's hash names the bucket)."""

    scope = "invitation_accept_token"

    def get_cache_key(self, request, view):
        token = _field(request, "token")
        if token is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": hash_token(token)}


class PasswordResetEmailThrottle(SimpleRateThrottle):
    """Reset emails per recipient, whoever asks: nobody can flood a mailbox with them."""

    scope = "password_reset_email"

    def get_cache_key(self, request, view):
        email = _field(request, "email")
        if email is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": _email_digest(email)}
