"""Bulk upload through the API: many files in one request and ZIP archives, each file with its
own outcome (created, duplicate, refused and why), the limits against ZIP bombs, and the plan's
hourly budget of files and bytes; and where a pending document stands in its tenant's line."""

import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import Document
from testsupport.api import assert_error
from testsupport.documents import stored_files
from testsupport.files import docx_bytes, elf_bytes, zeros_zip_member_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def page(number: int) -> bytes:
    return f"Page {number} of the manual: clean filter number {number} every {number + 2} days.".encode()


def bulk(people, files: list[tuple[str, bytes]], *, field: str = "files", role: str = "tenant_admin"):
    return people.client(role).post(
        f"/v1/tenants/{people.tenant.pk}/documents/bulk",
        {field: [SimpleUploadedFile(name, content) for name, content in files]},
        format="multipart",
    )


def outcomes(response) -> list[tuple[str, str, str | None]]:
    return [
        (result["filename"], result["outcome"], result["error"] and result["error"]["code"])
        for result in response.json()["results"]
    ]


def test_many_files_in_one_request_each_with_its_outcome(tenant_a, milvus_uri):
    response = bulk(
        tenant_a,
        [
            ("one.txt", page(1)),
            ("two.md", b"# Two\n\n" + page(2)),
            ("again.txt", page(1)),  # the same bytes as one.txt
            ("program.pdf", elf_bytes()),
            ("empty.txt", b""),
        ],
    )
    assert response.status_code == 202, response.content
    assert outcomes(response) == [
        ("one.txt", "created", None),
        ("two.md", "created", None),
        ("again.txt", "duplicate", "duplicate"),
        ("program.pdf", "refused", "unsupported_file_type"),
        ("empty.txt", "refused", "empty_file"),
    ]
    body = response.json()
    assert body["counts"] == {"created": 2, "duplicate": 1, "refused": 2}
    assert [document["title"] for document in body["accepted"]] == ["one", "two"]
    assert all(document["status"] == "pending" for document in body["accepted"])
    assert [refused["filename"] for refused in body["refused"]] == ["again.txt", "program.pdf", "empty.txt"]
    duplicate = body["results"][2]["error"]
    assert duplicate["details"]["document_id"] == body["accepted"][0]["id"]
    assert Document.objects.for_tenant(tenant_a.tenant).count() == 2
    assert len(stored_files(tenant_a.tenant)) == 2


def test_the_single_file_field_name_is_accepted_too(tenant_a, milvus_uri):
    response = bulk(tenant_a, [("a.txt", page(1)), ("b.txt", page(2))], field="file")
    assert response.status_code == 202
    assert [outcome for _, outcome, _ in outcomes(response)] == ["created", "created"]


def test_nothing_created_answers_200_with_the_outcomes(tenant_a, milvus_uri):
    response = bulk(tenant_a, [("program.txt", elf_bytes())])
    assert response.status_code == 200
    assert outcomes(response) == [("program.txt", "refused", "unsupported_file_type")]


def test_a_zip_archive_is_opened_entry_by_entry(tenant_a, milvus_uri):
    archive = zip_bytes(
        {
            "manuals/": b"",
            "manuals/filters.txt": page(1),
            "manuals/pumps/pumps.md": b"# Pumps\n\n" + page(2),
            "policy.docx": docx_bytes(lambda document: document.add_paragraph("Returns within seven days.")),
            "__MACOSX/manuals/._filters.txt": b"\x00\x05\x16\x07",
            "manuals/.DS_Store": b"\x00\x00\x00\x01Bud1",
            "copy.txt": page(1),
        }
    )
    response = bulk(tenant_a, [("knowledge.zip", archive)])
    assert response.status_code == 202, response.content
    assert outcomes(response) == [
        ("knowledge.zip/manuals/filters.txt", "created", None),
        ("knowledge.zip/manuals/pumps/pumps.md", "created", None),
        ("knowledge.zip/policy.docx", "created", None),
        ("knowledge.zip/copy.txt", "duplicate", "duplicate"),
    ]
    titles = set(Document.objects.for_tenant(tenant_a.tenant).values_list("title", flat=True))
    assert titles == {"filters", "pumps", "policy"}
    kinds = set(Document.objects.for_tenant(tenant_a.tenant).values_list("kind", flat=True))
    assert kinds == {"txt", "markdown", "docx"}


