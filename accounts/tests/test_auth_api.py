import pytest
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from tenants.models import Membership
from tenants.roles import PLATFORM_ADMIN
from testsupport.api import assert_error, bad_credentials
from testsupport.people import PASSWORD, client_for

pytestmark = pytest.mark.django_db


def login(client, email, password=PASSWORD, **extra):
    return client.post("/v1/auth/login", {"email": email, "password": password, **extra}, format="json")


def register(client, tenant, **overrides):
    body = {
        "email": "new.customer@example.com",
        "password": PASSWORD,
        "name": "陳小明",
        "tenant_id": str(tenant.pk),
        "role": "end_user",
        **overrides,
    }
    return client.post("/v1/auth/register", body, format="json")


# --- register ---------------------------------------------------------------------------


def test_register_creates_an_end_user_of_the_tenant(anonymous, tenant_a):
    response = register(anonymous, tenant_a.tenant)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "new.customer@example.com"
    assert body["name"] == "陳小明"
    assert body["role"] == "end_user"
    assert body["tenant_id"] == str(tenant_a.tenant.pk)
    assert "password" not in body
    user = User.objects.get(email="new.customer@example.com")
    assert user.check_password(PASSWORD)
    assert Membership.objects.get(user=user).role == "end_user"


@pytest.mark.parametrize("role", ["tenant_admin", "agent", "platform_admin"])
def test_register_refuses_a_higher_role_instead_of_downgrading(anonymous, tenant_a, role):
    response = register(anonymous, tenant_a.tenant, role=role)
    assert_error(response, 403, "role_not_allowed")
    assert "invitation" in response.json()["error"]["message"]
    assert not User.objects.filter(email="new.customer@example.com").exists()


def test_register_refuses_a_duplicate_email_with_409(anonymous, tenant_a):
    response = register(anonymous, tenant_a.tenant, email=tenant_a.agent.email.upper())
    assert_error(response, 409, "duplicate")


def test_register_refuses_a_tenant_closed_to_signup(anonymous, tenant_a):
    tenant_a.tenant.allow_signup = False
    tenant_a.tenant.save()
    assert_error(register(anonymous, tenant_a.tenant), 403, "signup_closed")


def test_register_refuses_a_suspended_tenant(anonymous, tenant_a):
    tenant_a.tenant.status = "suspended"
    tenant_a.tenant.save()
    assert_error(register(anonymous, tenant_a.tenant), 403, "tenant_suspended")


def test_register_in_unknown_tenant_is_404(anonymous, db):
    response = anonymous.post(
        "/v1/auth/register",
        {
            "email": "x@example.com",
            "password": PASSWORD,
            "name": "x",
            "tenant_id": "6f1c1b0e-0000-4000-8000-000000000000",
        },
        format="json",
    )
    assert_error(response, 404, "not_found")


def test_register_applies_the_password_rules(anonymous, tenant_a):
    response = register(anonymous, tenant_a.tenant, password="12345678")
    assert_error(response, 400, "validation_error")
    assert "password" in response.json()["error"]["details"]
    assert not User.objects.filter(email="new.customer@example.com").exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "not-an-email", "password": PASSWORD, "tenant_id": "x"},
        {"email": ["a@b.c"], "password": PASSWORD, "tenant_id": None},
        {
            "email": "a@example.com",
            "password": "x" * 500,
            "tenant_id": "6f1c1b0e-0000-4000-8000-000000000000",
        },
    ],
)
def test_register_answers_malformed_bodies_with_400(anonymous, db, body):
    assert_error(anonymous.post("/v1/auth/register", body, format="json"), 400, "validation_error")


# --- login --------------------------------------------------------------------------------


def test_login_returns_tokens_carrying_tenant_and_role(anonymous, tenant_a):
    response = login(anonymous, tenant_a.agent.email)
    assert response.status_code == 200, response.content
    body = response.json()
    access = AccessToken(body["access"])
    assert access["tenant_id"] == str(tenant_a.tenant.pk)
    assert access["role"] == "agent"
    lifetime = access["exp"] - access["iat"]
    assert 0 < lifetime <= 15 * 60
    assert body["user"]["role"] == "agent"
    assert body["user"]["memberships"][0]["tenant_name"] == "Tenant A"


def test_login_email_is_case_insensitive(anonymous, tenant_a):
    assert login(anonymous, tenant_a.agent.email.upper()).status_code == 200


def test_wrong_password_and_unknown_email_get_the_same_401(anonymous, tenant_a):
    wrong_password = login(anonymous, tenant_a.agent.email, password="not-the-password")
    unknown_email = login(anonymous, "nobody@example.com")
    assert_error(wrong_password, 401, "authentication_failed")
    assert wrong_password.json() == unknown_email.json()
    assert unknown_email.status_code == 401


@override_settings(LOGIN_FAILURE_LIMIT=3)
def test_repeated_failed_logins_are_throttled_with_retry_after(anonymous, tenant_a):
    for _ in range(3):
        assert login(anonymous, tenant_a.agent.email, password="wrong-one").status_code == 401
    throttled = login(anonymous, tenant_a.agent.email)  # even the right password waits now
    assert_error(throttled, 429, "rate_limited")
    assert int(throttled.headers["Retry-After"]) > 0
    # Other people are not locked out by one account's failures.
    assert login(anonymous, tenant_a.end_user.email).status_code == 200


