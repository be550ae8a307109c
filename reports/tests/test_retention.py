"""Retention (the daily job deletes conversations past the tenant's retention, audited), the
abandoned rule, and erasing one customer's conversations on request."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework import serializers

from conversations.models import Contact, Conversation, Feedback, Message
from reports.selectors import conversation_retention_days
from reports.services import daily_maintenance
from tenants.models import AuditEvent
from tenants.tenant_settings import tenant_settings_validate
from testsupport.history import conversation, message, rate

pytestmark = pytest.mark.django_db


def keep_days(people, days: int) -> None:
    people.tenant.settings = {**people.tenant.settings, "retention": {"conversation_retention_days": days}}
    people.tenant.save(update_fields=["settings"])


def aged(people, days: int, text: str) -> Conversation:
    at = timezone.now() - dt.timedelta(days=days)
    made = conversation(people.tenant, at=at, channel="api", user=people.end_user, title=text)
    message(made, at=at, role="user", content=text)
    answer = message(made, at=at, role="assistant", content="好的。", grounding="knowledge")
    rate(answer, rating="up", user=people.end_user)
    return made


def test_the_daily_job_deletes_old_conversations_keeps_recent_ones_and_audits(tenant_a, tenant_b):
    keep_days(tenant_a, 30)
    old, recent = aged(tenant_a, 40, "舊的對話"), aged(tenant_a, 10, "新的對話")
    forever = aged(tenant_b, 400, "B 永久保存")

    summary = daily_maintenance()

    assert not Conversation.objects.filter(pk=old.pk).exists()
    assert not Message.objects.filter(conversation_id=old.pk).exists()
    assert Feedback.objects.filter(tenant=tenant_a.tenant).count() == 1
    assert Conversation.objects.filter(pk=recent.pk).exists()
    assert Conversation.objects.filter(pk=forever.pk).exists()  # B keeps conversations forever
    event = AuditEvent.objects.get(tenant=tenant_a.tenant, action="conversation.retention")
    assert event.details["conversations"] == 1 and event.details["messages"] == 2
    assert event.details["feedback"] == 1 and event.details["retention_days"] == 30
    assert event.actor_email == "system"
    assert summary["deleted_conversations"] == 1
    assert not AuditEvent.objects.filter(tenant=tenant_b.tenant, action="conversation.retention").exists()


def test_the_platform_maximum_caps_every_tenant(tenant_a, settings):
    settings.CONVERSATION_RETENTION_MAX_DAYS = 20
    assert conversation_retention_days(tenant=tenant_a.tenant) == 20  # "forever" becomes the maximum
    keep_days(tenant_a, 90)
    assert conversation_retention_days(tenant=tenant_a.tenant) == 20
    keep_days(tenant_a, 7)
    assert conversation_retention_days(tenant=tenant_a.tenant) == 7
    with pytest.raises(serializers.ValidationError) as refused:
        tenant_settings_validate({"retention": {"conversation_retention_days": 0}})
    assert "settings.retention.conversation_retention_days" in refused.value.detail


def test_the_retention_setting_is_validated_through_the_tenant_api(tenant_a):
    client = tenant_a.client("tenant_admin")
    url = f"/v1/tenants/{tenant_a.tenant.pk}"
    ok = client.patch(url, {"settings": {"retention": {"conversation_retention_days": 30}}}, format="json")
    assert ok.status_code == 200, ok.content
    bad = client.patch(url, {"settings": {"retention": {"conversation_retention_days": -1}}}, format="json")
    assert bad.status_code == 400


def test_an_idle_conversation_is_marked_abandoned_and_a_later_close_wins(tenant_a):
    from conversations.services import conversation_close

    idle = conversation(
        tenant_a.tenant, at=timezone.now() - dt.timedelta(hours=30), channel="widget", user=tenant_a.end_user
    )
    active = conversation(
        tenant_a.tenant, at=timezone.now() - dt.timedelta(hours=2), channel="api", user=tenant_a.end_user
    )

    daily_maintenance()

    idle.refresh_from_db()
    active.refresh_from_db()
    assert idle.resolution == "abandoned" and idle.resolved_at == idle.updated_at
    assert idle.status == "active"  # the customer may still come back
    assert active.resolution == ""
    conversation_close(conversation=idle)
    idle.refresh_from_db()
    assert idle.resolution == "bot"


# --- Erasure on request ------------------------------------------------------------------------


def erase(people, **body):
    return people.client("tenant_admin").post(
        f"/v1/tenants/{people.tenant.pk}/data-erasure", body, format="json"
    )


def test_erasing_an_end_user_removes_their_conversations_in_every_channel(tenant_a, counted_a):
    response = erase(tenant_a, user_id=tenant_a.end_user.pk)

    assert response.status_code == 200, response.content
    assert response.json() == {"conversations": 2, "messages": 5, "feedback": 2, "exports": 0}
    assert not Conversation.objects.filter(tenant=tenant_a.tenant, user=tenant_a.end_user).exists()
    assert not Feedback.objects.filter(user=tenant_a.end_user).exists()
    # The contacts' conversations stay.
    assert Conversation.objects.filter(tenant=tenant_a.tenant).count() == 2
    event = AuditEvent.objects.get(tenant=tenant_a.tenant, action="user.data_erase")
    assert event.details["conversations"] == 2 and event.actor_email == tenant_a.tenant_admin.email


def test_erasing_a_visitor_removes_the_contact_and_their_conversations(tenant_a, counted_a):
    visitor = counted_a.contacts["visitor"]
    response = erase(tenant_a, contact_id=visitor.pk)

    assert response.status_code == 200
    assert response.json() == {"conversations": 1, "messages": 5, "feedback": 0, "exports": 0}
    assert not Contact.objects.filter(pk=visitor.pk).exists()
    assert not Conversation.objects.filter(pk=counted_a.conversations["after_handoff"].pk).exists()
    assert AuditEvent.objects.filter(tenant=tenant_a.tenant, action="contact.delete").exists()


def test_erasure_never_reaches_another_tenant(tenant_a, tenant_b, counted_a):
    assert erase(tenant_b, contact_id=counted_a.contacts["visitor"].pk).status_code == 404
    assert erase(tenant_b, user_id=tenant_a.end_user.pk).status_code == 404
    assert Conversation.objects.filter(tenant=tenant_a.tenant).count() == 4


def test_erasure_is_for_tenant_admins_and_names_one_person(tenant_a, counted_a):
    url = f"/v1/tenants/{tenant_a.tenant.pk}/data-erasure"
    assert (
        tenant_a.client("agent").post(url, {"user_id": tenant_a.end_user.pk}, format="json").status_code
        == 403
    )
    both = erase(tenant_a, user_id=tenant_a.end_user.pk, contact_id=counted_a.contacts["visitor"].pk)
    assert both.status_code == 400 and both.json()["error"]["code"] == "validation_error"
    assert erase(tenant_a).status_code == 400
