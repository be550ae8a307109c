"""The one membership read every interface resolves its caller through (`membership_for`), and
the access it gives (`tenants.access`)."""

from tenants.access import TenantAccess, credential_access
from tenants.roles import PLATFORM_ADMIN
from tenants.selectors import membership_for
from tenants.services import membership_create


def test_membership_for_reads_the_membership_with_its_tenant_and_plan_in_one_query(
    tenant_a, django_assert_num_queries
):
    with django_assert_num_queries(1):
        membership = membership_for(user=tenant_a.agent, tenant_id=tenant_a.tenant.pk)
        assert membership.role == "agent"
        assert membership.tenant.plan.code == tenant_a.tenant.plan.code


def test_membership_for_finds_nothing_in_another_tenant(tenant_a, tenant_b):
    assert membership_for(user=tenant_a.tenant_admin, tenant_id=tenant_b.tenant.pk) is None


def test_membership_for_without_a_tenant_reads_nothing(tenant_a, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert membership_for(user=tenant_a.agent, tenant_id=None) is None
        assert membership_for(user=tenant_a.agent, tenant_id="") is None


def test_a_credential_for_a_tenant_left_gives_no_access(tenant_a, tenant_b):
    assert credential_access(user=tenant_a.agent, tenant_id=tenant_b.tenant.pk) is None


def test_a_credential_gives_the_role_in_the_database(tenant_a):
    access = credential_access(user=tenant_a.end_user, tenant_id=str(tenant_a.tenant.pk))
    assert (access.tenant, access.role) == (tenant_a.tenant, "end_user")
    assert access.membership.user == tenant_a.end_user


def test_a_platform_admin_is_platform_admin_through_any_membership(tenant_a, platform_admin):
    membership = membership_create(tenant=tenant_a.tenant, user=platform_admin, role="agent")
    access = credential_access(user=platform_admin, tenant_id=tenant_a.tenant.pk)
    assert (access.tenant, access.role, access.membership) == (tenant_a.tenant, PLATFORM_ADMIN, membership)
    assert credential_access(user=platform_admin, tenant_id=None) == TenantAccess(role=PLATFORM_ADMIN)
