"""Password reset by email (API and dashboard), and what a new password revokes: every refresh
token of the person and every other dashboard session."""

import re

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from testsupport.api import assert_error
from testsupport.people import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-pass-phrase"
RESET = "/v1/auth/password/reset"
CONFIRM = "/v1/auth/password/reset/confirm"


def api_sign_in(email, password=PASSWORD) -> dict:
    response = APIClient().post("/v1/auth/login", {"email": email, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def refresh_works(refresh: str) -> bool:
    return APIClient().post("/v1/auth/refresh", {"refresh": refresh}, format="json").status_code == 200


def dashboard_session(email) -> Client:
    client = Client()
    assert client.post("/dashboard/login/", {"email": email, "password": PASSWORD}).status_code == 302
    return client


def still_signed_in(client: Client, people) -> bool:
    return client.get(f"/dashboard/t/{people.tenant.pk}/").status_code == 200


def reset_link(message) -> tuple[str, str, str]:
    match = re.search(r"(https?://[^\s]+/dashboard/password/reset/([\w-]+)/([\w-]+)/)", message.body)
    assert match, message.body
    return match.group(1), match.group(2), match.group(3)


def request_reset(email, client=None):
    client = client or APIClient()
    return client.post(RESET, {"email": email}, format="json")


# --- item 8: a new password revokes the rest ----------------------------------------------------


def test_a_password_change_revokes_refresh_tokens_and_other_sessions(tenant_a):
    phone, laptop = api_sign_in(tenant_a.agent.email), api_sign_in(tenant_a.agent.email)
    elsewhere = dashboard_session(tenant_a.agent.email)
    here = dashboard_session(tenant_a.agent.email)
    response = here.post(
        "/dashboard/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert not refresh_works(phone["refresh"])
    assert not refresh_works(laptop["refresh"])
    assert not still_signed_in(elsewhere, tenant_a)
    assert still_signed_in(here, tenant_a)  # the session that changed it stays signed in
    assert refresh_works(api_sign_in(tenant_a.agent.email, NEW_PASSWORD)["refresh"])


def test_a_password_reset_revokes_refresh_tokens_and_every_session(
    tenant_a, django_capture_on_commit_callbacks
):
    stolen = api_sign_in(tenant_a.agent.email)
    session = dashboard_session(tenant_a.agent.email)
    with django_capture_on_commit_callbacks(execute=True):
        assert request_reset(tenant_a.agent.email).status_code == 202
    _link, uid, token = reset_link(mail.outbox[-1])
    response = APIClient().post(
        CONFIRM, {"uid": uid, "token": token, "password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    assert not refresh_works(stolen["refresh"])
    assert not still_signed_in(session, tenant_a)


# --- the API -----------------------------------------------------------------------------------


def test_reset_answers_202_whatever_the_email(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        known = request_reset(tenant_a.agent.email.upper())
        unknown = request_reset("nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert [message.to for message in mail.outbox] == [[tenant_a.agent.email]]
    link, _uid, _token = reset_link(mail.outbox[0])
    assert link.startswith("http://testserver/dashboard/password/reset/")


def test_reset_link_uses_public_base_url(tenant_a, settings, django_capture_on_commit_callbacks):
    settings.PUBLIC_BASE_URL = "https://support.example.com.tw"
    with django_capture_on_commit_callbacks(execute=True):
        request_reset(tenant_a.agent.email)
    link, _uid, _token = reset_link(mail.outbox[0])
    assert link.startswith("https://support.example.com.tw/dashboard/password/reset/")


def test_reset_email_speaks_the_requesters_language(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request_reset(tenant_a.agent.email, APIClient(HTTP_ACCEPT_LANGUAGE="zh-Hant"))
    assert "密碼" in mail.outbox[0].subject
    assert "密碼" in mail.outbox[0].body


def test_confirm_sets_the_password_once(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request_reset(tenant_a.agent.email)
    _link, uid, token = reset_link(mail.outbox[0])
    weak = APIClient().post(CONFIRM, {"uid": uid, "token": token, "password": "123"}, format="json")
    assert_error(weak, 400, "validation_error")
    assert "password" in weak.json()["error"]["details"]
    done = APIClient().post(CONFIRM, {"uid": uid, "token": token, "password": NEW_PASSWORD}, format="json")
    assert done.status_code == 200, done.content
    assert User.objects.get(pk=tenant_a.agent.pk).check_password(NEW_PASSWORD)
    again = APIClient().post(
        CONFIRM, {"uid": uid, "token": token, "password": "yet-another-phrase-9"}, format="json"
    )
    assert_error(again, 400, "invalid_token")
    assert User.objects.get(pk=tenant_a.agent.pk).check_password(NEW_PASSWORD)


@pytest.mark.parametrize("uid", ["", "not-base64!", "MTIzNDU2Nzg5", "w4Y"])
def test_confirm_refuses_bad_uids_and_tokens(tenant_a, uid):
    response = APIClient().post(
        CONFIRM, {"uid": uid or "MQ", "token": "abc-123", "password": NEW_PASSWORD}, format="json"
    )
    assert_error(response, 400, "invalid_token")


def test_confirm_refuses_an_expired_token(tenant_a, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request_reset(tenant_a.agent.email)
    _link, uid, token = reset_link(mail.outbox[0])
    settings.PASSWORD_RESET_TIMEOUT = -1
    response = APIClient().post(
        CONFIRM, {"uid": uid, "token": token, "password": NEW_PASSWORD}, format="json"
    )
    assert_error(response, 400, "invalid_token")


def test_reset_is_throttled_per_address(tenant_a, monkeypatch):
    from tenants.throttling import PasswordResetAddressThrottle

    monkeypatch.setattr(PasswordResetAddressThrottle, "rate", "2/hour", raising=False)
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    assert [request_reset(f"p{n}@example.com", client).status_code for n in range(2)] == [202, 202]
    refused = request_reset("p3@example.com", client)
    assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) > 0


def test_reset_mails_one_email_a_limited_number_of_times(
    tenant_a, monkeypatch, django_capture_on_commit_callbacks
):
    """Many addresses asking for one person's reset do not flood her inbox; the answer stays 202
    (a 429 would say nothing about the account, but a quiet 202 tells the asker even less)."""
    from accounts.throttling import PasswordResetEmailThrottle

    monkeypatch.setattr(PasswordResetEmailThrottle, "rate", "2/hour", raising=False)
    with django_capture_on_commit_callbacks(execute=True):
        answers = [
            request_reset(tenant_a.agent.email, APIClient(REMOTE_ADDR=f"198.51.100.{n}")).status_code
            for n in range(1, 5)
        ]
    assert answers == [202, 202, 202, 202]
    assert len(mail.outbox) == 2


def test_a_sending_failure_still_answers_202(tenant_a, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    with django_capture_on_commit_callbacks(execute=True):
        assert request_reset(tenant_a.agent.email).status_code == 202


# --- the dashboard ------------------------------------------------------------------------------


def test_forgot_password_on_the_dashboard(tenant_a, django_capture_on_commit_callbacks):
    stolen = api_sign_in(tenant_a.agent.email)
    browser = Client()
    login_page = browser.get("/dashboard/login/").content.decode()
    assert 'href="/dashboard/password/reset/"' in login_page
    assert browser.get("/dashboard/password/reset/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        sent = browser.post("/dashboard/password/reset/", {"email": tenant_a.agent.email})
    assert sent.status_code == 302
    assert browser.get(sent["Location"]).status_code == 200
    link, _uid, _token = reset_link(mail.outbox[0])
    page = browser.get(link, follow=True)
    assert page.status_code == 200 and 'type="password"' in page.content.decode()
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else link
    done = browser.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert User.objects.get(pk=tenant_a.agent.pk).check_password(NEW_PASSWORD)
    assert not refresh_works(stolen["refresh"])
    used = Client().get(link, follow=True)
    assert 'type="password"' not in used.content.decode()  # the link worked once


def test_the_dashboard_reset_answers_the_same_for_unknown_emails(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sent = Client().post("/dashboard/password/reset/", {"email": "nobody@example.com"})
    assert sent.status_code == 302
    assert mail.outbox == []


def test_passwords_set_in_the_django_admin_revoke_refresh_tokens(tenant_a, platform_admin):
    agents_phone = api_sign_in(tenant_a.agent.email)
    operators_phone = api_sign_in(platform_admin.email)
    operator = Client()
    assert operator.login(email=platform_admin.email, password=PASSWORD)
    changed = operator.post(
        f"/admin/accounts/user/{tenant_a.agent.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302, changed.content.decode()[:2000]
    assert User.objects.get(pk=tenant_a.agent.pk).check_password(NEW_PASSWORD)
    assert not refresh_works(agents_phone["refresh"])
    own = operator.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert own.status_code == 302, own.content.decode()[:2000]
    assert not refresh_works(operators_phone["refresh"])
    assert operator.get("/admin/").status_code == 200  # the operator's own session stays
