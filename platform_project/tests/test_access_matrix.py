"""Every tenant endpoint against the role matrix of DESIGN.md, the other tenant, and every kind
of bad token. New tenant endpoints join ENDPOINTS, and the tests below cover them."""

import base64
import json
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from conftest import client_for
from tenants.roles import PLATFORM_ADMIN, Capability, Role, role_can


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    capability: Capability
    success: int
    body: dict | None = None

    def __str__(self) -> str:
        return self.name


ENDPOINTS = [
    Endpoint("tenant-read", "get", "/v1/tenants/{tenant}", Capability.READ_TENANT, 200),
    Endpoint(
        "tenant-update",
        "patch",
        "/v1/tenants/{tenant}",
        Capability.UPDATE_TENANT,
        200,
        {"description": "新的描述"},
    ),
    Endpoint("tenant-delete", "delete", "/v1/tenants/{tenant}", Capability.MANAGE_TENANTS, 204),
    Endpoint("member-list", "get", "/v1/tenants/{tenant}/members", Capability.MANAGE_MEMBERS, 200),
    Endpoint("member-read", "get", "/v1/tenants/{tenant}/members/{member}", Capability.MANAGE_MEMBERS, 200),
    Endpoint(
        "member-update",
        "patch",
        "/v1/tenants/{tenant}/members/{member}",
        Capability.MANAGE_MEMBERS,
        200,
        {"role": "end_user"},
    ),
    Endpoint(
        "member-delete", "delete", "/v1/tenants/{tenant}/members/{member}", Capability.MANAGE_MEMBERS, 204
    ),
    Endpoint("invitation-list", "get", "/v1/tenants/{tenant}/invitations", Capability.MANAGE_MEMBERS, 200),
    Endpoint(
        "invitation-create",
        "post",
        "/v1/tenants/{tenant}/invitations",
        Capability.MANAGE_MEMBERS,
        201,
        {"email": "new@example.com", "role": "agent"},
    ),
    Endpoint(
        "invitation-read",
        "get",
        "/v1/tenants/{tenant}/invitations/{invitation}",
        Capability.MANAGE_MEMBERS,
        200,
    ),
    Endpoint(
        "invitation-delete",
        "delete",
        "/v1/tenants/{tenant}/invitations/{invitation}",
        Capability.MANAGE_MEMBERS,
        204,
    ),
    Endpoint("document-list", "get", "/v1/tenants/{tenant}/documents", Capability.READ_KNOWLEDGE, 200),
    Endpoint(
        "document-read", "get", "/v1/tenants/{tenant}/documents/{document}", Capability.READ_KNOWLEDGE, 200
    ),
    Endpoint(
        "document-chunks",
        "get",
        "/v1/tenants/{tenant}/documents/{document}/chunks",
        Capability.READ_KNOWLEDGE,
        200,
    ),
    Endpoint(
        "document-delete",
        "delete",
        "/v1/tenants/{tenant}/documents/{document}",
        Capability.MANAGE_DOCUMENTS,
        204,
    ),
    Endpoint(
        "document-reindex",
        "post",
        "/v1/tenants/{tenant}/documents/{document}/reindex",
        Capability.MANAGE_DOCUMENTS,
        202,
        {},
    ),
    Endpoint(
        "documents-reindex",
        "post",
        "/v1/tenants/{tenant}/documents/reindex",
        Capability.MANAGE_DOCUMENTS,
        202,
        {},
    ),
    Endpoint(
        "knowledge-search",
        "post",
        "/v1/tenants/{tenant}/knowledge/search",
        Capability.READ_KNOWLEDGE,
        200,
        {"query": "退貨政策"},
    ),
    Endpoint("assistant-read", "get", "/v1/tenants/{tenant}/assistant", Capability.READ_TENANT, 200),
    Endpoint(
        "assistant-update",
        "put",
        "/v1/tenants/{tenant}/assistant",
        Capability.UPDATE_TENANT,
        200,
        {"system_prompt": "請用繁體中文回答。", "providers": [{"kind": "offline"}]},
    ),
    Endpoint("chat", "post", "/v1/tenants/{tenant}/chat", Capability.CHAT, 200, {"message": "退貨政策"}),
    Endpoint(
        "chat-stream",
        "post",
        "/v1/tenants/{tenant}/chat/stream",
        Capability.CHAT,
        200,
        {"message": "退貨政策"},
    ),
    Endpoint(
        "conversation-list",
        "get",
        "/v1/tenants/{tenant}/chat/conversations",
        Capability.READ_CONVERSATIONS,
        200,
    ),
    Endpoint(
        "conversation-read",
        "get",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}",
        Capability.READ_CONVERSATIONS,
        200,
    ),
    Endpoint(
        "conversation-delete",
        "delete",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}",
        Capability.DELETE_CONVERSATIONS,
        204,
    ),
    Endpoint(
        "message-feedback",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/messages/{message}/feedback",
        Capability.CHAT,
        201,
        {"rating": "up", "comment": "有幫助"},
    ),
    Endpoint(
        "conversation-handoff",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/handoff",
        Capability.CHAT,
        200,
        {"reason": "請真人協助"},
    ),
    Endpoint(
        "conversation-take",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/take",
        Capability.HANDLE_CONVERSATIONS,
        200,
        {},
    ),
    Endpoint(
        "conversation-reply",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/reply",
        Capability.HANDLE_CONVERSATIONS,
        201,
        {"message": "您好，我是客服。"},
    ),
    Endpoint(
        "conversation-close",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/close",
        Capability.HANDLE_CONVERSATIONS,
        200,
        {},
    ),
    Endpoint("usage", "get", "/v1/tenants/{tenant}/usage", Capability.VIEW_USAGE, 200),
    Endpoint("audit", "get", "/v1/tenants/{tenant}/audit", Capability.VIEW_AUDIT, 200),
    Endpoint("analytics", "get", "/v1/tenants/{tenant}/analytics", Capability.VIEW_USAGE, 200),
    Endpoint(
        "export-create",
        "post",
        "/v1/tenants/{tenant}/exports",
        Capability.VIEW_USAGE,
        202,
        {"format": "csv", "since": "2025-01-01", "until": "2025-01-31"},
    ),
    Endpoint("export-list", "get", "/v1/tenants/{tenant}/exports", Capability.VIEW_USAGE, 200),
    Endpoint("export-read", "get", "/v1/tenants/{tenant}/exports/{export}", Capability.VIEW_USAGE, 200),
    Endpoint(
        "data-erasure",
        "post",
        "/v1/tenants/{tenant}/data-erasure",
        Capability.MANAGE_MEMBERS,
        200,
        {"contact_id": "{contact}"},
    ),
]
WITH_BODY = [endpoint for endpoint in ENDPOINTS if endpoint.body]
ROLES = [PLATFORM_ADMIN, *Role.values]


