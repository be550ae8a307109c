"""Exports: POST …/exports → 202, written by the Celery task, then downloaded (audited) as CSV
(UTF-8 with BOM, read back as Excel would) or JSON Lines; only the tenant's rows; dead after expiry."""

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from reports.models import Export
from reports.services import daily_maintenance
from tenants.models import AuditEvent
from testsupport.environment import committed

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_tasks():
    """Queued tasks run in this process, as the worker would run them."""
    from platform_project.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


def exports_url(people) -> str:
    return f"/v1/tenants/{people.tenant.pk}/exports"


def request_export(people, **body):
    today = timezone.localdate()
    payload = {"since": str(today - dt.timedelta(days=6)), "until": str(today), **body}
    with committed():
        response = people.client("tenant_admin").post(exports_url(people), payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def download(people, export_id):
    response = people.client("tenant_admin").get(f"{exports_url(people)}/{export_id}/download")
    content = b"".join(response.streaming_content) if response.status_code == 200 else response.content
    return response, content


def test_a_csv_export_opens_in_excel_with_chinese_intact(tenant_a, counted_a, eager_tasks):
    created = request_export(tenant_a, format="csv")
    assert created["status"] == "pending" and created["download_url"] is None

    export = tenant_a.client("tenant_admin").get(f"{exports_url(tenant_a)}/{created['id']}").json()
    assert export["status"] == "ready", export
    assert export["row_count"] == 12
    response, content = download(tenant_a, created["id"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert len(rows) == 12
    assert list(rows[0]) == [
        "conversation_id",
        "channel",
        "customer",
        "time",
        "role",
        "text",
        "grounding",
        "cited_titles",
        "feedback",
    ]
    first_answer = next(row for row in rows if row["text"].startswith("七天內可退貨"))
    assert first_answer["cited_titles"] == "退貨政策"
    assert first_answer["feedback"] == "up"
    assert first_answer["grounding"] == "knowledge"
    assert first_answer["customer"] == tenant_a.end_user.email
    assert any(
        row["customer"] == f"王小明 (widget contact {counted_a.contacts['visitor'].pk})" for row in rows
    )
    assert {row["channel"] for row in rows} == {"api", "widget", "line"}
    assert AuditEvent.objects.filter(tenant=tenant_a.tenant, action="export.download").count() == 1
    assert AuditEvent.objects.filter(tenant=tenant_a.tenant, action="export.request").count() == 1


def test_a_csv_cell_that_excel_would_run_as_a_formula_is_defused(tenant_a, counted_a, eager_tasks):
    from testsupport.history import message

    message(counted_a.conversations["open"], at=timezone.now(), role="user", content='=HYPERLINK("http://x")')
    created = request_export(tenant_a, format="csv")
    _response, content = download(tenant_a, created["id"])
    texts = [row["text"] for row in csv.DictReader(io.StringIO(content.decode("utf-8-sig")))]
    assert '\'=HYPERLINK("http://x")' in texts


def test_a_jsonl_export_is_one_valid_object_per_message_of_the_tenant_only(
    tenant_a, tenant_b, counted_a, eager_tasks
):
    created = request_export(tenant_a, format="jsonl", channel="widget")
    response, content = download(tenant_a, created["id"])
    assert response.status_code == 200
    lines = content.decode("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 5
    assert {record["conversation_id"] for record in records} == {
        str(counted_a.conversations["after_handoff"].pk)
    }
    assert records[0]["text"] == "營業時間？"
    assert records[1]["grounding"] == "faq"
    # Tenant B's export holds B's conversation only.
    other = request_export(tenant_b, format="jsonl")
    _response, content = download(tenant_b, other["id"])
    assert [json.loads(line)["text"] for line in content.decode().splitlines()] == [
        "火星車票怎麼買",
        "找不到。",
    ]


def test_another_tenant_cannot_read_or_download_an_export(tenant_a, tenant_b, counted_a, eager_tasks):
    created = request_export(tenant_a, format="csv")
    b_admin = tenant_b.client("tenant_admin")
    for path in (f"{created['id']}", f"{created['id']}/download"):
        assert b_admin.get(f"{exports_url(tenant_b)}/{path}").status_code == 404
        assert b_admin.get(f"{exports_url(tenant_a)}/{path}").status_code == 404


@pytest.mark.parametrize("role", ["agent", "end_user"])
def test_exports_are_for_tenant_admins_only(role, tenant_a, counted_a, eager_tasks):
    created = request_export(tenant_a, format="csv")
    client = tenant_a.client(role)
    assert client.post(exports_url(tenant_a), {"format": "csv"}, format="json").status_code == 403
    assert client.get(f"{exports_url(tenant_a)}/{created['id']}/download").status_code == 403


def test_bad_export_requests_get_400(tenant_a):
    client = tenant_a.client("tenant_admin")
    for body in ({"format": "xlsx"}, {}, {"format": "csv", "since": "2025-01-02", "until": "2025-01-01"}):
        response = client.post(exports_url(tenant_a), body, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"


def test_the_download_link_dies_and_the_file_goes_after_expiry(tenant_a, counted_a, eager_tasks):
    created = request_export(tenant_a, format="csv")
    export = Export.objects.get(pk=created["id"])
    path = Path(settings.MEDIA_ROOT) / export.file_path
    assert path.is_file() and f"tenants/{tenant_a.tenant.pk}/exports/" in str(path)

    Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response, _content = download(tenant_a, created["id"])
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "export_expired"
    assert path.is_file()  # until the daily job runs

    daily_maintenance()
    export.refresh_from_db()
    assert export.status == "expired" and not path.exists()
    assert download(tenant_a, created["id"])[0].status_code == 410


def test_an_export_not_yet_written_cannot_be_downloaded(tenant_a, counted_a):
    created = request_export(tenant_a, format="csv")  # no worker here: it stays pending
    response, _content = download(tenant_a, created["id"])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "export_not_ready"


def test_a_real_worker_writes_the_export(tenant_a, counted_a, celery_worker_process):
    import time

    celery_worker_process()
    today = timezone.localdate()
    response = tenant_a.client("tenant_admin").post(
        exports_url(tenant_a),
        {"since": str(today - dt.timedelta(days=6)), "until": str(today), "format": "jsonl"},
        format="json",
    )
    assert response.status_code == 202
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and Export.objects.get(pk=response.json()["id"]).status != "ready":
        time.sleep(0.3)
    export = Export.objects.get(pk=response.json()["id"])
    assert export.status == "ready", export.__dict__
    _response, content = download(tenant_a, export.pk)
    assert len(content.decode().splitlines()) == 12


def test_the_beat_schedule_runs_the_daily_job(settings, tenant_a):
    from platform_project.celery import app

    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    entry = settings.CELERY_BEAT_SCHEDULE["reports-daily"]
    assert entry["task"] in app.tasks
    assert app.tasks[entry["task"]].apply().get()["tenants"] >= 1


def test_the_list_shows_the_tenant_exports_only_newest_first(tenant_a, tenant_b, counted_a, eager_tasks):
    first = request_export(tenant_a, format="csv")
    second = request_export(tenant_a, format="jsonl")
    request_export(tenant_b, format="csv")
    listed = tenant_a.client("tenant_admin").get(exports_url(tenant_a)).json()
    assert listed["count"] == 2
    assert [row["id"] for row in listed["results"]] == [second["id"], first["id"]]
    assert listed["results"][0]["download_url"].endswith(f"/exports/{second['id']}/download")
