"""Dashboard pages of the knowledge base: upload of several files with per-file results, the
status poll, delete and reindex, the search tester and the retrieval settings."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from knowledge.models import Document
from testsupport.api import assert_error
from testsupport.dashboard import RETRIEVAL_FORM, dashboard_url, signed_in
from testsupport.documents import RETURNS_POLICY, WARRANTY, uploaded
from testsupport.environment import committed
from testsupport.files import elf_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_several_files_upload_and_each_gets_its_result(tenant_a, eager_ingestion, settings):
    tenant_a.tenant.plan.max_upload_bytes = 2000
    tenant_a.tenant.plan.save()
    client = signed_in(tenant_a.tenant_admin)
    files = [
        SimpleUploadedFile("warranty.md", WARRANTY.encode()),
        SimpleUploadedFile("returns.txt", RETURNS_POLICY.encode()),
        SimpleUploadedFile("again.md", WARRANTY.encode()),
        SimpleUploadedFile("tool.pdf", elf_bytes()),
        SimpleUploadedFile("big.txt", b"x" * 3000),
    ]
    with committed():
        posted = client.post(dashboard_url("documents", tenant_a), {"files": files})
    assert posted.status_code == 302
    response = client.get(posted["Location"])  # after ingestion ran on commit
    texts = messages_of(response)
    assert texts[0].startswith("warranty.md: uploaded") and texts[1].startswith("returns.txt: uploaded")
    assert texts[2] == "again.md: This file is already uploaded as “warranty”."
    assert texts[3].startswith("tool.pdf: This type of file is not supported.")
    assert texts[4].startswith("big.txt: The file is too large")
    documents = list(Document.objects.for_tenant(tenant_a.tenant))
    assert sorted(document.status for document in documents) == ["ready", "ready"]
    html = response.content.decode()
    assert "warranty" in html and 'data-polling="off"' in html


def test_the_document_quota_is_a_readable_message(tenant_a, tenant_b):
    plan = tenant_b.tenant.plan
    plan.max_documents = 0
    plan.max_storage_bytes = 10
    plan.save()
    response = signed_in(tenant_b.tenant_admin).post(
        dashboard_url("documents", tenant_b),
        {"files": [SimpleUploadedFile("a.txt", b"Some text here.")]},
        follow=True,
    )
    assert "exceed your plan's storage" in messages_of(response)[0]


def test_agents_cannot_upload(tenant_a):
    response = signed_in(tenant_a.agent).post(
        dashboard_url("documents", tenant_a), {"files": [SimpleUploadedFile("a.txt", b"Some text.")]}
    )
    assert response.status_code == 403
    assert not Document.objects.for_tenant(tenant_a.tenant).exists()


def test_the_status_poll_reports_only_the_tenants_documents(tenant_a, tenant_b, eager_ingestion):
    mine = uploaded(tenant_a, "warranty.md", WARRANTY.encode())
    theirs = uploaded(tenant_b, "warranty.md", WARRANTY.encode())
    Document.objects.filter(pk=mine.pk).update(status="processing", stage="embedding", progress=0.5)
    response = signed_in(tenant_a.agent).get(
        dashboard_url("documents-status", tenant_a), {"ids": f"{mine.pk},{theirs.pk},x"}
    )
    body = response.json()
    assert [state["id"] for state in body["documents"]] == [mine.pk]
    assert body["documents"][0]["progress"] == 50 and body["in_progress"] is True
    page = signed_in(tenant_a.agent).get(dashboard_url("documents", tenant_a))
    assert 'data-polling="on"' in page.content.decode()


def test_delete_and_reindex_check_ownership_and_role(tenant_a, tenant_b, eager_ingestion):
    document = uploaded(tenant_a, "warranty.md", WARRANTY.encode())
    other = signed_in(tenant_b.tenant_admin)
    b_url = reverse(
        "dashboard:document-delete", kwargs={"tenant_id": tenant_b.tenant.pk, "document_id": document.pk}
    )
    assert other.post(b_url).status_code == 404
    agent = signed_in(tenant_a.agent)
    assert agent.post(dashboard_url("document-delete", tenant_a, document_id=document.pk)).status_code == 403
    assert agent.post(dashboard_url("document-reindex", tenant_a, document_id=document.pk)).status_code == 403
    admin = signed_in(tenant_a.tenant_admin)
    with committed():
        reindexed = admin.post(
            dashboard_url("document-reindex", tenant_a, document_id=document.pk), follow=True
        )
    assert "being indexed again" in messages_of(reindexed)[0]
    document.refresh_from_db()
    assert document.status == "ready"
    deleted = admin.post(dashboard_url("document-delete", tenant_a, document_id=document.pk), follow=True)
    assert "was deleted" in messages_of(deleted)[0]
    assert not Document.objects.filter(pk=document.pk).exists()


def test_the_search_tester_shows_each_mode(tenant_a, tenant_b, eager_ingestion):
    uploaded(tenant_a, "warranty.md", WARRANTY.encode())
    uploaded(tenant_b, "returns.txt", RETURNS_POLICY.encode())
    response = signed_in(tenant_a.agent).get(
        dashboard_url("knowledge-search", tenant_a), {"query": "How long is the warranty?"}
    )
    columns = {column["mode"]: column["results"] for column in response.context["columns"]}
    assert set(columns) == {"vector", "keyword", "hybrid"}
    assert columns["hybrid"][0].document_title == "warranty"
    assert all(result.document_title == "warranty" for results in columns.values() for result in results)
    assert "two-year limited warranty" in response.content.decode()


def test_retrieval_settings_are_written_by_admins_and_closed_to_agents(tenant_a):
    assert signed_in(tenant_a.agent).get(dashboard_url("settings-retrieval", tenant_a)).status_code == 403
    values = RETRIEVAL_FORM
    assert (
        signed_in(tenant_a.agent).post(dashboard_url("settings-retrieval", tenant_a), values).status_code
        == 403
    )
    admin = signed_in(tenant_a.tenant_admin)
    assert (
        admin.post(dashboard_url("settings-retrieval", tenant_a), {**values, "top_k": 0}).status_code == 400
    )
    assert admin.post(dashboard_url("settings-retrieval", tenant_a), values).status_code == 302
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.settings["retrieval"]["mode"] == "keyword"
    assert tenant_a.tenant.settings["retrieval"]["top_k"] == 3
    assert tenant_a.tenant.settings["retrieval"]["score_threshold"] is None


def test_the_list_needs_no_query_per_document(tenant_a, django_assert_max_num_queries):
    for number in range(20):
        Document.objects.create(
            tenant=tenant_a.tenant,
            title=f"Doc {number}",
            filename=f"{number}.txt",
            kind="txt",
            content_type="text/plain",
            size_bytes=10,
            sha256=f"{number:064d}",
            file_path=f"x/{number}.txt",
            uploaded_by=tenant_a.tenant_admin,
        )
    client = signed_in(tenant_a.agent)
    # One of them the pending documents' places in line, two the ingestion progress.
    with django_assert_max_num_queries(13):
        response = client.get(dashboard_url("documents", tenant_a))
    assert len(response.context["page"].object_list) == 20
    pending = client.get(dashboard_url("documents", tenant_a), {"status": "pending", "search": "Doc 1"})
    assert pending.context["page"].paginator.count == 11


def test_an_oversized_upload_is_refused_from_its_declared_length(tenant_a, settings):
    settings.BULK_UPLOAD_MAX_FILES = 20  # at most 20 files of 1,000 bytes: 20 kB and the envelope
    tenant_a.tenant.plan.max_upload_bytes = 1000
    tenant_a.tenant.plan.save()
    client = signed_in(tenant_a.tenant_admin)
    response = client.post(
        dashboard_url("documents", tenant_a),
        {"files": [SimpleUploadedFile("a.txt", b"x" * 200_000)]},
        follow=True,
    )
    assert "The upload is too large" in messages_of(response)[0]
    assert not Document.objects.for_tenant(tenant_a.tenant).exists()


# --- Throttles shared with the API ------------------------------------------------------------


def test_dashboard_uploads_count_against_the_api_upload_budget(tenant_a, tenant_b):
    plan = tenant_a.tenant.plan
    plan.upload_files_per_hour = 3
    plan.save()

    def files(*numbers):
        return [
            SimpleUploadedFile(f"page-{number}.txt", f"Page {number} of the manual.".encode())
            for number in numbers
        ]

    client = signed_in(tenant_a.tenant_admin)
    response = client.post(dashboard_url("documents", tenant_a), {"files": files(0, 1)}, follow=True)
    texts = messages_of(response)
    assert texts[0].startswith("page-0.txt: uploaded") and texts[1].startswith("page-1.txt: uploaded")
    # Two more do not fit the budget of three an hour: neither is stored.
    response = client.post(dashboard_url("documents", tenant_a), {"files": files(2, 3)}, follow=True)
    assert messages_of(response)[0].startswith("Your plan's hourly upload budget is spent")
    assert Document.objects.for_tenant(tenant_a.tenant).count() == 2
    response = client.post(dashboard_url("documents", tenant_a), {"files": files(2)}, follow=True)
    assert messages_of(response)[0].startswith("page-2.txt: uploaded")
    # The API answers from the same bucket: the tenant's budget is spent.
    refused = tenant_a.client("tenant_admin").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/documents/upload",
        {"file": SimpleUploadedFile("api.txt", b"Uploaded through the API.")},
        format="multipart",
    )
    assert_error(refused, 429, "rate_limited")
    # Another tenant's budget is its own.
    other = signed_in(tenant_b.tenant_admin).post(
        dashboard_url("documents", tenant_b),
        {"files": [SimpleUploadedFile("b.txt", b"Tenant B's page.")]},
        follow=True,
    )
    assert messages_of(other)[0].startswith("b.txt: uploaded")


def test_dashboard_reindex_counts_against_the_same_budget_as_the_api(tenant_a):
    plan = tenant_a.tenant.plan
    plan.upload_files_per_hour = 1
    plan.save()
    documents = [
        Document.objects.create(
            tenant=tenant_a.tenant,
            title=f"manual {number}",
            filename=f"manual-{number}.txt",
            kind="txt",
            content_type="text/plain",
            size_bytes=10,
            sha256=f"{number:064d}",
            file_path=f"tenants/{tenant_a.tenant.pk}/documents/manual-{number}.txt",
            status="ready",
            stage="done",
        )
        for number in range(2)
    ]
    api = tenant_a.client("tenant_admin").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/documents/{documents[0].pk}/reindex"
    )
    assert api.status_code == 202
    response = signed_in(tenant_a.tenant_admin).post(
        dashboard_url("document-reindex", tenant_a, document_id=documents[1].pk), follow=True
    )
    assert messages_of(response)[0].startswith("Too many uploads or reindexing requests")
    documents[1].refresh_from_db()
    assert documents[1].status == "ready"
    assert_error(
        tenant_a.client("tenant_admin").post(f"/v1/tenants/{tenant_a.tenant.pk}/documents/reindex"),
        429,
        "rate_limited",
    )


# --- Many files, archives and folders -----------------------------------------------------------


def test_the_pages_script_sends_files_and_archives_and_gets_each_outcome_as_json(tenant_a):
    archive = zip_bytes(
        {"manuals/filters.txt": b"Clean the filters every week.", "../escape.txt": b"Out of the folder."}
    )
    client = signed_in(tenant_a.tenant_admin)
    response = client.post(
        dashboard_url("documents", tenant_a),
        {
            "files": [
                SimpleUploadedFile("pumps.txt", b"Check the pumps every month."),
                SimpleUploadedFile("folder.zip", archive),
                SimpleUploadedFile("tool.pdf", elf_bytes()),
            ]
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"filename": "pumps.txt", "outcome": "created", "text": "uploaded; it is being indexed."},
        {
            "filename": "folder.zip/manuals/filters.txt",
            "outcome": "created",
            "text": "uploaded; it is being indexed.",
        },
        {
            "filename": "folder.zip/../escape.txt",
            "outcome": "refused",
            "text": "This name points outside the archive's folder; it was not extracted.",
        },
        {
            "filename": "tool.pdf",
            "outcome": "refused",
            "text": "This type of file is not supported. Upload a PDF, DOCX, TXT, Markdown or HTML file, or a "
            "PNG or JPEG picture of a page.",
        },
    ]
    assert Document.objects.for_tenant(tenant_a.tenant).count() == 2
    # A request refused whole answers its status and a sentence.
    plan = tenant_a.tenant.plan
    plan.upload_files_per_hour = 3
    plan.save()
    refused = client.post(
        dashboard_url("documents", tenant_a),
        {"files": [SimpleUploadedFile("more.txt", b"One file too many.")]},
        HTTP_ACCEPT="application/json",
    )
    assert refused.status_code == 429
    assert refused.json()["error"]["message"].startswith("Your plan's hourly upload budget is spent")


def test_the_list_and_its_poll_say_where_a_waiting_document_stands(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    files = [
        SimpleUploadedFile(f"page-{number}.txt", f"Page {number} of the manual.".encode())
        for number in range(4)
    ]
    client.post(dashboard_url("documents", tenant_a), {"files": files})
    last = Document.objects.for_tenant(tenant_a.tenant).get(filename="page-3.txt")
    page = client.get(dashboard_url("documents", tenant_a))
    assert "Waiting for its turn, number 4 in line" in page.content.decode()
    poll = client.get(dashboard_url("documents-status", tenant_a), {"ids": str(last.pk)}).json()
    assert poll["documents"][0]["queue_position"] == 4
    assert poll["documents"][0]["stage_label"] == "Waiting for its turn, number 4 in line"
    with translation.override("zh-hant"):
        label = client.get(
            dashboard_url("documents-status", tenant_a), {"ids": str(last.pk)}, HTTP_ACCEPT_LANGUAGE="zh-hant"
        ).json()["documents"][0]["stage_label"]
    assert "4" in label and "number" not in label
