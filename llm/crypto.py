"""Encryption at rest for tenants' provider API keys.

Fernet (AES-128-CBC with HMAC-SHA256) through `MultiFernet`, so that keys can rotate: the first
key of `settings.LLM_ENCRYPTION_KEYS` encrypts, every key in the list decrypts, and
`reencrypt_secret()` moves a token onto the first key. Without configured keys one key is derived
from `SECRET_KEY`, so that the embedded default needs no setup; changing `SECRET_KEY` then makes
stored API keys unreadable (they must be entered again), which is why production should set
`LLM_ENCRYPTION_KEYS` (generate one with `Fernet.generate_key()`).
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret that none of the configured keys opens (a lost or rotated-out key)."""

    def __init__(self) -> None:
        super().__init__(
            "A stored API key cannot be decrypted with the configured LLM_ENCRYPTION_KEYS "
            "(the key it was encrypted with is gone); enter the API key again."
        )


def _derived_key() -> bytes:
    digest = hashlib.sha256(f"llm-api-keys:{settings.SECRET_KEY}".encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _fernet() -> MultiFernet:
    configured = [key for key in (settings.LLM_ENCRYPTION_KEYS or []) if key]
    keys: list[bytes | str] = list(configured) or [_derived_key()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured(
            "LLM_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes, as Fernet.generate_key() makes)."
        ) from error


def encrypt_secret(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    """The plain secret; `SecretUnreadable` when no configured key opens the token."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as error:
        raise SecretUnreadable() from error


def reencrypt_secret(token: str) -> str:
    """The same secret encrypted with the current first key (for key rotation)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except (InvalidToken, ValueError) as error:
        raise SecretUnreadable() from error