def call(client, endpoint: Endpoint, ids: dict, body=None):
    url = endpoint.path.format(**ids)
    payload = endpoint.body if body is None else body
    if isinstance(payload, dict):
        # A body may name an object of the fixture too: {"contact_id": "{contact}"}.
        payload = {
            key: value.format(**ids) if isinstance(value, str) and value.startswith("{") else value
            for key, value in payload.items()
        }
    if endpoint.method in {"post", "patch", "put"}:
        return getattr(client, endpoint.method)(url, payload, format="json")
    return getattr(client, endpoint.method)(url)


def assert_error(response, status: int, code: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_role_matrix_decides_each_endpoint(endpoint, role, tenant_a, platform_admin, objects_of_a):
    user = platform_admin if role == PLATFORM_ADMIN else tenant_a.user(role)
    response = call(client_for(user, tenant=tenant_a.tenant), endpoint, objects_of_a)
    if role_can(role, endpoint.capability):
        assert response.status_code == endpoint.success, response.content
    else:
        assert_error(response, 403, "permission_denied")


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_it_hides_tenant_a_from_every_user_of_tenant_b(endpoint, role, tenant_a, tenant_b, objects_of_a):
    response = call(tenant_b.client(role), endpoint, objects_of_a)
    assert_error(response, 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if "{" in e.path.replace("{tenant}", "")], ids=str)
def test_it_hides_tenant_a_objects_behind_tenant_b_url(endpoint, tenant_a, tenant_b, objects_of_a):
    """Tenant B's admin, on B's own URL, naming an object of A: 404, and A's object is intact."""
    ids = {**objects_of_a, "tenant": tenant_b.tenant.pk}
    response = call(tenant_b.client("tenant_admin"), endpoint, ids)
    assert_error(response, 404, "not_found")
    detail = re.sub(
        r"/(reindex|chunks|handoff|take|reply|close|messages/\d+/feedback)$",
        "",
        endpoint.path.format(**objects_of_a),
    )
    assert client_for(tenant_a.tenant_admin, tenant_a.tenant).get(detail).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_unknown_tenant_is_404_even_for_platform_admin(endpoint, platform_admin, objects_of_a):
    ids = {**objects_of_a, "tenant": "00000000-0000-0000-0000-000000000000"}
    assert_error(call(client_for(platform_admin), endpoint, ids), 404, "not_found")


def _tampered(token: str) -> str:
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
        "tampered": f"Bearer {_tampered(valid)}",
        "refresh_as_access": f"Bearer {refresh}",
        "wrong_scheme": f"Token {valid}",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind", ["none", "malformed", "expired", "tampered", "refresh_as_access", "wrong_scheme"]
)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_it_requires_a_valid_access_token(endpoint, kind, tenant_a, objects_of_a, anonymous):
    if kind != "none":
        anonymous.credentials(HTTP_AUTHORIZATION=bad_credentials(tenant_a.end_user, tenant_a.tenant)[kind])
    response = call(anonymous, endpoint, objects_of_a)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", WITH_BODY, ids=str)
