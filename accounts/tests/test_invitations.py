from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Invitation, User
from tenants.models import Membership
from testsupport.api import assert_error
from testsupport.people import PASSWORD, client_for

pytestmark = pytest.mark.django_db


def invite(people, email="new.agent@example.com", role="agent"):
    return people.client("tenant_admin").post(
        f"/v1/tenants/{people.tenant.pk}/invitations", {"email": email, "role": role}, format="json"
    )


def accept(client, token, password=PASSWORD, name="林美玲"):
    return client.post(
        "/v1/auth/invitations/accept", {"token": token, "password": password, "name": name}, format="json"
    )


def test_an_invited_person_joins_with_the_invited_role(tenant_a, anonymous):
    created = invite(tenant_a, role="agent")
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) >= {"id", "email", "role", "token", "expires_at"}
    accepted = accept(anonymous, body["token"])
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["role"] == "agent"
    user = User.objects.get(email="new.agent@example.com")
    assert Membership.objects.get(user=user, tenant=tenant_a.tenant).role == "agent"
    login = anonymous.post("/v1/auth/login", {"email": user.email, "password": PASSWORD}, format="json")
    assert login.json()["user"]["role"] == "agent"


def test_the_token_is_shown_once_and_stored_hashed(tenant_a):
    token = invite(tenant_a).json()["token"]
    listed = tenant_a.client("tenant_admin").get(f"/v1/tenants/{tenant_a.tenant.pk}/invitations").json()
    assert "token" not in listed["results"][0]
    assert token not in Invitation.objects.get().token_hash


def test_an_invitation_is_used_once(tenant_a, anonymous):
    token = invite(tenant_a).json()["token"]
    assert accept(anonymous, token).status_code == 201
    assert_error(accept(anonymous, token), 400, "invitation_invalid")


def test_an_expired_invitation_is_refused(tenant_a, anonymous):
    token = invite(tenant_a).json()["token"]
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert_error(accept(anonymous, token), 400, "invitation_invalid")
    assert not User.objects.filter(email="new.agent@example.com").exists()


def login(client, email, password):
    return client.post("/v1/auth/login", {"email": email, "password": password}, format="json")


def test_accepting_for_an_existing_account_is_no_password_oracle(tenant_a, tenant_b, anonymous, settings):
    """A tenant admin invites another tenant's admin and guesses her password through accept:
    every guess, the right one included, gets the same refusal, and the sign-in throttle the
    guesser already ran into still holds afterwards."""
    settings.LOGIN_FAILURE_LIMIT = 5
    victim = tenant_b.tenant_admin
    token = invite(tenant_a, email=victim.email, role="agent").json()["token"]
    for number in range(5):
        assert login(anonymous, victim.email, f"guess-{number}").status_code == 401
    guesses = [accept(anonymous, token, password=f"another-guess-{n}") for n in range(5)]
    guesses.append(accept(anonymous, token, password=PASSWORD))
    for answer in guesses:
        assert_error(answer, 401, "sign_in_required")
        assert "access" not in answer.json()
    assert len({answer.content for answer in guesses}) == 1  # nothing tells the right password apart
    assert not Membership.objects.filter(user=victim, tenant=tenant_a.tenant).exists()
    assert_error(login(anonymous, victim.email, PASSWORD), 429, "rate_limited")  # the seventh attempt


def test_an_existing_account_accepts_signed_in_with_the_token_alone(tenant_a, tenant_b):
    token = invite(tenant_a, email=tenant_b.agent.email, role="tenant_admin").json()["token"]
    response = client_for(tenant_b.agent, tenant_b.tenant).post(
        "/v1/auth/invitations/accept", {"token": token}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["tenant_id"] == str(tenant_a.tenant.pk)
    assert response.json()["role"] == "tenant_admin"
    assert Membership.objects.get(user=tenant_b.agent, tenant=tenant_a.tenant).role == "tenant_admin"


def test_another_signed_in_account_cannot_accept(tenant_a, tenant_b):
    token = invite(tenant_a, email=tenant_b.agent.email).json()["token"]
    response = client_for(tenant_b.end_user, tenant_b.tenant).post(
        "/v1/auth/invitations/accept", {"token": token}, format="json"
    )
    assert_error(response, 403, "invitation_for_another_account")
    assert not Membership.objects.filter(tenant=tenant_a.tenant, user__email=tenant_b.agent.email).exists()


def test_a_new_account_needs_a_password(tenant_a, anonymous):
    token = invite(tenant_a).json()["token"]
    response = anonymous.post("/v1/auth/invitations/accept", {"token": token}, format="json")
    assert_error(response, 400, "validation_error")
    assert "password" in response.json()["error"]["details"]


def test_accept_is_throttled_per_token(tenant_a, anonymous, monkeypatch):
    from accounts.throttling import InvitationTokenThrottle

    monkeypatch.setattr(InvitationTokenThrottle, "rate", "3/hour", raising=False)
    token = invite(tenant_a).json()["token"]
    for number in range(3):
        other = APIClient(REMOTE_ADDR=f"198.51.100.{number + 1}")
        assert_error(accept(other, token, password="123"), 400, "validation_error")
    refused = accept(APIClient(REMOTE_ADDR="198.51.100.99"), token)
    assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) > 0
    assert not User.objects.filter(email="new.agent@example.com").exists()


