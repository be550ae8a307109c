"""One sign-in limiter for the API, the dashboard and the Django admin: failures count per
email from one client address and per client address over all emails, so that a stranger
cannot lock the owner out and one address cannot spray a password over many accounts. The
client address is REMOTE_ADDR unless trusted proxies are configured."""

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from testsupport.api import assert_error
from testsupport.people import PASSWORD, make_user

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.9"
OWNER = "198.51.100.7"


def api_login(address, email, password=PASSWORD, **headers):
    client = APIClient(REMOTE_ADDR=address, **headers)
    return client.post("/v1/auth/login", {"email": email, "password": password}, format="json")


def dashboard_login(address, email, password=PASSWORD):
    return Client(REMOTE_ADDR=address).post("/dashboard/login/", {"email": email, "password": password})


def admin_login(address, email, password=PASSWORD):
    client = Client(REMOTE_ADDR=address)
    response = client.post("/admin/login/", {"username": email, "password": password, "next": "/admin/"})
    return client, response


def test_a_stranger_cannot_lock_the_owner_out(tenant_a, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _attempt in range(3):
        assert api_login(ATTACKER, tenant_a.agent.email, "wrong-guess").status_code == 401
    assert_error(api_login(ATTACKER, tenant_a.agent.email), 429, "rate_limited")
    assert api_login(OWNER, tenant_a.agent.email).status_code == 200
    assert dashboard_login(OWNER, tenant_a.agent.email).status_code == 302


def test_one_password_sprayed_over_many_emails_is_stopped_per_address(tenant_a, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 4
    for number in range(4):
        assert api_login(ATTACKER, f"person{number}@example.com", "Summer2026!").status_code == 401
    refused = api_login(ATTACKER, tenant_a.end_user.email, "Summer2026!")
    assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) > 0
    assert dashboard_login(ATTACKER, tenant_a.agent.email, "Summer2026!").status_code == 429
    assert api_login(OWNER, tenant_a.end_user.email).status_code == 200


def test_the_django_admin_sign_in_is_throttled(platform_admin, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _attempt in range(3):
        _client, response = admin_login(ATTACKER, platform_admin.email, "wrong-guess")
        assert response.status_code == 200  # the form again, with an error
    client, response = admin_login(ATTACKER, platform_admin.email)  # the right password, too late
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    owner, response = admin_login(OWNER, platform_admin.email)
    assert response.status_code == 302 and "_auth_user_id" in owner.session


def test_the_api_the_dashboard_and_the_admin_share_one_count(tenant_a, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    staff = make_user("operator.two@example.com", staff=True)
    assert api_login(ATTACKER, staff.email, "guess-1").status_code == 401
    assert dashboard_login(ATTACKER, staff.email, "guess-2").status_code == 400
    admin_login(ATTACKER, staff.email, "guess-3")
    assert_error(api_login(ATTACKER, staff.email), 429, "rate_limited")
    assert dashboard_login(ATTACKER, staff.email).status_code == 429
    assert admin_login(ATTACKER, staff.email)[1].status_code == 429


def test_x_forwarded_for_is_ignored_without_trusted_proxies(tenant_a, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for number in range(3):
        api_login(ATTACKER, tenant_a.agent.email, "wrong-guess", HTTP_X_FORWARDED_FOR=f"10.0.0.{number}")
    refused = api_login(ATTACKER, tenant_a.agent.email, HTTP_X_FORWARDED_FOR="10.0.0.200")
    assert_error(refused, 429, "rate_limited")


def test_sign_ups_cannot_dodge_their_throttle_with_x_forwarded_for(tenant_a, monkeypatch):
    from tenants.throttling import RegistrationThrottle

    monkeypatch.setattr(RegistrationThrottle, "rate", "2/hour", raising=False)

    def register(number):
        client = APIClient(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"10.1.0.{number}")
        body = {
            "email": f"customer{number}@example.com",
            "password": "a-long-passphrase-2026",
            "tenant_id": str(tenant_a.tenant.pk),
        }
        return client.post("/v1/auth/register", body, format="json")

    assert [register(n).status_code for n in range(2)] == [201, 201]
    assert_error(register(3), 429, "rate_limited")


def test_trusted_proxies_name_the_client(tenant_a, settings):
    from tenants.throttling import client_address

    factory = RequestFactory()
    forwarded = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9")
    assert client_address(forwarded) == "10.0.0.2"  # no trusted proxy: the header is anyone's
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(forwarded) == "203.0.113.9"  # the address our proxy saw, not the spoof
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_address(forwarded) == "1.2.3.4"
    assert client_address(factory.get("/", REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"
    garbage = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="<script>, not-an-ip")
    assert client_address(garbage) == "10.0.0.2"
    # Behind one proxy, two clients are counted apart even though REMOTE_ADDR is the proxy's.
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_FAILURE_LIMIT = 2
    for _attempt in range(2):
        api_login("10.0.0.2", tenant_a.agent.email, "wrong", HTTP_X_FORWARDED_FOR=ATTACKER)
    assert api_login("10.0.0.2", tenant_a.agent.email, HTTP_X_FORWARDED_FOR=ATTACKER).status_code == 429
    assert api_login("10.0.0.2", tenant_a.agent.email, HTTP_X_FORWARDED_FOR=OWNER).status_code == 200
