"""The dashboard's isolation core: session sign-in, the URL's tenant resolved against the user's
memberships (another tenant 404, suspended 403, platform admins everywhere), the role matrix."""

import uuid

import pytest
from django.test import Client

from tenants.middleware import SESSION_TENANT_KEY
from tenants.services import membership_create
from testsupport.dashboard import signed_in

pytestmark = pytest.mark.django_db


def overview(tenant) -> str:
    return f"/dashboard/t/{tenant.pk}/"


def test_it_requires_a_session_sign_in(tenant_a):
    response = Client().get(overview(tenant_a.tenant))
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/login/?next=/dashboard/t/{tenant_a.tenant.pk}/"


def test_it_ignores_an_api_token(tenant_a):
    """The dashboard is session-only: a bearer token does not sign anyone in."""
    response = tenant_a.client("tenant_admin").get(overview(tenant_a.tenant))
    assert response.status_code == 302


@pytest.mark.parametrize("role", ["tenant_admin", "agent"])
def test_staff_open_their_tenant(tenant_a, role):
    response = signed_in(tenant_a.user(role)).get(overview(tenant_a.tenant))
    assert response.status_code == 200
    assert response.context["request"].tenant == tenant_a.tenant
    assert response.context["request"].role == role


def test_it_checks_ownership_of_the_tenant(tenant_a, tenant_b):
    response = signed_in(tenant_b.tenant_admin).get(overview(tenant_a.tenant))
    assert response.status_code == 404


def test_an_unknown_tenant_is_not_found(tenant_a):
    response = signed_in(tenant_a.tenant_admin).get(f"/dashboard/t/{uuid.uuid4()}/")
    assert response.status_code == 404


def test_end_users_are_refused(tenant_a):
    response = signed_in(tenant_a.end_user).get(overview(tenant_a.tenant))
    assert response.status_code == 403
    assert "dashboard/forbidden.html" in [template.name for template in response.templates]


def test_a_suspended_tenant_gets_a_403_page(tenant_a):
    tenant_a.tenant.status = "suspended"
    tenant_a.tenant.save()
    response = signed_in(tenant_a.tenant_admin).get(overview(tenant_a.tenant))
    assert response.status_code == 403
    assert b"suspended" in response.content


def test_platform_admins_reach_every_tenant(tenant_a, tenant_b, platform_admin):
    client = signed_in(platform_admin)
    for people in (tenant_a, tenant_b):
        response = client.get(overview(people.tenant))
        assert response.status_code == 200
        assert response.context["request"].role == "platform_admin"


def test_a_member_of_two_tenants_opens_both_and_the_session_follows(tenant_a, tenant_b):
    user = tenant_a.agent
    membership_create(tenant=tenant_b.tenant, user=user, role="tenant_admin")
    client = signed_in(user)
    assert client.get(overview(tenant_b.tenant)).context["request"].role == "tenant_admin"
    assert client.session[SESSION_TENANT_KEY] == str(tenant_b.tenant.pk)
    assert client.get(overview(tenant_a.tenant)).context["request"].role == "agent"
    assert client.session[SESSION_TENANT_KEY] == str(tenant_a.tenant.pk)
    assert client.get("/dashboard/")["Location"] == overview(tenant_a.tenant)


def test_the_sidebar_lists_only_what_the_role_may_open(tenant_a):
    agent_page = signed_in(tenant_a.agent).get(overview(tenant_a.tenant))
    admin_page = signed_in(tenant_a.tenant_admin).get(overview(tenant_a.tenant))
    agent_links = {item["url"] for item in agent_page.context["navigation"]}
    admin_links = {item["url"] for item in admin_page.context["navigation"]}
    members = f"/dashboard/t/{tenant_a.tenant.pk}/members/"
    usage = f"/dashboard/t/{tenant_a.tenant.pk}/usage/"
    assert members not in agent_links and usage not in agent_links
    assert {members, usage} <= admin_links
    assert members.encode() not in agent_page.content
