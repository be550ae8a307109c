from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Invitation, User
from conftest import PASSWORD
from platform_project.tests.test_access_matrix import assert_error
from tenants.models import Membership

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


def test_a_person_with_an_account_proves_it_with_their_password(tenant_a, tenant_b, anonymous):
    token = invite(tenant_a, email=tenant_b.agent.email, role="tenant_admin").json()["token"]
    assert_error(accept(anonymous, token, password="not-their-password"), 401)
    assert accept(anonymous, token).status_code == 201
    assert Membership.objects.get(user=tenant_b.agent, tenant=tenant_a.tenant).role == "tenant_admin"


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
        anonymous.post("/v1/auth/invitations/accept", {"token": 5}, format="json"), 400, "validation_error"
    )
