"""Every administrative action leaves one audit event (who, what, which tenant, when), whichever
door it came through; tenant admins read their tenant's trail, operators everyone's."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tenants.models import AuditEvent, Membership
from testsupport.api import assert_error
from testsupport.people import PASSWORD, client_for

pytestmark = pytest.mark.django_db


def trail(tenant) -> list[tuple[str, str]]:
    return [
        (event.actor_email, event.action) for event in AuditEvent.objects.for_tenant(tenant).order_by("id")
    ]


def test_administrative_actions_through_the_api_are_recorded_with_their_actor(
    tenant_a, platform_admin, milvus_uri, eager_ingestion
):
    admin = tenant_a.client("tenant_admin")
    base = f"/v1/tenants/{tenant_a.tenant.pk}"
    AuditEvent.objects.all().delete()  # the fixtures' own set-up

    admin.patch(base, {"description": "新的描述"}, format="json")
    invitation = admin.post(
        f"{base}/invitations", {"email": "new@example.com", "role": "agent"}, format="json"
    )
    admin.delete(f"{base}/invitations/{invitation.json()['id']}")
    agent = Membership.objects.get(tenant=tenant_a.tenant, user=tenant_a.agent)
    admin.patch(f"{base}/members/{agent.pk}", {"role": "end_user"}, format="json")
    upload = admin.post(
        f"{base}/documents/upload",
        {"file": SimpleUploadedFile("faq.txt", b"Returns within 7 days.")},
        format="multipart",
    )
    admin.post(f"{base}/documents/{upload.json()['id']}/reindex")
    admin.delete(f"{base}/documents/{upload.json()['id']}")
    admin.put(
        f"{base}/assistant",
        {"providers": [{"kind": "openai", "model": "m", "api_key": "sk-secret-1"}]},
        format="json",
    )
    client_for(platform_admin).patch(base, {"status": "suspended"}, format="json")

    email = tenant_a.tenant_admin.email
    assert trail(tenant_a.tenant) == [
        (email, "tenant.update"),
        (email, "invitation.create"),
        (email, "invitation.revoke"),
        (email, "member.role_change"),
        (email, "document.upload"),
        (email, "document.reindex"),
        (email, "document.delete"),
        (email, "assistant.update"),
        (platform_admin.email, "tenant.suspend"),
    ]
    events = AuditEvent.objects.for_tenant(tenant_a.tenant)
    assert events.get(action="member.role_change").details == {
        "email": tenant_a.agent.email,
        "from": "agent",
        "to": "end_user",
    }
    assert "sk-secret-1" not in str(events.get(action="assistant.update").details)
    assert all(event.ip_address == "127.0.0.1" for event in events)


def test_the_django_admin_and_background_work_are_recorded_too(client, tenant_a, platform_admin):
    from tenants.services import tenant_update

    assert client.login(email=platform_admin.email, password=PASSWORD)
    client.post(
        "/admin/tenants/tenant/",
        {"action": "suspend", "_selected_action": [str(tenant_a.tenant.pk)]},
    )
    tenant_a.tenant.refresh_from_db()
    tenant_update(tenant=tenant_a.tenant, status="active")  # no request: the system

    assert trail(tenant_a.tenant)[-2:] == [
        (platform_admin.email, "tenant.suspend"),
        ("system", "tenant.reactivate"),
    ]


def test_tenant_admins_read_their_own_trail_only(tenant_a, tenant_b, platform_admin):
    tenant_a.client("tenant_admin").patch(
        f"/v1/tenants/{tenant_a.tenant.pk}", {"description": "A"}, format="json"
    )
    tenant_b.client("tenant_admin").patch(
        f"/v1/tenants/{tenant_b.tenant.pk}", {"description": "B"}, format="json"
    )

    own = tenant_a.client("tenant_admin").get(f"/v1/tenants/{tenant_a.tenant.pk}/audit?action=tenant.")
    assert own.status_code == 200
    assert {event["tenant_id"] for event in own.json()["results"]} == {str(tenant_a.tenant.pk)}
    assert [event["action"] for event in own.json()["results"]] == ["tenant.update", "tenant.create"]
    assert_error(tenant_b.client("tenant_admin").get(f"/v1/tenants/{tenant_a.tenant.pk}/audit"), 404)
    for role in ("agent", "end_user"):
        assert_error(tenant_a.client(role).get(f"/v1/tenants/{tenant_a.tenant.pk}/audit"), 403)

    everything = client_for(platform_admin).get("/v1/audit?action=tenant.update")
    assert {event["tenant_id"] for event in everything.json()["results"]} == {
        str(tenant_a.tenant.pk),
        str(tenant_b.tenant.pk),
    }
    assert_error(tenant_a.client("tenant_admin").get("/v1/audit"), 403)
    assert_error(client_for(platform_admin).get("/v1/audit?since=yesterday"), 400)