def test_malformed_bodies_get_400_in_the_error_format(endpoint, tenant_a, objects_of_a):
    client = tenant_a.client("tenant_admin")
    url = endpoint.path.format(**objects_of_a)
    broken = getattr(client, endpoint.method)(url, data="{not json", content_type="application/json")
    assert_error(broken, 400, "malformed_request")
    not_an_object = call(client, endpoint, objects_of_a, body=["a", "list"])
    assert_error(not_an_object, 400, "validation_error")
    wrong_types = call(client, endpoint, objects_of_a, body={key: {"nested": [1]} for key in endpoint.body})
    assert_error(wrong_types, 400, "validation_error")
    assert set(wrong_types.json()["error"]["details"]) <= set(endpoint.body)


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", WITH_BODY, ids=str)
def test_form_encoded_bodies_get_415(endpoint, tenant_a, objects_of_a):
    client = tenant_a.client("tenant_admin")
    url = endpoint.path.format(**objects_of_a)
    response = getattr(client, endpoint.method)(
        url, data="a=b", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_suspended_tenant_locks_out_its_users_without_deleting(role, tenant_a, platform_admin):
    operator = client_for(platform_admin)
    assert (
        operator.patch(
            f"/v1/tenants/{tenant_a.tenant.pk}", {"status": "suspended"}, format="json"
        ).status_code
        == 200
    )
    response = tenant_a.client(role).get(f"/v1/tenants/{tenant_a.tenant.pk}/members")
    assert_error(response, 403, "tenant_suspended")
    # Nothing was deleted: the operator still sees every member, and reactivation restores access.
    members = operator.get(f"/v1/tenants/{tenant_a.tenant.pk}/members").json()
    assert members["count"] == 3
    operator.patch(f"/v1/tenants/{tenant_a.tenant.pk}", {"status": "active"}, format="json")
    assert tenant_a.client("tenant_admin").get(f"/v1/tenants/{tenant_a.tenant.pk}/members").status_code == 200


# --- Public auth endpoints ---------------------------------------------------------------------
# No tenant, no role: anyone may call them, a token changes nothing for most of them, and each
# answers bad bodies in the error format. Invitation acceptance takes an optional access token
# (the invitee's own account), which must then be valid.

PUBLIC_ENDPOINTS = [
    Endpoint("register", "post", "/v1/auth/register", Capability.CHAT, 201, {"email": "x@example.com"}),
    Endpoint("login", "post", "/v1/auth/login", Capability.CHAT, 200, {"email": "x@example.com"}),
    Endpoint("refresh", "post", "/v1/auth/refresh", Capability.CHAT, 200, {"refresh": "x"}),
    Endpoint("logout", "post", "/v1/auth/logout", Capability.CHAT, 205, {"refresh": "x"}),
    Endpoint(
        "invitation-accept", "post", "/v1/auth/invitations/accept", Capability.CHAT, 201, {"token": "x"}
    ),
    Endpoint(
        "password-reset", "post", "/v1/auth/password/reset", Capability.CHAT, 202, {"email": "x@example.com"}
    ),
    Endpoint(
        "password-reset-confirm",
        "post",
        "/v1/auth/password/reset/confirm",
        Capability.CHAT,
        200,
        {"uid": "MQ", "token": "x", "password": "a-long-pass-phrase"},
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", PUBLIC_ENDPOINTS, ids=str)
def test_public_endpoints_answer_bad_bodies_in_the_error_format(endpoint, anonymous):
    broken = anonymous.post(endpoint.path, data="{not json", content_type="application/json")
    assert_error(broken, 400, "malformed_request")
    assert_error(anonymous.post(endpoint.path, ["a", "list"], format="json"), 400, "validation_error")
    wrong_types = anonymous.post(
        endpoint.path, {key: {"nested": [1]} for key in endpoint.body}, format="json"
    )
    assert_error(wrong_types, 400, "validation_error")
    form = anonymous.post(endpoint.path, data="a=b", content_type="application/x-www-form-urlencoded")
    assert_error(form, 415, "unsupported_media_type")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_password_reset_answers_every_role_and_nobody_alike(role, tenant_a, platform_admin, anonymous):
    user = platform_admin if role == PLATFORM_ADMIN else tenant_a.user(role)
    body = {"email": user.email}
    signed_in = client_for(user, tenant=tenant_a.tenant).post("/v1/auth/password/reset", body, format="json")
    nobody = anonymous.post("/v1/auth/password/reset", {"email": "nobody@example.com"}, format="json")
    assert signed_in.status_code == nobody.status_code == 202
    assert signed_in.json() == nobody.json()
    confirm = {"uid": "MQ", "token": "not-a-token", "password": "a-long-pass-phrase"}
    for client in (client_for(user, tenant=tenant_a.tenant), anonymous):
        assert_error(
            client.post("/v1/auth/password/reset/confirm", confirm, format="json"), 400, "invalid_token"
        )


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["malformed", "expired", "tampered", "refresh_as_access"])
def test_invitation_accept_refuses_a_bad_access_token(kind, tenant_a, anonymous):
    """A Bearer token there must be valid (another scheme is no credential at all: anonymous)."""
    anonymous.credentials(HTTP_AUTHORIZATION=bad_credentials(tenant_a.agent, tenant_a.tenant)[kind])
    response = anonymous.post("/v1/auth/invitations/accept", {"token": "x"}, format="json")
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
