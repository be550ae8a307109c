"""The tenant's ingestion progress ("37 of 400 done · 12 documents/min · about 30 minutes left"):
the selector's arithmetic on real rows at fixed timestamps, the documents page and its poll in
English and Traditional Chinese, and the REST endpoint; another tenant's progress is out of reach."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone, translation

from knowledge import selectors
from knowledge.models import Document
from knowledge.views import progress_state
from testsupport.api import assert_error
from testsupport.dashboard import dashboard_url, signed_in
from testsupport.documents import a_wave

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def minutes_ago(*minutes: float, now=NOW) -> list[datetime]:
    return [now - timedelta(minutes=value) for value in minutes]


def test_the_rate_is_over_the_last_five_minutes_and_the_time_left_follows_it(tenant_a, tenant_b):
    # 100 queued 20 minutes ago: 6 finished earlier, 24 (one failed) in the last five minutes.
    a_wave(
        tenant_a.tenant,
        queued_at=NOW - timedelta(minutes=20),
        finished_at=minutes_ago(18, 15, 12, 10, 8, 6) + minutes_ago(*[4.9 - i * 0.2 for i in range(23)]),
        failed_at=minutes_ago(1),
        pending=60,
        processing=10,
    )
    # Before the wave: finished two hours ago, not counted; nor is another tenant's older line.
    a_wave(tenant_a.tenant, name="old", queued_at=NOW - timedelta(hours=3), finished_at=minutes_ago(120))
    a_wave(tenant_b.tenant, queued_at=NOW - timedelta(hours=1), pending=5)

    progress = selectors.ingestion_progress(tenant=tenant_a.tenant, now=NOW)

    assert (progress.total, progress.done, progress.failed, progress.remaining) == (100, 30, 1, 70)
    assert progress.started_at == NOW - timedelta(minutes=20)
    assert progress.rate_per_minute == pytest.approx(24 / 5)
    assert progress.seconds_left == round(70 / (24 / 5) * 60) == 875
    assert progress_state(progress)["text"] == (
        "30 of 100 done · 1 failed · 4.8 documents/min · about 15 minutes left"
    )


def test_a_document_indexed_again_joins_the_wave_from_its_request_not_its_upload(tenant_a):
    wave = a_wave(
        tenant_a.tenant, queued_at=NOW - timedelta(minutes=3), finished_at=minutes_ago(2, 1), pending=1
    )
    # Uploaded a year ago; reindexed now: its upload does not pull the wave back a year.
    Document.objects.filter(pk=wave[-1].pk).update(created_at=NOW - timedelta(days=365))
    a_wave(tenant_a.tenant, name="old", queued_at=NOW - timedelta(days=300), finished_at=minutes_ago(60 * 24))

    progress = selectors.ingestion_progress(tenant=tenant_a.tenant, now=NOW)

    assert (progress.total, progress.done) == (3, 2)
    # Two finished are too few to tell a rate.
    assert progress.rate_per_minute is None and progress.seconds_left is None
    assert progress_state(progress)["text"] == "2 of 3 done · calculating the time left…"


def test_nothing_finished_yet_is_calculating_in_both_languages(tenant_a):
    a_wave(tenant_a.tenant, queued_at=NOW - timedelta(minutes=1), pending=4, processing=1)

    progress = selectors.ingestion_progress(tenant=tenant_a.tenant, now=NOW)

    assert (progress.total, progress.done, progress.rate_per_minute, progress.seconds_left) == (
        5,
        0,
        None,
        None,
    )
    state = progress_state(progress)
    assert state["active"] is True and state["text"] == "0 of 5 done · calculating the time left…"
    with translation.override("zh-hant"):
        assert progress_state(progress)["text"] == "已完成 0／5 份 · 正在估算剩餘時間…"


def test_with_too_few_in_the_last_minutes_the_rate_is_over_the_whole_wave(tenant_a):
    # A slow wave: three finished 6 to 8 minutes ago, none since; it began 10 minutes ago.
    a_wave(
        tenant_a.tenant, queued_at=NOW - timedelta(minutes=10), finished_at=minutes_ago(8, 7, 6), pending=297
    )

    progress = selectors.ingestion_progress(tenant=tenant_a.tenant, now=NOW)

    assert progress.rate_per_minute == pytest.approx(0.3)
    assert progress.seconds_left == round(297 / 0.3 * 60)  # 16.5 hours
    assert progress_state(progress)["text"] == "3 of 300 done · 0.3 documents/min · about 16 hours left"
    with translation.override("zh-hant"):
        assert progress_state(progress)["text"] == "已完成 3／300 份 · 每分鐘 0.3 份 · 約剩 16 小時"


def test_a_wave_just_finished_stays_all_done_for_ten_minutes_then_goes(tenant_a):
    a_wave(
        tenant_a.tenant,
        queued_at=NOW - timedelta(minutes=40),
        finished_at=minutes_ago(*range(35, 0, -1)),
        failed_at=minutes_ago(2),
    )

    progress = selectors.ingestion_progress(tenant=tenant_a.tenant, now=NOW)

    assert (progress.total, progress.done, progress.remaining, progress.seconds_left) == (36, 36, 0, 0)
    assert progress.active is False
    assert progress_state(progress)["text"] == "36 of 36 done · 1 failed"
    later = selectors.ingestion_progress(tenant=tenant_a.tenant, now=NOW + timedelta(minutes=11))
    assert (later.total, later.done, later.started_at) == (0, 0, None)


def test_the_time_left_reads_in_minutes_under_an_hour_and_a_half(tenant_a):
    a_wave(
        tenant_a.tenant, queued_at=NOW - timedelta(minutes=5), finished_at=minutes_ago(4, 3, 2, 1), pending=1
    )

    progress = selectors.ingestion_progress(tenant=tenant_a.tenant, now=NOW)

    assert progress.seconds_left == round(1 / (4 / 5) * 60) == 75
    assert progress_state(progress)["text"] == "4 of 5 done · 0.8 documents/min · about 1 minute left"
    with translation.override("zh-hant"):
        assert progress_state(progress)["text"] == "已完成 4／5 份 · 每分鐘 0.8 份 · 約剩 1 分鐘"


def a_wave_now(tenant):
    now = timezone.now()
    return a_wave(
        tenant,
        queued_at=now - timedelta(minutes=5),
        finished_at=minutes_ago(4, 3, 2, 1, now=now),
        pending=36,
    )


def test_the_documents_page_shows_the_line_and_bar_in_both_languages(tenant_a):
    a_wave_now(tenant_a.tenant)
    client = signed_in(tenant_a.agent)

    html = client.get(dashboard_url("documents", tenant_a)).content.decode()
    assert "4 of 40 done · 0.8 documents/min · about 45 minutes left" in html
    assert '<progress max="40" value="4" data-progress-bar' in html
    assert 'data-ingestion-progress data-status-url="' in html and 'data-polling="on">' in html

    html = client.get(dashboard_url("documents", tenant_a), HTTP_ACCEPT_LANGUAGE="zh-hant").content.decode()
    assert "索引進度" in html and "已完成 4／40 份 · 每分鐘 0.8 份 · 約剩 45 分鐘" in html


def test_with_no_wave_the_progress_is_hidden_and_not_polled(tenant_a):
    html = signed_in(tenant_a.agent).get(dashboard_url("documents", tenant_a)).content.decode()
    assert 'data-polling="off" hidden>' in html


def test_the_poll_returns_the_progress(tenant_a):
    a_wave_now(tenant_a.tenant)
    client = signed_in(tenant_a.tenant_admin)

    body = client.get(dashboard_url("documents-status", tenant_a), {"ids": ""}).json()

    assert body["documents"] == [] and body["in_progress"] is False
    progress = body["progress"]
    assert {key: progress[key] for key in ("total", "done", "failed", "remaining", "active")} == {
        "total": 40,
        "done": 4,
        "failed": 0,
        "remaining": 36,
        "active": True,
    }
    assert progress["rate_per_minute"] == pytest.approx(0.8, abs=0.01)
    assert progress["text"].startswith("4 of 40 done · 0.8 documents/min · about ")
    zh = client.get(dashboard_url("documents-status", tenant_a), HTTP_ACCEPT_LANGUAGE="zh-hant").json()
    assert zh["progress"]["text"].startswith("已完成 4／40 份")


def test_another_tenant_cannot_see_the_progress_and_end_users_are_refused(tenant_a, tenant_b):
    a_wave_now(tenant_a.tenant)
    assert (
        signed_in(tenant_b.tenant_admin).get(dashboard_url("documents-status", tenant_a)).status_code == 404
    )
    assert signed_in(tenant_a.end_user).get(dashboard_url("documents-status", tenant_a)).status_code == 403
    url = f"/v1/tenants/{tenant_a.tenant.pk}/documents/progress"
    assert_error(tenant_b.client("tenant_admin").get(url), 404)
    assert_error(tenant_a.client("end_user").get(url), 403)
    # B's own wave is empty: A's documents do not leak into it.
    own = tenant_b.client("tenant_admin").get(f"/v1/tenants/{tenant_b.tenant.pk}/documents/progress").json()
    assert own["total"] == 0


def test_the_api_reports_the_wave(tenant_a):
    a_wave_now(tenant_a.tenant)

    response = tenant_a.client("agent").get(f"/v1/tenants/{tenant_a.tenant.pk}/documents/progress")

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("total", "done", "failed", "remaining")} == {
        "total": 40,
        "done": 4,
        "failed": 0,
        "remaining": 36,
    }
    assert body["rate_per_minute"] == pytest.approx(0.8, abs=0.01)
    assert body["seconds_left"] == pytest.approx(36 / 0.8 * 60, rel=0.01)
    assert body["started_at"]


def test_a_reindex_puts_the_document_in_a_wave_of_its_own(tenant_a):
    old = timezone.now() - timedelta(days=30)
    documents = a_wave(
        tenant_a.tenant, queued_at=old, finished_at=[old + timedelta(minutes=m) for m in (1, 2)]
    )
    Document.objects.filter(pk__in=[document.pk for document in documents]).update(created_at=old)

    response = tenant_a.client("tenant_admin").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/documents/{documents[0].pk}/reindex"
    )

    assert response.status_code == 202
    reindexed = Document.objects.get(pk=documents[0].pk)
    assert reindexed.queued_at > timezone.now() - timedelta(minutes=1)
    progress = selectors.ingestion_progress(tenant=tenant_a.tenant)
    assert (progress.total, progress.done, progress.started_at) == (1, 0, reindexed.queued_at)
