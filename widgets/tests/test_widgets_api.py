"""Tenant admins manage their widgets: keys, origins, the identity secret shown once, audit."""

import pytest

from tenants.models import AuditEvent
from widgets.models import Widget

pytestmark = pytest.mark.django_db


def url(people, *rest):
    return "/".join([f"/v1/tenants/{people.tenant.pk}/widgets", *map(str, rest)])


def test_admin_creates_a_widget_with_a_publishable_key_and_a_snippet(tenant_a):
    response = tenant_a.client("tenant_admin").post(
        url(tenant_a),
        {"name": "官網", "allowed_origins": ["HTTPS://Shop.Example.com:443/", "http://localhost:8080"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["public_key"].startswith("pk_")
    assert body["allowed_origins"] == ["https://shop.example.com", "http://localhost:8080"]
    assert body["identity_secret"] is None
    assert f'data-key="{body["public_key"]}"' in body["embed_snippet"]
    assert "/widget.js" in body["embed_snippet"]
    assert AuditEvent.objects.filter(tenant=tenant_a.tenant, action="widget.create").exists()


def test_the_identity_secret_is_shown_once_stored_encrypted_and_rotatable(tenant_a):
    admin = tenant_a.client("tenant_admin")
    body = admin.post(
        url(tenant_a),
        {"name": "會員", "allowed_origins": ["https://shop.example.com"], "identity_verification": True},
        format="json",
    ).json()
    secret = body["identity_secret"]
    assert secret and secret.startswith("whsec_")
    widget = Widget.objects.get(pk=body["id"])
    assert secret not in widget.identity_secret_encrypted
    assert admin.get(url(tenant_a, widget.pk)).json()["identity_secret"] is None
    rotated = admin.post(url(tenant_a, widget.pk, "rotate-secret"), format="json")
    assert rotated.status_code == 200
    assert rotated.json()["identity_secret"] not in (None, secret)
    assert AuditEvent.objects.filter(tenant=tenant_a.tenant, action="widget.rotate_secret").count() == 1


@pytest.mark.parametrize(
    "origins",
    [[], ["shop.example.com"], ["https://shop.example.com/path"], ["ftp://shop.example.com"], ["null"], "x"],
)
def test_origins_must_be_exact_origins_and_at_least_one(tenant_a, origins):
    response = tenant_a.client("tenant_admin").post(
        url(tenant_a), {"name": "x", "allowed_origins": origins}, format="json"
    )
    assert response.status_code == 400
    assert "allowed_origins" in response.json()["error"]["details"]


def test_update_and_delete_are_audited(tenant_a, widget_a):
    admin = tenant_a.client("tenant_admin")
    response = admin.patch(url(tenant_a, widget_a.pk), {"enabled": False, "greeting": "哈囉"}, format="json")
    assert response.status_code == 200
    assert response.json()["enabled"] is False and response.json()["greeting"] == "哈囉"
    assert admin.delete(url(tenant_a, widget_a.pk)).status_code == 204
    actions = set(AuditEvent.objects.filter(tenant=tenant_a.tenant).values_list("action", flat=True))
    assert {"widget.update", "widget.delete"} <= actions
    assert admin.get(url(tenant_a, widget_a.pk)).status_code == 404


@pytest.mark.parametrize("role", ["agent", "end_user"])
def test_it_requires_a_tenant_admin(tenant_a, widget_a, role):
    client = tenant_a.client(role)
    assert client.get(url(tenant_a)).status_code == 403
    assert client.post(url(tenant_a, widget_a.pk, "rotate-secret")).status_code == 403


def test_it_checks_ownership(tenant_a, tenant_b, widget_a):
    other = tenant_b.client("tenant_admin")
    assert other.get(url(tenant_a, widget_a.pk)).status_code == 404
    assert other.get(url(tenant_b, widget_a.pk)).status_code == 404
    assert other.patch(url(tenant_b, widget_a.pk), {"name": "x"}, format="json").status_code == 404
    assert other.delete(url(tenant_b, widget_a.pk)).status_code == 404
    assert other.get(url(tenant_b)).json()["count"] == 0
    assert Widget.objects.filter(pk=widget_a.pk).exists()


def test_list_query_count_does_not_grow(tenant_a, django_assert_max_num_queries):
    admin = tenant_a.client("tenant_admin")
    for number in range(5):
        admin.post(
            url(tenant_a), {"name": f"w{number}", "allowed_origins": ["https://a.example"]}, format="json"
        )
    with django_assert_max_num_queries(8):
        assert admin.get(url(tenant_a)).json()["count"] == 5
