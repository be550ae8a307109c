"""Every tenant endpoint against the role matrix of DESIGN.md, the other tenant, and every kind
of bad token; every endpoint of the website widget's visitors against visitor tokens (one more
kind of credential: it opens only /v1/widget/…, and a member's token opens nothing there). New
endpoints join testsupport/endpoints.py's ENDPOINTS or VISITOR_ENDPOINTS, and the tests below
cover them."""

import re
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from tenants.roles import PLATFORM_ADMIN, Capability, Role, role_can
from testsupport.api import assert_error, bad_credentials, tampered
from testsupport.endpoints import ENDPOINTS, VISITOR_ENDPOINTS, Endpoint, call
from testsupport.people import client_for
from testsupport.widgets import SHOP, visitor_client, visitor_with_history
from widgets.tokens import visitor_token_for

WITH_BODY = [endpoint for endpoint in ENDPOINTS if endpoint.body]
UPLOADS = [endpoint for endpoint in ENDPOINTS if endpoint.multipart]
ROLES = [PLATFORM_ADMIN, *Role.values]


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
        r"/(reindex|chunks|handoff|take|reply|close|rotate-secret|sync|runs(/\d+/pages)?|messages/\d+/feedback)$",
        "",
        endpoint.path.format(**objects_of_a),
    )
    assert client_for(tenant_a.tenant_admin, tenant_a.tenant).get(detail).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_unknown_tenant_is_404_even_for_platform_admin(endpoint, platform_admin, objects_of_a):
    ids = {**objects_of_a, "tenant": "00000000-0000-0000-0000-000000000000"}
    assert_error(call(client_for(platform_admin), endpoint, ids), 404, "not_found")


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
@pytest.mark.parametrize("endpoint", UPLOADS, ids=str)
def test_uploads_refuse_json_and_a_missing_file_in_the_error_format(endpoint, tenant_a, objects_of_a):
    client = tenant_a.client("tenant_admin")
    url = endpoint.path.format(**objects_of_a)
    field = next(iter(endpoint.files))
    as_json = getattr(client, endpoint.method)(url, {field: "not a file"}, format="json")
    assert_error(as_json, 415, "unsupported_media_type")
    no_file = getattr(client, endpoint.method)(url, {"other": "x"}, format="multipart")
    assert_error(no_file, 400, "validation_error")
    as_text = getattr(client, endpoint.method)(url, {field: "not a file"}, format="multipart")
    assert_error(as_text, 400, "validation_error")
    # Two files where one is expected.
    twice = {field: [*endpoint.uploads().values(), *endpoint.uploads().values()]}
    expected = 202 if endpoint.many_files else 400
    assert getattr(client, endpoint.method)(url, twice, format="multipart").status_code == expected


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


# --- Website visitors ------------------------------------------------------------------------
# A visitor token (POST /v1/widget/sessions) is a credential of its own kind: it opens the
# visitor's own conversations under /v1/widget/ and nothing under /v1/tenants/; no member's
# token opens /v1/widget/.

VISITOR_WITH_BODY = [endpoint for endpoint in VISITOR_ENDPOINTS if endpoint.body]
VISITOR_OBJECTS = [endpoint for endpoint in VISITOR_ENDPOINTS if "{visitor_conversation}" in endpoint.path]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "endpoint", [*ENDPOINTS, Endpoint("me", "get", "/v1/auth/me", Capability.CHAT, 200)], ids=str
)
def test_a_visitor_token_opens_no_member_endpoint(endpoint, objects_of_a, visitor_of_a):
    response = call(visitor_of_a.client(), endpoint, objects_of_a)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", VISITOR_ENDPOINTS, ids=str)
def test_the_visitor_token_opens_each_visitor_endpoint(endpoint, visitor_of_a):
    response = call(visitor_of_a.client(), endpoint, visitor_of_a.ids)
    assert response.status_code == endpoint.success, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", VISITOR_ENDPOINTS, ids=str)
def test_no_member_token_opens_a_visitor_endpoint(endpoint, role, tenant_a, platform_admin, visitor_of_a):
    user = platform_admin if role == PLATFORM_ADMIN else tenant_a.user(role)
    client = client_for(user, tenant=tenant_a.tenant)
    client.defaults["HTTP_ORIGIN"] = SHOP  # from an allowed page: only the token is wrong
    response = call(client, endpoint, visitor_of_a.ids)
    assert_error(response, 401, "token_invalid")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["none", "malformed", "expired", "tampered", "wrong_scheme", "ended"])
@pytest.mark.parametrize("endpoint", VISITOR_ENDPOINTS, ids=str)
def test_visitor_endpoints_require_a_valid_visitor_token(endpoint, kind, visitor_of_a):
    token = visitor_token_for(visitor_of_a.visitor)
    credentials = {
        "none": None,
        "malformed": "Bearer not-a-jwt",
        "tampered": f"Bearer {tampered(str(token))}",
        "wrong_scheme": f"Token {token}",
    }.get(kind)
    if kind == "expired":
        token.set_exp(lifetime=-timedelta(seconds=5))
        credentials = f"Bearer {token}"
    if kind == "ended":  # the visitor is gone: their widget deleted, or merged on identify
        gone = visitor_with_history(visitor_of_a.widget).visitor
        credentials = f"Bearer {visitor_token_for(gone)}"
        gone.contact.delete()
    client = APIClient(HTTP_ORIGIN=SHOP)
    if credentials:
        client.credentials(HTTP_AUTHORIZATION=credentials)
    response = call(client, endpoint, visitor_of_a.ids)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", VISITOR_OBJECTS, ids=str)
def test_another_visitor_and_another_tenants_visitor_get_404(endpoint, visitor_of_a, visitor_of_b):
    neighbour = visitor_with_history(visitor_of_a.widget)
    for stranger in (neighbour, visitor_of_b):
        response = call(stranger.client(), endpoint, visitor_of_a.ids)
        assert_error(response, 404, "not_found")
    assert (
        visitor_of_a.client().get(f"/v1/widget/conversations/{visitor_of_a.conversation.pk}").status_code
        == 200
    )


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", VISITOR_ENDPOINTS, ids=str)
def test_a_visitor_token_is_refused_on_a_page_the_widget_does_not_allow(endpoint, visitor_of_a):
    client = visitor_client(visitor_of_a.session, origin="https://evil.example.com")
    assert_error(call(client, endpoint, visitor_of_a.ids), 403, "origin_not_allowed")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", VISITOR_WITH_BODY, ids=str)
def test_visitor_endpoints_answer_bad_bodies_in_the_error_format(endpoint, visitor_of_a):
    client = visitor_of_a.client()
    url = endpoint.path.format(**visitor_of_a.ids)
    broken = getattr(client, endpoint.method)(url, data="{not json", content_type="application/json")
    assert_error(broken, 400, "malformed_request")
    assert_error(call(client, endpoint, visitor_of_a.ids, body=["a", "list"]), 400, "validation_error")
    wrong_types = call(
        client, endpoint, visitor_of_a.ids, body={key: {"nested": [1]} for key in endpoint.body}
    )
    assert_error(wrong_types, 400, "validation_error")
    assert set(wrong_types.json()["error"]["details"]) <= set(endpoint.body)
    form = getattr(client, endpoint.method)(url, data="a=b", content_type="application/x-www-form-urlencoded")
    assert_error(form, 415, "unsupported_media_type")
