"""The operators' admin of the LINE channel: every page loads, the channel's secrets never appear
(not even encrypted), only `enabled` can be changed and the change is audited; users, events and
deliveries are read-only."""

import pytest

from line_channel.models import LineChannel, LineDelivery, LineEvent, LineUser
from tenants.models import AuditEvent
from testsupport.line import SECRET_A, TOKEN_A
from testsupport.people import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, platform_admin):
    assert client.login(email=platform_admin.email, password=PASSWORD)
    return client


@pytest.fixture
def records(channel_a):
    from conversations import services as conversation_services

    contact = conversation_services.contact_create(tenant=channel_a.tenant, channel="line", name="陳小美")
    line_user = LineUser.objects.create(
        tenant=channel_a.tenant, channel=channel_a, line_user_id="U-alice", contact=contact
    )
    event = LineEvent.objects.create(
        tenant=channel_a.tenant, channel=channel_a, webhook_event_id="E1", event_type="message", payload={}
    )
    delivery = LineDelivery.objects.create(
        tenant=channel_a.tenant,
        channel=channel_a,
        line_user=line_user,
        kind="push",
        texts=["你好"],
        status="failed",
        error="LINE answered 503",
    )
    return line_user, event, delivery


def test_every_page_loads_and_no_secret_shows(operator, channel_a, records):
    line_user, event, delivery = records
    pages = [
        "/admin/line_channel/linechannel/",
        "/admin/line_channel/linechannel/?needs_attention__exact=0&enabled__exact=1",
        "/admin/line_channel/linechannel/?q=1650000001",
        f"/admin/line_channel/linechannel/{channel_a.pk}/change/",
        "/admin/line_channel/lineuser/",
        f"/admin/line_channel/lineuser/{line_user.pk}/change/",
        "/admin/line_channel/lineevent/",
        f"/admin/line_channel/lineevent/{event.pk}/change/",
        "/admin/line_channel/linedelivery/?status__exact=failed",
        f"/admin/line_channel/linedelivery/{delivery.pk}/change/",
    ]
    for page in pages:
        response = operator.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        for secret in (
            SECRET_A,
            TOKEN_A,
            channel_a.channel_secret_encrypted,
            channel_a.access_token_encrypted,
        ):
            assert secret not in html, page
    assert "A 官方帳號" in operator.get("/admin/line_channel/linechannel/").content.decode()
    assert operator.get("/admin/line_channel/linechannel/add/").status_code == 403


def test_an_operator_disables_a_channel_and_only_that_changes(operator, channel_a):
    response = operator.post(
        f"/admin/line_channel/linechannel/{channel_a.pk}/change/",
        # The read-only fields are ignored even when posted.
        {"name": "renamed", "channel_id": "999", "channel_secret_encrypted": "x"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = LineChannel.objects.get(pk=channel_a.pk)
    assert stored.enabled is False
    assert (stored.name, stored.channel_id) == (channel_a.name, channel_a.channel_id)
    assert stored.channel_secret_encrypted == channel_a.channel_secret_encrypted
    audit = AuditEvent.objects.filter(action="line_channel.update").get()
    assert audit.details["changed"] == ["enabled"]


def test_users_events_and_deliveries_are_read_only(operator, records):
    line_user, event, delivery = records
    before = LineDelivery.objects.get(pk=delivery.pk).status
    operator.post(f"/admin/line_channel/linedelivery/{delivery.pk}/change/", {"status": "sent"})
    assert LineDelivery.objects.get(pk=delivery.pk).status == before
    for model in ("lineuser", "lineevent", "linedelivery"):
        assert operator.get(f"/admin/line_channel/{model}/add/").status_code == 403
