"""Origins, compared exactly: scheme, host and port (a browser's `Origin` header leaves out a
default port, so `https://shop.example.com:443` and `https://shop.example.com` are one origin)."""

from urllib.parse import urlsplit

from django.utils.translation import gettext as _

DEFAULT_PORTS = {"http": 80, "https": 443}
# How many origins one widget may list (the API and the dashboard's form alike).
MAX_ORIGINS = 20


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case with a default port left out, or None for anything
    that is not an origin (a path, a query, credentials, another scheme, `null`)."""
    if not isinstance(value, str) or not value or len(value) > 300:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    normalized = normalize_origin(origin or "")
    return normalized is not None and normalized in allowed


def origins_normalize(values: list[str]) -> tuple[list[str], list[str]]:
    """The given origins normalised and without repeats (in their order), and one error per value
    that is not an origin. The one rule behind the API's and the dashboard's origin fields."""
    normalized, errors = [], []
    for value in values:
        origin = normalize_origin(value)
        if origin is None:
            errors.append(
                _("%(value)s is not an origin: give scheme://host[:port], nothing after it.")
                % {"value": value}
            )
        elif origin not in normalized:
            normalized.append(origin)
    return normalized, errors
