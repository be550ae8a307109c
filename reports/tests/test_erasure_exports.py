"""Erasing a person's data on request reaches the export files already written: an export that
holds their messages loses its file (download 410, audited), one that does not is kept, one not
yet written is written without them, and one being written when the erasure lands discards its
file instead of becoming ready."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from reports import services
from reports.models import Export
from tenants.models import AuditEvent
from testsupport.dashboard import dashboard_url, signed_in
from testsupport.environment import committed

pytestmark = pytest.mark.django_db


def export_of(people, *, channel="", written=True) -> Export:
    today = timezone.localdate()
    export = services.export_request(
        tenant=people.tenant,
        requested_by=people.tenant_admin,
        since=today - dt.timedelta(days=6),
        until=today,
        format="csv",
        channel=channel,
    )
    if written:
        export = services.export_write(tenant_id=people.tenant.pk, export_id=export.pk)
        assert export.status == Export.Status.READY
    return export


def file_of(export: Export) -> Path:
    return Path(settings.MEDIA_ROOT) / services.export_file_path(export)


def erase(people, **body):
    with committed():
        return people.client("tenant_admin").post(
            f"/v1/tenants/{people.tenant.pk}/data-erasure", body, format="json"
        )


def download(people, export: Export):
    return people.client("tenant_admin").get(f"/v1/tenants/{people.tenant.pk}/exports/{export.pk}/download")


def test_erasing_an_end_user_deletes_the_exports_that_hold_their_messages(tenant_a, counted_a):
    email = tenant_a.end_user.email
    holding = export_of(tenant_a)
    line_only = export_of(tenant_a, channel="line")
    pending = export_of(tenant_a, written=False)
    assert email in file_of(holding).read_text(encoding="utf-8-sig")
    assert email not in file_of(line_only).read_text(encoding="utf-8-sig")

    response = erase(tenant_a, user_id=tenant_a.end_user.pk)

    assert response.status_code == 200, response.content
    assert response.json()["exports"] == 1
    holding.refresh_from_db()
    assert holding.status == Export.Status.EXPIRED and holding.error == services.ERASED_EXPORT_ERROR
    assert not file_of(holding).exists()
    assert download(tenant_a, holding).status_code == 410
    page = signed_in(tenant_a.tenant_admin)
    page.cookies["django_language"] = "zh-hant"
    assert (
        "其中含有一位應要求刪除資料者的對話" in page.get(dashboard_url("exports", tenant_a)).content.decode()
    )
    event = AuditEvent.objects.get(tenant=tenant_a.tenant, action="export.erase")
    assert event.target_id == str(holding.pk) and event.details["was"] == "ready"
    # The export without their messages is untouched; the one not yet written leaves them out.
    line_only.refresh_from_db()
    assert line_only.status == Export.Status.READY and file_of(line_only).exists()
    assert download(tenant_a, line_only).status_code == 200
    written = services.export_write(tenant_id=tenant_a.tenant.pk, export_id=pending.pk)
    content = file_of(written).read_text(encoding="utf-8-sig")
    assert (
        written.status == Export.Status.READY and email not in content and "退貨政策是什麼？" not in content
    )
    assert "退費要多久？" in content  # the other people's messages are still exported


def test_erasing_a_visitor_deletes_the_exports_of_their_channel_only(tenant_a, tenant_b, counted_a):
    widget = export_of(tenant_a, channel="widget")
    api = export_of(tenant_a, channel="api")
    others = export_of(tenant_b)

    response = erase(tenant_a, contact_id=counted_a.contacts["visitor"].pk)

    assert response.status_code == 200 and response.json()["exports"] == 1
    widget.refresh_from_db()
    assert widget.status == Export.Status.EXPIRED and not file_of(widget).exists()
    for kept in (api, others):
        kept.refresh_from_db()
        assert kept.status == Export.Status.READY and file_of(kept).exists()


def test_an_export_being_written_when_the_erasure_lands_is_discarded(tenant_a, counted_a, monkeypatch):
    """The worker has read the person's messages into its file when the erasure commits: the
    export must not become ready with them."""
    export = export_of(tenant_a, written=False)
    write_rows = services._write_rows
    outcome = {}

    def erasure_while_writing(being_written, path):
        count = write_rows(being_written, path)
        assert tenant_a.end_user.email in path.read_text(encoding="utf-8-sig")
        outcome["response"] = erase(tenant_a, user_id=tenant_a.end_user.pk)
        return count

    monkeypatch.setattr(services, "_write_rows", erasure_while_writing)
    finished = services.export_write(tenant_id=tenant_a.tenant.pk, export_id=export.pk)

    assert outcome["response"].json()["exports"] == 1
    assert finished.status == Export.Status.EXPIRED and finished.error == services.ERASED_EXPORT_ERROR
    assert not file_of(export).exists()
    assert AuditEvent.objects.get(tenant=tenant_a.tenant, action="export.erase").details["was"] == "running"
