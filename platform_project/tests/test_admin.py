import pytest

from tenants.models import Tenant
from testsupport.people import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_browser(client, platform_admin):
    assert client.login(email=platform_admin.email, password=PASSWORD)
    return client


@pytest.mark.parametrize(
    "page",
    [
        "/admin/",
        "/admin/tenants/tenant/",
        "/admin/tenants/tenant/?status__exact=active&q=Tenant",
        "/admin/tenants/plan/",
        "/admin/tenants/membership/",
        "/admin/accounts/user/",
        "/admin/accounts/user/?q=agent",
        "/admin/accounts/invitation/",
        "/admin/conversations/conversation/",
        "/admin/conversations/conversation/?status__exact=handoff",
        "/admin/conversations/feedback/",
        "/admin/llm/providerconfig/",
        "/admin/llm/usageday/",
        "/admin/line_channel/linechannel/",
        "/admin/line_channel/lineuser/",
        "/admin/line_channel/lineevent/",
        "/admin/line_channel/linedelivery/",
    ],
)
def test_operator_pages_load(operator_browser, tenant_a, page):
    assert operator_browser.get(page).status_code == 200


def test_operator_opens_a_tenant(operator_browser, tenant_a):
    response = operator_browser.get(f"/admin/tenants/tenant/{tenant_a.tenant.pk}/change/")
    assert response.status_code == 200
    assert b"agent.a@example.com" in response.content


def test_suspend_and_reactivate_actions(operator_browser, tenant_a, tenant_b):
    operator_browser.post(
        "/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [str(tenant_a.tenant.pk)]}
    )
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).status == "suspended"
    assert Tenant.objects.get(pk=tenant_b.tenant.pk).status == "active"
    operator_browser.post(
        "/admin/tenants/tenant/", {"action": "reactivate", "_selected_action": [str(tenant_a.tenant.pk)]}
    )
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).status == "active"


def test_tenant_staff_cannot_enter_the_admin(client, tenant_a):
    assert client.login(email=tenant_a.tenant_admin.email, password=PASSWORD)
    response = client.get("/admin/tenants/tenant/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_operator_reads_a_conversation_with_its_messages(operator_browser, tenant_a):
    from conversations.models import Conversation, Message

    conversation = Conversation.objects.create(tenant=tenant_a.tenant, user=tenant_a.end_user, title="退貨")
    Message.objects.create(
        tenant=tenant_a.tenant, conversation=conversation, role="user", content="可以退貨嗎？"
    )
    response = operator_browser.get(f"/admin/conversations/conversation/{conversation.pk}/change/")
    assert response.status_code == 200
    assert "可以退貨嗎？" in response.content.decode()
