import pytest

from tenants.models import Membership, Tenant
from testsupport.api import assert_error
from testsupport.people import client_for

pytestmark = pytest.mark.django_db


def test_platform_admin_creates_a_tenant_with_a_seed_plan_name(platform_admin):
    response = client_for(platform_admin).post(
        "/v1/tenants",
        {"name": "台灣科技股份有限公司", "description": "客服", "plan": "專業版"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["plan"]["code"] == "pro"
    assert body["status"] == "active"
    assert body["slug"]
    assert Tenant.objects.get(pk=body["id"]).name == "台灣科技股份有限公司"


def test_create_without_plan_takes_the_default_plan(platform_admin):
    response = client_for(platform_admin).post("/v1/tenants", {"name": "Acme"}, format="json")
    assert response.json()["plan"]["code"] == "free"


def test_create_refuses_an_unknown_plan_naming_the_known_ones(platform_admin):
    response = client_for(platform_admin).post("/v1/tenants", {"name": "Acme", "plan": "gold"}, format="json")
    assert_error(response, 400, "validation_error")
    assert "pro" in response.json()["error"]["message"]
    assert not Tenant.objects.filter(name="Acme").exists()


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "x" * 201}, {"name": "x", "settings": "not-a-dict"}]
)
def test_create_answers_invalid_bodies_with_400(platform_admin, body):
    assert_error(client_for(platform_admin).post("/v1/tenants", body, format="json"), 400, "validation_error")


@pytest.mark.parametrize("role", ["tenant_admin", "agent", "end_user"])
def test_only_platform_admins_list_and_create_tenants(tenant_a, role):
    client = tenant_a.client(role)
    assert_error(client.get("/v1/tenants"), 403, "permission_denied")
    assert_error(client.post("/v1/tenants", {"name": "Mine"}, format="json"), 403, "permission_denied")


def test_listing_tenants_requires_a_token(anonymous):
    assert_error(anonymous.get("/v1/tenants"), 401, "not_authenticated")


def test_tenant_list_is_paginated_filtered_and_query_bounded(
    platform_admin, tenant_a, tenant_b, django_assert_max_num_queries
):
    client = client_for(platform_admin)
    with django_assert_max_num_queries(4):
        page = client.get("/v1/tenants?page_size=1").json()
    assert page["count"] == 2
    assert len(page["results"]) == 1
    assert page["next"]
    tenant_b.tenant.status = "suspended"
    tenant_b.tenant.save()
    suspended = client.get("/v1/tenants?status=suspended").json()
    assert [item["name"] for item in suspended["results"]] == ["Tenant B"]
    assert client.get("/v1/tenants?search=nt A").json()["count"] == 1


def test_page_out_of_range_is_404_in_the_error_format(platform_admin, tenant_a):
    assert_error(client_for(platform_admin).get("/v1/tenants?page=99"), 404, "not_found")


def test_tenant_admin_updates_name_and_settings(tenant_a):
    response = tenant_a.client("tenant_admin").patch(
        f"/v1/tenants/{tenant_a.tenant.pk}",
        {"name": "新名稱", "settings": {"assistant": {"system_prompt": "您好"}}},
        format="json",
    )
    assert response.status_code == 200, response.content
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.name == "新名稱"
    assert tenant_a.tenant.settings == {"assistant": {"system_prompt": "您好"}}


@pytest.mark.parametrize("change", [{"plan": "enterprise"}, {"status": "suspended"}])
def test_tenant_admin_cannot_change_plan_or_status(tenant_a, change):
    response = tenant_a.client("tenant_admin").patch(
        f"/v1/tenants/{tenant_a.tenant.pk}", change, format="json"
    )
    assert_error(response, 403, "permission_denied")
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.plan.code == "pro"
    assert tenant_a.tenant.status == "active"


