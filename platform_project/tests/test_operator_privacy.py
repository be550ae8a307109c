"""A platform operator (Django staff with no membership in the tenant) acting in a tenant stays
"platform operator" to that tenant's people: its email and address appear neither in the
tenant's audit trail nor in the lists members read. Operators themselves still see who did what."""

import pytest

from conversations.models import Conversation, Message
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.services import membership_create
from testsupport.documents import a_ready_document
from testsupport.people import PASSWORD, client_for, make_user

pytestmark = pytest.mark.django_db


def operator_acts_in(tenant_a, platform_admin):
    """The operator changes the tenant (API), uploads a document, takes over and answers a
    conversation."""
    tenant = tenant_a.tenant
    client_for(platform_admin).patch(f"/v1/tenants/{tenant.pk}", {"description": "checked"}, format="json")
    document = a_ready_document(tenant)
    document.uploaded_by = platform_admin
    document.save()
    conversation = Conversation.objects.create(
        tenant=tenant, user=tenant_a.end_user, title="退貨", status="active", assigned_agent=platform_admin
    )
    Message.objects.create(tenant=tenant, conversation=conversation, role="user", content="我要退貨")
    Message.objects.create(
        tenant=tenant, conversation=conversation, role="agent", content="好的", author=platform_admin
    )
    return conversation


def test_the_tenant_audit_trail_shows_an_operator_as_platform_operator(tenant_a, platform_admin):
    operator_acts_in(tenant_a, platform_admin)
    trail = tenant_a.client("tenant_admin").get(
        f"/v1/tenants/{tenant_a.tenant.pk}/audit?action=tenant.update"
    )

    assert trail.status_code == 200
    [event] = trail.json()["results"]
    assert event["actor_email"] == "platform operator"
    assert event["ip_address"] is None
    assert platform_admin.email not in trail.content.decode()


def test_the_actor_filter_does_not_find_operators_by_email(tenant_a, platform_admin):
    operator_acts_in(tenant_a, platform_admin)
    found = tenant_a.client("tenant_admin").get(f"/v1/tenants/{tenant_a.tenant.pk}/audit?actor=operator@")

    assert found.json()["results"] == []


def test_operators_still_see_who_acted(tenant_a, platform_admin):
    operator_acts_in(tenant_a, platform_admin)
    own = client_for(platform_admin).get(f"/v1/tenants/{tenant_a.tenant.pk}/audit?action=tenant.update")
    everything = client_for(platform_admin).get("/v1/audit?action=tenant.update")

    assert own.json()["results"][0]["actor_email"] == platform_admin.email
    assert everything.json()["results"][0]["actor_email"] == platform_admin.email
    assert AuditEvent.objects.get(action="tenant.update").actor_email == platform_admin.email


def test_a_member_who_is_also_staff_is_shown_by_email(tenant_a):
    staff_member = make_user("staff.member@example.com", staff=True)
    membership_create(tenant=tenant_a.tenant, user=staff_member, role=Role.TENANT_ADMIN)
    client_for(staff_member, tenant=tenant_a.tenant).patch(
        f"/v1/tenants/{tenant_a.tenant.pk}", {"description": "mine"}, format="json"
    )
    trail = tenant_a.client("tenant_admin").get(
        f"/v1/tenants/{tenant_a.tenant.pk}/audit?action=tenant.update"
    )

    assert trail.json()["results"][0]["actor_email"] == staff_member.email


def test_member_facing_api_lists_show_an_operator_as_platform_operator(tenant_a, platform_admin):
    conversation = operator_acts_in(tenant_a, platform_admin)
    base = f"/v1/tenants/{tenant_a.tenant.pk}"
    for role in ("tenant_admin", "agent"):
        client = tenant_a.client(role)
        conversations = client.get(f"{base}/chat/conversations")
        detail = client.get(f"{base}/chat/conversations/{conversation.pk}")
        documents = client.get(f"{base}/documents")
        for response in (conversations, detail, documents):
            assert response.status_code == 200, response.content
            assert platform_admin.email not in response.content.decode()
            assert platform_admin.name not in response.content.decode()
        assert conversations.json()["results"][0]["assigned_agent"] == "platform operator"
        assert detail.json()["messages"][-1]["author"] == "platform operator"
        if role == "tenant_admin":
            assert documents.json()["results"][0]["uploaded_by"] == "platform operator"
    own = tenant_a.client("end_user").get(f"{base}/chat/conversations/{conversation.pk}")
    assert platform_admin.email not in own.content.decode()


def test_dashboard_pages_show_an_operator_as_platform_operator(client, tenant_a, platform_admin):
    conversation = operator_acts_in(tenant_a, platform_admin)
    Conversation.objects.filter(pk=conversation.pk).update(status="handoff")
    assert client.login(email=tenant_a.tenant_admin.email, password=PASSWORD)
    base = f"/dashboard/t/{tenant_a.tenant.pk}"
    for path in ("/documents/", "/conversations/", f"/conversations/{conversation.pk}/", "/inbox/"):
        page = client.get(base + path)
        assert page.status_code == 200, path
        assert platform_admin.email not in page.content.decode(), path
        assert "platform operator" in page.content.decode(), path


def test_the_operator_label_is_translated(client, tenant_a, platform_admin):
    operator_acts_in(tenant_a, platform_admin)
    assert client.login(email=tenant_a.tenant_admin.email, password=PASSWORD)
    page = client.get(f"/dashboard/t/{tenant_a.tenant.pk}/documents/", HTTP_ACCEPT_LANGUAGE="zh-Hant")
    assert "平台營運人員" in page.content.decode()
