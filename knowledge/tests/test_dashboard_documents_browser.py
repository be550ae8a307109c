"""The documents page's upload in a real browser (Debian's Chromium driven by Playwright) against
the live ASGI server: files and a ZIP archive dropped on the drop zone are sent by the page's
script, each file's outcome listed. Screenshot: test-artifacts/screenshots/documents-bulk-upload.png."""

import pytest

from knowledge.models import Document
from testsupport.browser import new_page, shot, sign_in
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
    shot(page, "documents-bulk-upload")
    assert set(Document.objects.filter(tenant=tenant_a.tenant).values_list("title", flat=True)) == {
        "filters",
        "pumps",
    }
    page.get_by_role("button", name="Show the documents").click()
    page.locator("tr", has_text="pumps").wait_for()
