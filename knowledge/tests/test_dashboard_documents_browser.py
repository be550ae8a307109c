"""The documents page's upload in a real browser (Debian's Chromium driven by Playwright) against
the live ASGI server: files and a ZIP archive dropped on the drop zone are sent by the page's
script, each file's outcome listed; the progress of a bulk upload's indexing, refreshed by the
page's poll. Screenshots: test-artifacts/screenshots/documents-bulk-upload.png,
documents-ingestion-progress.png and documents-ingestion-progress-zh-hant.png."""

from datetime import timedelta

import pytest
from django.utils import timezone

from knowledge.models import Document
from testsupport.browser import new_page, shot, sign_in
from testsupport.documents import a_wave
from testsupport.files import elf_bytes, zip_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DROP = """([archive, program]) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(["Clean the filters every week."], "filters.txt", {type: "text/plain"}));
    transfer.items.add(new File([new Uint8Array(archive)], "manuals.zip", {type: "application/zip"}));
    transfer.items.add(new File([new Uint8Array(program)], "tool.pdf", {type: "application/pdf"}));
    return transfer;
}"""


def test_dropped_files_and_an_archive_are_uploaded_each_with_its_outcome(browser, live_asgi, tenant_a):
    archive = zip_bytes({"manuals/pumps.txt": b"Check the pumps every month.", "../escape.txt": b"Out."})
    page = new_page(browser, live_asgi)
    sign_in(page, tenant_a.tenant_admin.email)
    page.goto(f"/dashboard/t/{tenant_a.tenant.pk}/documents/")
    transfer = page.evaluate_handle(DROP, [list(archive), list(elf_bytes())])
    page.dispatch_event("[data-dropzone]", "drop", {"dataTransfer": transfer})
    page.locator("[data-file-list] li").nth(2).wait_for()
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_text("2 uploaded, 0 already there, 2 refused.").wait_for()
    outcomes = page.locator("[data-upload-results] li").all_inner_texts()
    assert outcomes == [
        "filters.txt: uploaded; it is being indexed.",
        "manuals.zip/manuals/pumps.txt: uploaded; it is being indexed.",
        "manuals.zip/../escape.txt: This name points outside the archive's folder; it was not extracted.",
        "tool.pdf: This type of file is not supported. Upload a PDF, DOCX, TXT, Markdown or HTML file, "
        "or a PNG or JPEG picture of a page.",
    ]
    # The indexing's progress shows above the list at once, refreshed by the page's poll.
    page.locator("[data-progress-text]", has_text=" of 2 done").wait_for()
    shot(page, "documents-bulk-upload")
    assert set(Document.objects.filter(tenant=tenant_a.tenant).values_list("title", flat=True)) == {
        "filters",
        "pumps",
    }
    page.get_by_role("button", name="Show the documents").click()
    page.locator("tr", has_text="pumps").wait_for()


def test_the_progress_of_a_bulk_upload_refreshes_itself(browser, live_asgi, tenant_a):
    now = timezone.now()
    wave = a_wave(
        tenant_a.tenant,
        queued_at=now - timedelta(minutes=5),
        finished_at=[now - timedelta(minutes=minutes) for minutes in (4, 3, 2, 1)],
        pending=396,
    )
    page = new_page(browser, live_asgi)
    sign_in(page, tenant_a.agent.email)
    page.goto(f"/dashboard/t/{tenant_a.tenant.pk}/documents/")
    line = page.locator("[data-progress-text]")
    assert line.inner_text().startswith("4 of 400 done · 0.8 documents/min · about 8 hours left")
    # 33 more finish (one fails): the poll brings the line and the bar up to date.
    finishing = Document.objects.filter(pk__in=[document.pk for document in wave[4:37]])
    finishing.update(status="ready", stage="done", progress=1.0, ingested_at=timezone.now())
    Document.objects.filter(pk=wave[37].pk).update(status="failed", error="Unreadable.")
    page.get_by_text("38 of 400 done · 1 failed").wait_for()
    assert page.locator("[data-progress-bar]").evaluate("bar => [bar.value, bar.max]") == [38, 400]
    assert "documents/min · about" in line.inner_text()
    shot(page, "documents-ingestion-progress")

    # The person's choice of language, as the dashboard's language menu stores it.
    page.context.add_cookies([{"name": "django_language", "value": "zh-hant", "url": live_asgi.http_url}])
    page.reload()
    assert line.inner_text().startswith("已完成 38／400 份 · 1 份失敗 · 每分鐘")
    shot(page, "documents-ingestion-progress-zh-hant")
