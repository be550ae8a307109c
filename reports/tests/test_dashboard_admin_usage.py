"""The operators' tenant list and page show this month's tokens against the plan's quota."""

import pytest

from llm.base import Usage
from llm.services import usage_record
from testsupport.people import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_tenant_list_shows_tokens_against_the_quota_without_a_query_per_row(
    client, platform_admin, tenant_a, tenant_b, django_assert_max_num_queries
):
    tenant_a.tenant.plan.monthly_token_quota = 10_000
    tenant_a.tenant.plan.save()
    usage_record(
        tenant=tenant_a.tenant,
        usage=Usage(prompt_tokens=1500, completion_tokens=500, provider="offline", model=""),
    )
    assert client.login(email=platform_admin.email, password=PASSWORD)
    with django_assert_max_num_queries(10):
        response = client.get("/admin/tenants/tenant/")
    html = response.content.decode()
    assert "2,000 / 10,000 (20%)" in html
    page = client.get(f"/admin/tenants/tenant/{tenant_a.tenant.pk}/change/").content.decode()
    assert "Tokens this month" in page and "2,000" in page