def test_platform_admin_changes_plan_by_alias(platform_admin, tenant_a):
    response = client_for(platform_admin).patch(
        f"/v1/tenants/{tenant_a.tenant.pk}", {"plan": "企業版"}, format="json"
    )
    assert response.json()["plan"]["code"] == "enterprise"


def test_oversized_settings_are_refused(tenant_a):
    response = tenant_a.client("tenant_admin").patch(
        f"/v1/tenants/{tenant_a.tenant.pk}", {"settings": {"blob": "字" * 30000}}, format="json"
    )
    assert_error(response, 400, "validation_error")


def test_deleting_a_tenant_removes_its_memberships_only(platform_admin, tenant_a, tenant_b):
    assert client_for(platform_admin).delete(f"/v1/tenants/{tenant_a.tenant.pk}").status_code == 204
    assert not Membership.objects.filter(tenant_id=tenant_a.tenant.pk).exists()
    assert Membership.objects.filter(tenant=tenant_b.tenant).count() == 3


# --- members ------------------------------------------------------------------------------


def test_member_list_shows_people_and_roles(tenant_a, tenant_b, django_assert_max_num_queries):
    client = tenant_a.client("tenant_admin")
    with django_assert_max_num_queries(6):
        body = client.get(f"/v1/tenants/{tenant_a.tenant.pk}/members").json()
    assert body["count"] == 3
    assert {member["user"]["email"] for member in body["results"]} == {
        "tenant_admin.a@example.com",
        "agent.a@example.com",
        "end_user.a@example.com",
    }
    agents = client.get(f"/v1/tenants/{tenant_a.tenant.pk}/members?role=agent").json()
    assert [member["role"] for member in agents["results"]] == ["agent"]


def test_the_last_tenant_admin_cannot_be_demoted_or_removed(tenant_a):
    client = tenant_a.client("tenant_admin")
    own = Membership.objects.get(user=tenant_a.tenant_admin)
    url = f"/v1/tenants/{tenant_a.tenant.pk}/members/{own.pk}"
    assert_error(client.patch(url, {"role": "agent"}, format="json"), 409, "last_tenant_admin")
    assert_error(client.delete(url), 409, "last_tenant_admin")
    own.refresh_from_db()
    assert own.role == "tenant_admin"


def test_promoting_then_demoting_an_admin(tenant_a):
    client = tenant_a.client("tenant_admin")
    agent = Membership.objects.get(user=tenant_a.agent)
    url = f"/v1/tenants/{tenant_a.tenant.pk}/members/{agent.pk}"
    assert client.patch(url, {"role": "tenant_admin"}, format="json").json()["role"] == "tenant_admin"
    own = Membership.objects.get(user=tenant_a.tenant_admin)
    response = client.patch(
        f"/v1/tenants/{tenant_a.tenant.pk}/members/{own.pk}", {"role": "agent"}, format="json"
    )
    assert response.status_code == 200


def test_member_role_must_be_a_known_role(tenant_a):
    agent = Membership.objects.get(user=tenant_a.agent)
    response = tenant_a.client("tenant_admin").patch(
        f"/v1/tenants/{tenant_a.tenant.pk}/members/{agent.pk}", {"role": "platform_admin"}, format="json"
    )
    assert_error(response, 400, "validation_error")
    assert "role" in response.json()["error"]["details"]


def test_a_settings_patch_replaces_only_the_sections_it_names(tenant_a):
    tenant = tenant_a.tenant
    tenant.settings = {
        "assistant": {"system_prompt": "你是客服。"},
        "retrieval": {"top_k": 3},
        "old": {"x": 1},
    }
    tenant.save()

    response = tenant_a.client("tenant_admin").patch(
        f"/v1/tenants/{tenant.pk}", {"settings": {"retrieval": {"top_k": 8}, "old": None}}, format="json"
    )

    assert response.status_code == 200, response.content
    tenant.refresh_from_db()
    assert tenant.settings == {"assistant": {"system_prompt": "你是客服。"}, "retrieval": {"top_k": 8}}