def test_office_files_are_documents_not_archives(tenant_a, milvus_uri):
    content = docx_bytes(lambda document: document.add_paragraph("Warranty: two years."))
    spreadsheet = zip_bytes(
        {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>", "xl/sheet1.xml": b"<sheet/>"}
    )
    response = bulk(tenant_a, [("warranty.docx", content), ("prices.xlsx", spreadsheet)])
    assert outcomes(response) == [
        ("warranty.docx", "created", None),
        ("prices.xlsx", "refused", "unsupported_file_type"),  # not opened: its XML is no document
    ]


def test_unsafe_names_nested_archives_and_encrypted_entries_are_refused_alone(tenant_a, milvus_uri):
    inner = zip_bytes({"inner.txt": page(9)})
    archive = zip_bytes(
        {
            "../../etc/escape.txt": page(1),
            "/absolute.txt": page(2),
            "C:/windows.txt": page(3),
            "folder\\..\\..\\backslash.txt": page(4),
            "nested.zip": inner,
            "renamed.txt": inner,  # an archive by its bytes, whatever its name
            "fine.txt": page(5),
        }
    )
    data = bytearray(archive)
    response = bulk(tenant_a, [("mixed.zip", bytes(data))])
    assert response.status_code == 202, response.content
    assert outcomes(response) == [
        ("mixed.zip/../../etc/escape.txt", "refused", "unsafe_path"),
        ("mixed.zip//absolute.txt", "refused", "unsafe_path"),
        ("mixed.zip/C:/windows.txt", "refused", "unsafe_path"),
        ("mixed.zip/folder\\..\\..\\backslash.txt", "refused", "unsafe_path"),
        ("mixed.zip/nested.zip", "refused", "nested_archive"),
        ("mixed.zip/renamed.txt", "refused", "nested_archive"),
        ("mixed.zip/fine.txt", "created", None),
    ]
    assert list(Document.objects.for_tenant(tenant_a.tenant).values_list("title", flat=True)) == ["fine"]


def test_an_encrypted_entry_is_refused(tenant_a, milvus_uri):
    archive = bytearray(zip_bytes({"secret.txt": page(1)}, compression=zipfile.ZIP_STORED))
    # Set the "encrypted" flag in the local header and in the central directory.
    archive[6] |= 0x1
    central = archive.rfind(b"PK\x01\x02")
    archive[central + 8] |= 0x1
    response = bulk(tenant_a, [("locked.zip", bytes(archive))])
    assert outcomes(response) == [("locked.zip/secret.txt", "refused", "encrypted_entry")]


def test_a_zip_bomb_entry_is_refused_by_its_compression_ratio(tenant_a, milvus_uri):
    archive = zeros_zip_member_bytes("zeros.txt", 8 * 1024 * 1024, extra_members={"fine.txt": page(1)})
    response = bulk(tenant_a, [("bomb.zip", archive)])
    assert response.status_code == 202
    assert outcomes(response) == [
        ("bomb.zip/fine.txt", "created", None),
        ("bomb.zip/zeros.txt", "refused", "compression_ratio"),
    ]


def test_an_archive_expanding_past_the_limit_is_refused_whole(tenant_a, milvus_uri, settings):
    settings.ZIP_MAX_UNCOMPRESSED_BYTES = 1024 * 1024
    archive = zip_bytes({f"page-{number}.txt": page(number) * 2000 for number in range(10)})
    error = assert_error(bulk(tenant_a, [("big.zip", archive)]), 413, "archive_too_large")
    assert error["details"]["limit_bytes"] == 1024 * 1024
    assert not Document.objects.for_tenant(tenant_a.tenant).exists()
    # Beside other files, the archive is one refused outcome among them.
    response = bulk(tenant_a, [("big.zip", archive), ("fine.txt", page(1))])
    assert outcomes(response) == [("big.zip", "refused", "archive_too_large"), ("fine.txt", "created", None)]


def test_an_archive_with_too_many_entries_is_refused_whole(tenant_a, milvus_uri, settings):
    settings.ZIP_MAX_ENTRIES = 5
    archive = zip_bytes({f"page-{number}.txt": page(number) for number in range(6)})
    error = assert_error(bulk(tenant_a, [("many.zip", archive)]), 413, "archive_too_many_entries")
    assert error["details"] == {"filename": "many.zip", "limit": 5, "entries": 6}
    assert not Document.objects.for_tenant(tenant_a.tenant).exists()


def test_a_broken_archive_is_a_400(tenant_a, milvus_uri):
    broken = zip_bytes({"a.txt": page(1)})[:-30]  # the central directory cut off
    assert_error(bulk(tenant_a, [("broken.zip", broken)]), 400, "archive_invalid")


def test_too_many_files_in_one_request_is_a_413_with_nothing_stored(tenant_a, milvus_uri, settings):
    settings.BULK_UPLOAD_MAX_FILES = 3
    archive = zip_bytes({f"page-{number}.txt": page(number) for number in range(3)})
    error = assert_error(
        bulk(tenant_a, [("three.zip", archive), ("four.txt", page(4))]), 413, "too_many_files"
    )
    assert error["details"] == {"limit": 3, "files": 4}
    assert not Document.objects.for_tenant(tenant_a.tenant).exists()


def test_more_parts_than_django_parses_is_a_413_in_the_error_format(tenant_a, milvus_uri, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    response = bulk(tenant_a, [(f"page-{number}.txt", page(number)) for number in range(3)])
    assert_error(response, 413, "too_many_files")
    assert not Document.objects.for_tenant(tenant_a.tenant).exists()


def test_no_file_is_a_400_and_json_a_415(tenant_a, milvus_uri):
    client = tenant_a.client("tenant_admin")
    url = f"/v1/tenants/{tenant_a.tenant.pk}/documents/bulk"
    assert_error(client.post(url, {"title": "nothing"}, format="multipart"), 400, "validation_error")
    assert_error(client.post(url, {"files": []}, format="json"), 415)


def test_the_document_quota_is_reached_mid_archive(tenant_a, milvus_uri):
    plan = tenant_a.tenant.plan
    plan.max_documents = 3
    plan.save()
    archive = zip_bytes({f"page-{number}.txt": page(number) for number in range(5)})
    response = bulk(tenant_a, [("five.zip", archive)])
    assert response.status_code == 202
    assert [(outcome, code) for _, outcome, code in outcomes(response)] == [
        ("created", None),
        ("created", None),
        ("created", None),
        ("refused", "quota_exceeded"),
        ("refused", "quota_exceeded"),
    ]
    assert Document.objects.for_tenant(tenant_a.tenant).count() == 3


def test_an_entry_over_the_plan_file_size_is_refused_before_extraction(tenant_a, milvus_uri):
    plan = tenant_a.tenant.plan
    plan.max_upload_bytes = 1000
    plan.save()
    archive = zip_bytes({"small.txt": page(1), "large.txt": page(2) * 100})
    response = bulk(tenant_a, [("sizes.zip", archive)])
    assert outcomes(response) == [
        ("sizes.zip/small.txt", "created", None),
        ("sizes.zip/large.txt", "refused", "payload_too_large"),
    ]


# --- The hourly budget of files and bytes ----------------------------------------------------


def test_the_budget_counts_files_an_archive_holds(tenant_a, tenant_b, milvus_uri):
    plan = tenant_a.tenant.plan
    plan.upload_files_per_hour = 5
    plan.save()
    archive = zip_bytes({f"page-{number}.txt": page(number) for number in range(4)})
    assert bulk(tenant_a, [("four.zip", archive)]).status_code == 202
    # One more file fits; two do not, and nothing of them is stored.
    refused = bulk(tenant_a, [("five.txt", page(5)), ("six.txt", page(6))])
    error = assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) > 3500
    assert error["details"]["files"] == 2
    assert Document.objects.for_tenant(tenant_a.tenant).count() == 4
    assert bulk(tenant_a, [("five.txt", page(5))]).status_code == 202
    # The single-file endpoint spends the same budget.
    single = tenant_a.client("tenant_admin").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/documents/upload",
        {"file": SimpleUploadedFile("seven.txt", page(7))},
        format="multipart",
    )
    assert_error(single, 429, "rate_limited")
    # More files than the plan allows in a whole hour is never going to pass: 413.
    many = [(f"more-{number}.txt", page(100 + number)) for number in range(6)]
    error = assert_error(bulk(tenant_a, many), 413, "upload_budget_exceeded")
    assert error["details"] == {"quota": "files_per_hour", "limit": 5, "requested": 6}
    # Another tenant's budget is its own.
    assert bulk(tenant_b, [("b.txt", page(1))]).status_code == 202