def test_login_picks_the_tenant_for_people_in_several(anonymous, tenant_a, tenant_b):
    Membership.objects.create(tenant=tenant_b.tenant, user=tenant_a.agent, role="tenant_admin")
    response = login(anonymous, tenant_a.agent.email, tenant_id=str(tenant_b.tenant.pk))
    assert response.status_code == 200
    assert response.json()["user"]["role"] == "tenant_admin"
    assert len(response.json()["user"]["memberships"]) == 2
    members = client_for(None)
    members.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert members.get(f"/v1/tenants/{tenant_b.tenant.pk}/members").status_code == 200
    assert members.get(f"/v1/tenants/{tenant_a.tenant.pk}/members").status_code == 404


def test_login_to_a_tenant_one_is_not_member_of_is_403(anonymous, tenant_a, tenant_b):
    response = login(anonymous, tenant_a.agent.email, tenant_id=str(tenant_b.tenant.pk))
    assert_error(response, 403, "not_a_member")


def test_login_of_a_suspended_tenant_user_is_403(anonymous, tenant_a):
    tenant_a.tenant.status = "suspended"
    tenant_a.tenant.save()
    assert_error(login(anonymous, tenant_a.agent.email), 403, "tenant_suspended")


def test_platform_admin_signs_in_without_a_tenant(anonymous, platform_admin):
    response = login(anonymous, platform_admin.email)
    assert response.status_code == 200
    assert response.json()["user"]["role"] == PLATFORM_ADMIN
    assert response.json()["user"]["is_platform_admin"] is True


# --- refresh and logout -----------------------------------------------------------------


def test_refresh_rotates_and_the_used_token_stops_working(anonymous, tenant_a):
    first = login(anonymous, tenant_a.agent.email).json()
    rotated = anonymous.post("/v1/auth/refresh", {"refresh": first["refresh"]}, format="json")
    assert rotated.status_code == 200, rotated.content
    assert rotated.json()["refresh"] != first["refresh"]
    assert AccessToken(rotated.json()["access"])["tenant_id"] == str(tenant_a.tenant.pk)
    reused = anonymous.post("/v1/auth/refresh", {"refresh": first["refresh"]}, format="json")
    assert_error(reused, 401, "authentication_failed")


def test_refresh_carries_a_changed_role(anonymous, tenant_a):
    first = login(anonymous, tenant_a.agent.email).json()
    Membership.objects.filter(user=tenant_a.agent).update(role="end_user")
    rotated = anonymous.post("/v1/auth/refresh", {"refresh": first["refresh"]}, format="json").json()
    assert AccessToken(rotated["access"])["role"] == "end_user"


def test_refresh_refuses_an_access_token_and_garbage(anonymous, tenant_a):
    pair = login(anonymous, tenant_a.agent.email).json()
    assert_error(anonymous.post("/v1/auth/refresh", {"refresh": pair["access"]}, format="json"), 401)
    assert_error(anonymous.post("/v1/auth/refresh", {"refresh": "garbage"}, format="json"), 401)
    assert_error(anonymous.post("/v1/auth/refresh", {}, format="json"), 400, "validation_error")


def test_logout_revokes_the_refresh_token(anonymous, tenant_a):
    pair = login(anonymous, tenant_a.agent.email).json()
    response = anonymous.post("/v1/auth/logout", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 205
    assert_error(anonymous.post("/v1/auth/refresh", {"refresh": pair["refresh"]}, format="json"), 401)
    assert_error(anonymous.post("/v1/auth/logout", {"refresh": "garbage"}, format="json"), 401)


def test_removed_member_token_stops_working(tenant_a):
    client = tenant_a.client("agent")
    Membership.objects.filter(user=tenant_a.agent).delete()
    assert_error(client.get("/v1/auth/me"), 401, "authentication_failed")


# --- me -----------------------------------------------------------------------------------


def test_me_describes_the_user_and_token(tenant_a):
    response = tenant_a.client("end_user").get("/v1/auth/me")
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == tenant_a.end_user.email
    assert body["tenant_id"] == str(tenant_a.tenant.pk)
    assert body["role"] == "end_user"
    assert body["memberships"] == [
        {
            "tenant_id": str(tenant_a.tenant.pk),
            "tenant_name": "Tenant A",
            "tenant_status": "active",
            "role": "end_user",
        }
    ]


@pytest.mark.parametrize(
    "kind", ["none", "malformed", "expired", "tampered", "refresh_as_access", "wrong_scheme"]
)
def test_me_requires_a_valid_access_token(kind, tenant_a, anonymous):

    if kind != "none":
        anonymous.credentials(HTTP_AUTHORIZATION=bad_credentials(tenant_a.agent, tenant_a.tenant)[kind])
    assert_error(anonymous.get("/v1/auth/me"), 401)
