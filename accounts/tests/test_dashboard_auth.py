"""Dashboard sign-in and out, the tenant chooser, password change, invitations and members."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Invitation
from accounts.services import invitation_create
from tenants.middleware import SESSION_TENANT_KEY
from tenants.models import Membership
from tenants.services import membership_create
from testsupport.dashboard import signed_in
from testsupport.people import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOGIN = "/dashboard/login/"


def members_url(people) -> str:
    return reverse("dashboard:members", kwargs={"tenant_id": people.tenant.pk})


def test_sign_in_with_one_tenant_lands_on_its_overview(tenant_a):
    client = Client(enforce_csrf_checks=True)
    page = client.get(LOGIN)
    assert page.status_code == 200
    csrf = page.cookies["csrftoken"].value
    response = client.post(
        LOGIN, {"email": "Tenant_Admin.A@example.com", "password": PASSWORD, "csrfmiddlewaretoken": csrf}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/t/{tenant_a.tenant.pk}/"
    assert client.session[SESSION_TENANT_KEY] == str(tenant_a.tenant.pk)


def test_sign_in_refuses_a_form_without_csrf(tenant_a):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN, {"email": tenant_a.tenant_admin.email, "password": PASSWORD})
    assert response.status_code == 403


def test_a_wrong_password_and_an_unknown_email_get_the_same_error(tenant_a):
    wrong = Client().post(LOGIN, {"email": tenant_a.agent.email, "password": "nope-nope-nope"})
    unknown = Client().post(LOGIN, {"email": "nobody@example.com", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()
    assert "The email or password is incorrect." in wrong.content.decode()


def test_repeated_failures_are_throttled(tenant_a, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    client = Client()
    for _attempt in range(2):
        client.post(LOGIN, {"email": tenant_a.agent.email, "password": "wrong-password"})
    response = client.post(LOGIN, {"email": tenant_a.agent.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_end_users_cannot_sign_in_to_the_dashboard(tenant_a):
    response = Client().post(LOGIN, {"email": tenant_a.end_user.email, "password": PASSWORD})
    assert response.status_code == 403
    assert "for tenant staff" in response.content.decode()


def test_next_is_followed_only_on_this_site(tenant_a):
    target = f"/dashboard/t/{tenant_a.tenant.pk}/documents/"
    response = Client().post(f"{LOGIN}?next={target}", {"email": tenant_a.agent.email, "password": PASSWORD})
    assert response["Location"] == target
    evil = Client().post(
        f"{LOGIN}?next=https://evil.example/", {"email": tenant_a.agent.email, "password": PASSWORD}
    )
    assert evil["Location"] == f"/dashboard/t/{tenant_a.tenant.pk}/"


def test_several_memberships_choose_a_tenant_then_switch(tenant_a, tenant_b):
    membership_create(tenant=tenant_b.tenant, user=tenant_a.agent, role="agent")
    client = Client()
    response = client.post(LOGIN, {"email": tenant_a.agent.email, "password": PASSWORD})
    assert response["Location"] == reverse("dashboard:choose-tenant")
    chooser = client.get(response["Location"])
    assert [m.tenant for m in chooser.context["memberships"]] == [tenant_a.tenant, tenant_b.tenant]
    overview = client.get(f"/dashboard/t/{tenant_a.tenant.pk}/")
    # The header offers the other tenant.
    assert [m.tenant for m in overview.context["switchable_memberships"]] == [tenant_b.tenant]
    assert f"/dashboard/t/{tenant_b.tenant.pk}/" in overview.content.decode()


def test_platform_admins_choose_among_all_tenants(tenant_a, tenant_b, platform_admin):
    client = signed_in(platform_admin)
    assert client.get("/dashboard/")["Location"] == reverse("dashboard:choose-tenant")
    page = client.get(reverse("dashboard:choose-tenant"), {"search": "Tenant B"})
    assert [tenant.pk for tenant in page.context["page"]] == [tenant_b.tenant.pk]


def test_sign_out_is_a_post(tenant_a):
    client = signed_in(tenant_a.agent)
    assert client.get("/dashboard/logout/").status_code == 405
    response = client.post("/dashboard/logout/")
    assert response["Location"] == LOGIN
    assert client.get(f"/dashboard/t/{tenant_a.tenant.pk}/").status_code == 302


def test_password_change(tenant_a):
    client = signed_in(tenant_a.agent)
    response = client.post(
        "/dashboard/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-pass-phrase",
            "new_password2": "a-new-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    tenant_a.agent.refresh_from_db()
    assert tenant_a.agent.check_password("a-new-long-pass-phrase")


def test_an_invitation_is_accepted_by_a_new_person_who_lands_in_the_dashboard(tenant_a):
    _invitation, token = invitation_create(
        tenant=tenant_a.tenant, email="new.agent@example.com", role="agent", invited_by=tenant_a.tenant_admin
    )
    client = Client()
    page = client.get("/dashboard/invitations/accept/", {"token": token})
    assert page.status_code == 200 and token in page.content.decode()
    weak = client.post("/dashboard/invitations/accept/", {"token": token, "password": "123", "name": "N"})
    assert weak.status_code == 400 and weak.context["form"].errors["password"]
    response = client.post(
        "/dashboard/invitations/accept/", {"token": token, "password": "a-long-pass-phrase", "name": "New"}
    )
    assert response["Location"] == f"/dashboard/t/{tenant_a.tenant.pk}/"
    assert Membership.objects.get(user__email="new.agent@example.com").role == "agent"
    again = Client().post(
        "/dashboard/invitations/accept/", {"token": token, "password": "a-long-pass-phrase", "name": "New"}
    )
    assert again.status_code == 400
    assert "invalid, used or expired" in again.content.decode()


def test_admins_invite_and_the_link_is_shown_once(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    response = client.post(members_url(tenant_a), {"email": "Helper@Example.com", "role": "agent"})
    assert response.status_code == 200
    link = response.context["new_invitation_link"]
    token = re.search(r"token=([\w-]+)", link).group(1)
    assert link in response.content.decode()
    invitation = Invitation.objects.get(email="helper@example.com")
    assert invitation.token_hash != token
    assert link not in client.get(members_url(tenant_a)).content.decode()
    duplicate = client.post(members_url(tenant_a), {"email": "helper@example.com", "role": "agent"})
    assert duplicate.status_code == 400 and duplicate.context["invitation_form"].errors["email"]


def test_admins_change_roles_remove_members_and_revoke_invitations(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    agent = Membership.objects.get(user=tenant_a.agent, tenant=tenant_a.tenant)
    client.post(
        reverse("dashboard:member-update", kwargs={"tenant_id": tenant_a.tenant.pk, "member_id": agent.pk}),
        {"role": "tenant_admin"},
    )
    agent.refresh_from_db()
    assert agent.role == "tenant_admin"
    client.post(
        reverse("dashboard:member-update", kwargs={"tenant_id": tenant_a.tenant.pk, "member_id": agent.pk}),
        {"remove": "1"},
    )
    assert not Membership.objects.filter(pk=agent.pk).exists()
    invitation, _token = invitation_create(
        tenant=tenant_a.tenant, email="x@example.com", role="agent", invited_by=None
    )
    client.post(
        reverse(
            "dashboard:invitation-revoke",
            kwargs={"tenant_id": tenant_a.tenant.pk, "invitation_id": invitation.pk},
        )
    )
    assert not Invitation.objects.filter(pk=invitation.pk).exists()


def test_the_last_tenant_admin_cannot_be_demoted(tenant_a):
    admin = Membership.objects.get(user=tenant_a.tenant_admin, tenant=tenant_a.tenant)
    client = signed_in(tenant_a.tenant_admin)
    response = client.post(
        reverse("dashboard:member-update", kwargs={"tenant_id": tenant_a.tenant.pk, "member_id": admin.pk}),
        {"role": "agent"},
        follow=True,
    )
    assert "at least one tenant admin" in response.content.decode()
    admin.refresh_from_db()
    assert admin.role == "tenant_admin"


def test_members_and_invitations_of_another_tenant_are_not_found(tenant_a, tenant_b):
    member = Membership.objects.get(user=tenant_a.agent, tenant=tenant_a.tenant)
    invitation, _token = invitation_create(
        tenant=tenant_a.tenant, email="y@example.com", role="agent", invited_by=None
    )
    client = signed_in(tenant_b.tenant_admin)
    b = tenant_b.tenant.pk
    assert (
        client.post(
            reverse("dashboard:member-update", kwargs={"tenant_id": b, "member_id": member.pk}),
            {"remove": "1"},
        ).status_code
        == 404
    )
    assert (
        client.post(
            reverse("dashboard:invitation-revoke", kwargs={"tenant_id": b, "invitation_id": invitation.pk})
        ).status_code
        == 404
    )
    assert (
        Membership.objects.filter(pk=member.pk).exists()
        and Invitation.objects.filter(pk=invitation.pk).exists()
    )


def test_agents_cannot_manage_members(tenant_a):
    member = Membership.objects.get(user=tenant_a.end_user, tenant=tenant_a.tenant)
    client = signed_in(tenant_a.agent)
    url = reverse("dashboard:member-update", kwargs={"tenant_id": tenant_a.tenant.pk, "member_id": member.pk})
    assert client.post(url, {"remove": "1"}).status_code == 403
    assert (
        client.post(members_url(tenant_a), {"email": "z@example.com", "role": "tenant_admin"}).status_code
        == 403
    )


def test_a_user_without_membership_sees_an_empty_chooser(db):
    user = make_user("lonely@example.com")
    response = signed_in(user).get("/dashboard/")
    assert response["Location"] == reverse("dashboard:choose-tenant")


def test_the_member_list_needs_no_query_per_member(tenant_a, django_assert_max_num_queries):
    for number in range(15):
        membership_create(tenant=tenant_a.tenant, user=make_user(f"m{number}@example.com"), role="agent")
        invitation_create(
            tenant=tenant_a.tenant,
            email=f"i{number}@example.com",
            role="agent",
            invited_by=tenant_a.tenant_admin,
        )
    client = signed_in(tenant_a.tenant_admin)
    with django_assert_max_num_queries(12):
        response = client.get(members_url(tenant_a))
    assert response.context["members"].paginator.count == 18
    assert len(response.context["invitations"]) == 15


def test_an_existing_account_cannot_accept_on_the_dashboard_with_a_password(tenant_a, tenant_b):
    """The acceptance page never takes an existing account's password: it asks the invitee to
    sign in first, so it neither tests guesses nor starts a session as the invitee."""
    victim = tenant_b.tenant_admin
    _invitation, token = invitation_create(
        tenant=tenant_a.tenant, email=victim.email, role="agent", invited_by=tenant_a.tenant_admin
    )
    client = Client()
    page = client.get("/dashboard/invitations/accept/", {"token": token})
    assert page.status_code == 200
    assert 'type="password"' not in page.content.decode()
    assert "/dashboard/login/?next=" in page.content.decode()
    answer = client.post(
        "/dashboard/invitations/accept/", {"token": token, "password": PASSWORD, "name": "Guess"}
    )
    assert answer.status_code == 401
    assert "_auth_user_id" not in client.session
    assert not Membership.objects.filter(user=victim, tenant=tenant_a.tenant).exists()


def test_an_existing_account_accepts_on_the_dashboard_once_signed_in(tenant_a, tenant_b):
    invitee = tenant_b.agent
    _invitation, token = invitation_create(
        tenant=tenant_a.tenant, email=invitee.email, role="agent", invited_by=tenant_a.tenant_admin
    )
    client = signed_in(invitee)
    page = client.get("/dashboard/invitations/accept/", {"token": token})
    assert page.status_code == 200 and 'type="password"' not in page.content.decode()
    response = client.post("/dashboard/invitations/accept/", {"token": token})
    assert response["Location"] == f"/dashboard/t/{tenant_a.tenant.pk}/"
    assert Membership.objects.get(user=invitee, tenant=tenant_a.tenant).role == "agent"
    _invitation, other_token = invitation_create(
        tenant=tenant_a.tenant, email=tenant_b.tenant_admin.email, role="agent", invited_by=None
    )
    stranger = signed_in(tenant_b.end_user)  # signed in, but not as the invitee
    assert stranger.post("/dashboard/invitations/accept/", {"token": other_token}).status_code == 403
    assert not Membership.objects.filter(user=tenant_b.tenant_admin, tenant=tenant_a.tenant).exists()