def test_the_budget_counts_bytes_uncompressed(tenant_a, milvus_uri):
    plan = tenant_a.tenant.plan
    plan.upload_bytes_per_hour = 3000
    plan.save()
    archive = zip_bytes(
        {"long.txt": b"Filters are cleaned every week. " * 60}
    )  # 1,920 bytes, much less zipped
    assert bulk(tenant_a, [("long.zip", archive)]).status_code == 202
    assert_error(bulk(tenant_a, [("more.txt", b"Pumps are checked monthly. " * 60)]), 429, "rate_limited")
    assert bulk(tenant_a, [("short.txt", b"Pumps are checked monthly.")]).status_code == 202


def test_onboarding_400_files_of_200_mb_fits_every_plan_above_free(db):
    from tenants.models import Plan

    for plan in Plan.objects.exclude(code="free"):
        for limit, needed in (
            (plan.upload_files_per_hour, 400),
            (plan.upload_bytes_per_hour, 200 * 1024 * 1024),
            (plan.max_documents, 400),
            (plan.max_storage_bytes, 200 * 1024 * 1024),
        ):
            assert limit == 0 or limit >= needed, plan.code


# --- Where a pending document stands ---------------------------------------------------------


def test_pending_documents_show_their_place_in_the_line(tenant_a, milvus_uri):
    response = bulk(tenant_a, [(f"page-{number}.txt", page(number)) for number in range(4)])
    accepted = response.json()["accepted"]
    ids = [document["id"] for document in accepted]
    # The dispatch handed the tenant's first two to the task queue; the others wait their turn.
    assert [document["stage"] for document in accepted] == ["queued", "queued", "waiting", "waiting"]
    assert [document["queue_position"] for document in accepted] == [1, 2, 3, 4]
    Document.objects.filter(pk=ids[0]).update(status="processing", stage="extracting")
    client = tenant_a.client("agent")

    def positions():
        listed = client.get(f"/v1/tenants/{tenant_a.tenant.pk}/documents").json()["results"]
        return {document["id"]: document["queue_position"] for document in listed}

    assert positions() == {ids[0]: None, ids[1]: 1, ids[2]: 2, ids[3]: 3}
    # A document handed to the queue stands before those still waiting, however old they are.
    Document.objects.filter(pk=ids[3]).update(stage="queued")
    assert positions() == {ids[0]: None, ids[1]: 1, ids[2]: 3, ids[3]: 2}
    detail = client.get(f"/v1/tenants/{tenant_a.tenant.pk}/documents/{ids[2]}").json()
    assert detail["queue_position"] == 3
