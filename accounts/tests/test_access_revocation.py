"""Every path that takes access away announces it (tenants.revocation), so that open sockets
look again: the services, and the Django admin's edits that bypass them."""

import pytest
from django.test import Client

from accounts.services import user_set_active
from tenants import revocation
from tenants import services as tenant_services
from tenants.models import Membership

pytestmark = pytest.mark.django_db


def stamps(people, role: str) -> dict:
    user = people.user(role)
    return revocation.access_stamps(revocation.socket_keys(user_id=user.pk, tenant_id=people.tenant.pk))


def admin_client(platform_admin) -> Client:
    client = Client()
    client.force_login(platform_admin)
    return client


def change_form_data(response) -> dict:
    """The admin change form's current values, as the browser would post them back."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or getattr(field, "disabled", False):
            continue
        if isinstance(value, list | tuple):
            data[name] = [str(item) for item in value]
        elif hasattr(value, "date") and hasattr(value, "time"):
            data[f"{name}_0"], data[f"{name}_1"] = value.date().isoformat(), value.time().isoformat()
        elif value is True:
            data[name] = "on"
        elif value is not False:
            data[name] = str(value)
    return data


@pytest.mark.parametrize(
    "change",
    [
        lambda people: tenant_services.tenant_suspend(tenant=people.tenant),
        lambda people: tenant_services.membership_set_role(
            membership=Membership.objects.get(user=people.agent), role="end_user"
        ),
        lambda people: tenant_services.membership_delete(
            membership=Membership.objects.get(user=people.agent)
        ),
        lambda people: user_set_active(user=people.agent, active=False),
    ],
    ids=["suspend", "demote", "remove", "deactivate"],
)
def test_services_that_take_access_away_move_the_stamps_once_committed(
    tenant_a, django_capture_on_commit_callbacks, change
):
    before = stamps(tenant_a, "agent")
    with django_capture_on_commit_callbacks(execute=True):
        change(tenant_a)
        assert stamps(tenant_a, "agent") == before  # not before the commit
    assert stamps(tenant_a, "agent") != before


def test_a_tenant_settings_change_moves_no_stamp(tenant_a, django_capture_on_commit_callbacks):
    before = stamps(tenant_a, "agent")
    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.tenant_update(tenant=tenant_a.tenant, description="Now with more help")
    assert stamps(tenant_a, "agent") == before


def test_deactivating_a_user_in_the_admin_moves_their_stamp(
    tenant_a, platform_admin, django_capture_on_commit_callbacks
):
    client = admin_client(platform_admin)
    url = f"/admin/accounts/user/{tenant_a.agent.pk}/change/"
    data = change_form_data(client.get(url))
    data.pop("is_active")
    before = stamps(tenant_a, "agent")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant_a.agent.refresh_from_db()
    assert not tenant_a.agent.is_active
    assert stamps(tenant_a, "agent") != before


def test_changing_or_deleting_a_membership_in_the_admin_moves_its_stamp(
    tenant_a, platform_admin, django_capture_on_commit_callbacks
):
    client = admin_client(platform_admin)
    membership = Membership.objects.get(user=tenant_a.agent)
    url = f"/admin/tenants/membership/{membership.pk}/change/"
    data = {**change_form_data(client.get(url)), "role": "end_user"}
    before = stamps(tenant_a, "agent")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    after_demotion = stamps(tenant_a, "agent")
    assert after_demotion != before
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/tenants/membership/{membership.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert stamps(tenant_a, "agent") != after_demotion
