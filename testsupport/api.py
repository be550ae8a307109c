"""The API as the tests see it: its error format, and the bad credentials it must refuse."""

import base64
import json
from datetime import timedelta

from rest_framework_simplejwt.tokens import AccessToken, RefreshToken


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is an error of this status (and code) in the project's error format;
    returns the error object (code, message, details)."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["message"], error
    if code:
        assert error["code"] == code, error
    return error


def tampered(token: str) -> str:
    """The token with a claim changed and its signature kept: a forgery."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "tenant_admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def bad_credentials(user, tenant) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    refresh["tenant_id"] = str(tenant.pk)
    refresh["role"] = "end_user"
    expired = AccessToken.for_user(user)
    expired["tenant_id"] = str(tenant.pk)
    expired.set_exp(lifetime=-timedelta(seconds=5))
    valid = str(refresh.access_token)
    return {
        "malformed": "Bearer not-a-jwt",
        "expired": f"Bearer {expired}",
        "tampered": f"Bearer {tampered(valid)}",
        "refresh_as_access": f"Bearer {refresh}",
        "wrong_scheme": f"Token {valid}",
    }