def test_accept_is_throttled_per_client_address(tenant_a, monkeypatch):
    from tenants.throttling import InvitationAcceptAddressThrottle

    monkeypatch.setattr(InvitationAcceptAddressThrottle, "rate", "3/hour", raising=False)
    guesser = APIClient(REMOTE_ADDR="203.0.113.9")
    for number in range(3):
        assert_error(accept(guesser, f"guessed-token-{number}"), 400, "invitation_invalid")
    token = invite(tenant_a).json()["token"]
    assert_error(accept(guesser, token), 429, "rate_limited")
    assert accept(APIClient(REMOTE_ADDR="198.51.100.7"), token).status_code == 201


def test_duplicate_invitations_and_existing_members_are_409(tenant_a):
    assert invite(tenant_a).status_code == 201
    assert_error(invite(tenant_a, email="NEW.agent@example.com"), 409, "duplicate")
    assert_error(invite(tenant_a, email=tenant_a.end_user.email), 409, "duplicate")


def test_weak_password_on_accept_is_400_and_keeps_the_invitation(tenant_a, anonymous):
    token = invite(tenant_a).json()["token"]
    assert_error(accept(anonymous, token, password="password"), 400, "validation_error")
    assert accept(anonymous, token).status_code == 201


def test_invitation_role_must_be_a_tenant_role(tenant_a):
    assert_error(invite(tenant_a, role="platform_admin"), 400, "validation_error")


def test_revoked_invitation_cannot_be_accepted(tenant_a, anonymous):
    body = invite(tenant_a).json()
    url = f"/v1/tenants/{tenant_a.tenant.pk}/invitations/{body['id']}"
    assert tenant_a.client("tenant_admin").delete(url).status_code == 204
    assert_error(accept(anonymous, body["token"]), 400, "invitation_invalid")


def test_pending_filter_hides_used_invitations(tenant_a, anonymous):
    accept(anonymous, invite(tenant_a).json()["token"])
    invite(tenant_a, email="second@example.com")
    client = tenant_a.client("tenant_admin")
    pending = client.get(f"/v1/tenants/{tenant_a.tenant.pk}/invitations?pending=true").json()
    assert [item["email"] for item in pending["results"]] == ["second@example.com"]


def test_accept_with_a_malformed_body_is_400(anonymous, db):
    assert_error(
        anonymous.post("/v1/auth/invitations/accept", {"token": ["a"]}, format="json"),
        400,
        "validation_error",
    )


# --- the invitation email ----------------------------------------------------------------------


def test_the_invitee_gets_the_link_by_email_after_commit(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = invite(tenant_a)
    assert mail.outbox == []  # nothing leaves before the invitation is committed
    for callback in callbacks:
        callback()
    token = created.json()["token"]  # still returned once, for admins who share links themselves
    [message] = mail.outbox
    assert message.to == ["new.agent@example.com"]
    assert "Tenant A" in message.subject
    assert f"http://testserver/dashboard/invitations/accept/?token={token}" in message.body


def test_the_invitation_email_is_in_the_inviters_language(tenant_a, django_capture_on_commit_callbacks):
    admin = tenant_a.client("tenant_admin")
    admin.credentials(HTTP_ACCEPT_LANGUAGE="zh-Hant", **admin._credentials)
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            f"/v1/tenants/{tenant_a.tenant.pk}/invitations",
            {"email": "lin@example.com.tw", "role": "agent"},
            format="json",
        )
    [message] = mail.outbox
    assert "邀請" in message.subject and "邀請" in message.body


def test_a_sending_failure_keeps_the_invitation(tenant_a, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    with django_capture_on_commit_callbacks(execute=True):
        created = invite(tenant_a)
    assert created.status_code == 201, created.content
    assert Invitation.objects.filter(email="new.agent@example.com").exists()
    assert accept(APIClient(), created.json()["token"]).status_code == 201
