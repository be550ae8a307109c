"""Upload, ingestion, search, reindex and delete through the API, against a real Milvus Lite
server and the real embedding model; ingestion runs in-process when the upload commits."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import Chunk, Document, KeywordCorpus, TermFrequency
from testsupport.api import assert_error
from testsupport.documents import RETURNS_POLICY, WARRANTY, stored_files, upload, uploaded, vector_count
from testsupport.environment import committed
from testsupport.files import (
    chinese_pdf_bytes,
    docx_bytes,
    elf_bytes,
    encrypted_pdf_bytes,
    pdf_bytes,
    zeros_zip_member_bytes,
)

pytestmark = pytest.mark.django_db


def search(people, query: str, mode: str = "hybrid", role: str = "agent", top_k: int = 5):
    response = people.client(role).post(
        f"/v1/tenants/{people.tenant.pk}/knowledge/search",
        {"query": query, "mode": mode, "top_k": top_k},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- The happy path in every format ----------------------------------------------------------


def test_upload_answers_202_pending_then_ingestion_makes_it_ready(tenant_a, eager_ingestion):
    response = upload(tenant_a, "退貨政策.txt", RETURNS_POLICY.encode())
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert body["title"] == "退貨政策"
    assert body["kind"] == "txt"
    detail = tenant_a.client("agent").get(f"/v1/tenants/{tenant_a.tenant.pk}/documents/{body['id']}").json()
    assert detail["status"] == "ready", detail
    assert detail["stage"] == "done"
    assert detail["progress"] == 1.0
    assert detail["chunk_count"] >= 1
    chunks = (
        tenant_a.client("agent").get(f"/v1/tenants/{tenant_a.tenant.pk}/documents/{body['id']}/chunks").json()
    )
    assert chunks["count"] == detail["chunk_count"]
    assert "七天內" in " ".join(chunk["text"] for chunk in chunks["results"])
    assert stored_files(tenant_a.tenant)


@pytest.mark.parametrize(
    ("name", "content", "expected_kind", "expected_text"),
    [
        (
            "manual.pdf",
            pdf_bytes(
                ["Chapter one. The device boots in ten seconds.", "Chapter two. Reset by holding the button."]
            ),
            "pdf",
            "Reset by holding",
        ),
        ("說明.pdf", chinese_pdf_bytes("本產品保固兩年，電池保固一年。"), "pdf", "保固兩年"),
        ("policy.txt", RETURNS_POLICY.encode("big5"), "txt", "七天內"),
        (
            "faq.html",
            b"<html><head><title>FAQ</title><style>p{color:red}</style><script>alert('x')</script></head><body><h1>FAQ</h1><p>Opening hours are nine to six.</p></body></html>",
            "html",
            "Opening hours",
        ),
        (
            "guide.md",
            "# 安裝指南\n\n請先**關閉電源**，再連接[網路線](http://example.com)。\n".encode(),
            "markdown",
            "關閉電源",
        ),
        ("bom.txt", b"\xef\xbb\xbf" + WARRANTY.encode(), "txt", "two-year limited warranty"),
    ],
    ids=["pdf", "chinese-pdf", "big5-txt", "html", "markdown", "utf8-bom"],
)
def test_each_format_becomes_ready_with_sensible_chunks(
    tenant_a, eager_ingestion, name, content, expected_kind, expected_text
):
    document = uploaded(tenant_a, name, content)
    document.refresh_from_db()
    assert document.kind == expected_kind
    assert document.status == "ready", document.error
    texts = list(Chunk.objects.filter(document=document).values_list("text", flat=True))
    assert len(texts) == document.chunk_count == vector_count(document)
    assert any(expected_text in text for text in texts)
    assert not any("alert(" in text or "color:red" in text for text in texts)


def test_docx_with_headings_and_tables_becomes_ready(tenant_a, eager_ingestion):
    def build(doc):
        doc.add_heading("保固條款", level=1)
        doc.add_paragraph("本公司筆電享有兩年保固。")
        table = doc.add_table(rows=2, cols=2)
        table.cell(0, 0).text = "項目"
        table.cell(0, 1).text = "期限"
        table.cell(1, 0).text = "電池"
        table.cell(1, 1).text = "一年"

    document = uploaded(tenant_a, "warranty.docx", docx_bytes(build))
    document.refresh_from_db()
    assert document.status == "ready", document.error
    chunks = list(Chunk.objects.filter(document=document))
    joined = " ".join(chunk.text for chunk in chunks)
    assert "兩年保固" in joined
    assert "電池 | 一年" in joined
    assert any(chunk.heading == "保固條款" for chunk in chunks)


def test_pdf_chunks_keep_their_page(tenant_a, eager_ingestion):
    document = uploaded(
        tenant_a, "pages.pdf", pdf_bytes(["First page text about routers.", "Second page text about modems."])
    )
    pages = dict(Chunk.objects.filter(document=document).values_list("text", "page"))
    assert any(page == 2 and "modems" in text for text, page in pages.items())
    results = search(tenant_a, "modems", mode="keyword")
    assert results[0]["page"] == 2


# --- Search -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_search_finds_the_right_passage_in_chinese_and_english(tenant_a, eager_ingestion, mode):
    policy = uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    warranty = uploaded(tenant_a, "warranty.txt", WARRANTY.encode())
    chinese = search(tenant_a, "滿多少錢免運費？", mode=mode)
    assert chinese[0]["document_id"] == policy.pk
    assert "免運費" in chinese[0]["text"]
    assert chinese[0]["document_title"] == "policy"
    english = search(tenant_a, "how long is the battery covered", mode=mode)
    assert english[0]["document_id"] == warranty.pk
    assert "Batteries" in english[0]["text"]


def test_simplified_chinese_query_finds_traditional_text(tenant_a, eager_ingestion):
    policy = uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    assert search(tenant_a, "运费说明", mode="keyword")[0]["document_id"] == policy.pk


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_search_never_returns_another_tenants_chunks_even_for_identical_text(
    tenant_a, tenant_b, eager_ingestion, mode
):
    uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    own = uploaded(tenant_b, "warranty.txt", WARRANTY.encode())
    # B's only document is unrelated; A's identical-text document must still not appear.
    results = search(tenant_b, "退貨政策 七天內 全額退款", mode=mode, top_k=10)
    assert {result["document_id"] for result in results} <= {own.pk}
    uploaded(tenant_b, "policy.txt", RETURNS_POLICY.encode())  # the same bytes are fine in another tenant
    results = search(tenant_b, "退貨政策 七天內 全額退款", mode=mode, top_k=10)
    assert results
    assert all(
        Document.objects.get(pk=result["document_id"]).tenant_id == tenant_b.tenant.pk for result in results
    )


def test_keyword_statistics_are_kept_per_tenant(tenant_a, tenant_b, eager_ingestion):
    uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    assert KeywordCorpus.objects.get(tenant=tenant_a.tenant).chunk_count >= 1
    assert not KeywordCorpus.objects.filter(tenant=tenant_b.tenant).exists()
    assert not TermFrequency.objects.filter(tenant=tenant_b.tenant).exists()


def test_search_validates_its_input(tenant_a, milvus_uri):
    client = tenant_a.client("agent")
    url = f"/v1/tenants/{tenant_a.tenant.pk}/knowledge/search"
    assert_error(client.post(url, {"query": "x", "mode": "psychic"}, format="json"), 400, "validation_error")
    assert_error(client.post(url, {"query": "x", "top_k": 0}, format="json"), 400, "validation_error")
    assert_error(client.post(url, {"query": "x" * 2001}, format="json"), 400, "validation_error")
    assert_error(client.post(url, {}, format="json"), 400, "validation_error")


def test_search_of_an_empty_knowledge_base_returns_nothing(tenant_a, milvus_uri):
    assert search(tenant_a, "anything at all") == []


# --- Reindex and delete ---------------------------------------------------------------------


def test_reindex_ends_ready_with_exactly_one_set_of_vectors(tenant_a, eager_ingestion):
    document = uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    document.refresh_from_db()
    before = document.chunk_count
    with committed():
        response = tenant_a.client("tenant_admin").post(
            f"/v1/tenants/{tenant_a.tenant.pk}/documents/{document.pk}/reindex"
        )
    assert response.status_code == 202
    document.refresh_from_db()
    assert document.status == "ready"
    assert document.chunk_count == before == vector_count(document)
    assert Chunk.objects.filter(document=document).count() == before


def test_reindex_all_queues_every_document(tenant_a, eager_ingestion):
    uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    uploaded(tenant_a, "warranty.txt", WARRANTY.encode())
    with committed():
        response = tenant_a.client("tenant_admin").post(f"/v1/tenants/{tenant_a.tenant.pk}/documents/reindex")
    assert response.json() == {"queued": 2}
    for document in Document.objects.filter(tenant=tenant_a.tenant):
        assert document.status == "ready"
        assert vector_count(document) == document.chunk_count


def test_delete_removes_file_chunks_vectors_and_statistics(tenant_a, eager_ingestion):
    document = uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    assert vector_count(document) > 0
    with committed():
        response = tenant_a.client("tenant_admin").delete(
            f"/v1/tenants/{tenant_a.tenant.pk}/documents/{document.pk}"
        )
    assert response.status_code == 204
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not Chunk.objects.filter(document_id=document.pk).exists()
    assert vector_count(document) == 0
    assert stored_files(tenant_a.tenant) == []
    assert KeywordCorpus.objects.get(tenant=tenant_a.tenant).chunk_count == 0
    assert not TermFrequency.objects.filter(tenant=tenant_a.tenant).exists()


@pytest.mark.parametrize("action", ["delete", "reindex"])
def test_tenant_b_cannot_delete_or_reindex_tenant_a_documents(tenant_a, tenant_b, eager_ingestion, action):
    document = uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    document.refresh_from_db()
    client = tenant_b.client("tenant_admin")
    for tenant in (tenant_a.tenant, tenant_b.tenant):  # A's URL and B's own URL with A's id
        url = f"/v1/tenants/{tenant.pk}/documents/{document.pk}"
        response = client.delete(url) if action == "delete" else client.post(f"{url}/reindex")
        assert_error(response, 404, "not_found")
    after = Document.objects.get(pk=document.pk)
    assert after.status == "ready"
    assert vector_count(after) == after.chunk_count == document.chunk_count


# --- Bad files ------------------------------------------------------------------------------


def test_upload_refuses_executable_renamed_to_pdf(tenant_a, milvus_uri):
    response = upload(tenant_a, "invoice.pdf", elf_bytes())
    assert_error(response, 415, "unsupported_file_type")
    assert "executable" in response.json()["error"]["message"]
    assert not Document.objects.exists()
    assert stored_files(tenant_a.tenant) == []


def test_upload_refuses_an_empty_file(tenant_a, milvus_uri):
    assert_error(upload(tenant_a, "empty.txt", b""), 400, "empty_file")


def test_upload_refuses_the_same_bytes_twice_naming_the_first(tenant_a, eager_ingestion):
    first = uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    response = upload(tenant_a, "copy.txt", RETURNS_POLICY.encode())
    assert_error(response, 409, "duplicate")
    assert response.json()["error"]["details"]["document_id"] == first.pk
    assert Document.objects.count() == 1


def test_upload_refuses_a_file_over_the_plan_limit_before_reading_it(tenant_a, milvus_uri):
    plan = tenant_a.tenant.plan
    plan.max_upload_bytes = 1000
    plan.save()
    response = upload(tenant_a, "big.txt", b"a" * 200_000)
    assert_error(response, 413, "payload_too_large")
    small_but_over = upload(tenant_a, "over.txt", b"b" * 1500)
    assert_error(small_but_over, 413, "payload_too_large")
    assert not Document.objects.exists()


@pytest.mark.parametrize("quota", ["max_documents", "max_storage_bytes"])
def test_upload_enforces_the_plan_quotas(tenant_a, eager_ingestion, quota):
    plan = tenant_a.tenant.plan
    setattr(plan, quota, 1 if quota == "max_documents" else len(RETURNS_POLICY.encode()) + 10)
    plan.save()
    uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    response = upload(tenant_a, "warranty.txt", WARRANTY.encode())
    assert_error(response, 403, "quota_exceeded")
    assert Document.objects.count() == 1


def test_upload_needs_a_file_field(tenant_a, milvus_uri):
    client = tenant_a.client("tenant_admin")
    url = f"/v1/tenants/{tenant_a.tenant.pk}/documents/upload"
    assert_error(client.post(url, {"title": "no file"}, format="multipart"), 400, "validation_error")
    assert_error(client.post(url, {"file": "just text"}, format="multipart"), 400, "validation_error")
    assert_error(client.post(url, {"file": "x"}, format="json"), 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("scan.pdf", pdf_bytes([None, None]), "scanned"),
        (
            "locked.pdf",
            encrypted_pdf_bytes(["Secret"], user_password="pw", owner_password="owner"),
            "password",
        ),
        ("bomb.docx", zeros_zip_member_bytes("word/document.xml", 300 * 1024 * 1024), ""),
        ("broken.pdf", pdf_bytes(["Some text here."])[:200], ""),
    ],
    ids=["image-only-pdf", "encrypted-pdf", "zip-bomb-docx", "truncated-pdf"],
)
def test_bad_files_end_failed_with_a_clear_message_and_nothing_indexed(
    tenant_a, eager_ingestion, name, content, message
):
    response = upload(tenant_a, name, content)
    if response.status_code == 415:  # refused at the door: equally acceptable, nothing stored
        assert not Document.objects.exists()
        return
    document = Document.objects.get(pk=response.json()["id"])
    assert document.status == "failed"
    assert document.error
    assert message.lower() in document.error.lower()
    assert document.chunk_count == 0
    assert not Chunk.objects.filter(document=document).exists()
    assert vector_count(document) == 0


@pytest.mark.parametrize("role", ["agent", "end_user"])
def test_only_admins_upload(tenant_a, milvus_uri, role):
    assert_error(upload(tenant_a, "x.txt", b"hello there", role=role), 403, "permission_denied")
    assert not Document.objects.exists()


def test_tenant_b_upload_to_tenant_a_is_404(tenant_a, tenant_b, milvus_uri):
    response = tenant_b.client("tenant_admin").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/documents/upload",
        {"file": SimpleUploadedFile("x.txt", b"hello")},
        format="multipart",
    )
    assert_error(response, 404, "not_found")


def test_document_list_filters_and_stays_query_bounded(
    tenant_a, eager_ingestion, django_assert_max_num_queries
):
    uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    uploaded(tenant_a, "warranty.txt", WARRANTY.encode())
    client = tenant_a.client("agent")
    with django_assert_max_num_queries(5):
        body = client.get(f"/v1/tenants/{tenant_a.tenant.pk}/documents").json()
    assert body["count"] == 2
    assert client.get(f"/v1/tenants/{tenant_a.tenant.pk}/documents?search=warr").json()["count"] == 1
    assert client.get(f"/v1/tenants/{tenant_a.tenant.pk}/documents?status=failed").json()["count"] == 0


def test_english_documents_get_larger_chunks_than_chinese_ones(tenant_a, eager_ingestion, settings):
    """A character of Chinese carries about a word; of English, a sixth of one: an English
    document is cut at CHUNK_SIZE_ALPHABETIC characters, a Chinese one at CHUNK_SIZE."""
    english = " ".join(f"Sentence number {n} describes the warranty terms in plain words." for n in range(14))
    chinese = "".join(f"第{n}條：保固條款以清楚的文字說明，商品到貨後七天內可以退貨。" for n in range(30))
    assert settings.CHUNK_SIZE < len(english) < settings.CHUNK_SIZE_ALPHABETIC
    assert settings.CHUNK_SIZE < len(chinese) < settings.CHUNK_SIZE_ALPHABETIC

    assert uploaded(tenant_a, "terms.txt", english.encode()).chunks.count() == 1
    assert uploaded(tenant_a, "條款.txt", chinese.encode()).chunks.count() >= 2


# --- A hosted embedding provider -----------------------------------------------------------------


def test_a_hosted_embedder_ingests_in_concurrent_batches_and_reports_progress(
    tenant_a, eager_ingestion, settings, monkeypatch
):
    from knowledge import embedding, ingestion, vector_index
    from testsupport.wire_server import wire_server

    recorded = []
    set_progress = ingestion._set_progress

    def recording(document, *, stage, progress: float, status=None):
        recorded.append((stage, progress))
        set_progress(document, stage=stage, progress=progress, status=status)

    monkeypatch.setattr(ingestion, "_set_progress", recording)
    paragraphs = [
        f"第{number}節：本產品可連續運作{number}小時，請定期清潔濾網並檢查電源線。" for number in range(700)
    ]
    with wire_server(api_key="test-key", default_dimension=8) as server:
        server.embedding_latency(0.1)
        settings.EMBEDDING_PROVIDER = "openai"
        settings.EMBEDDING_MODEL = "fake-embedding"
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = server.base_url
        settings.EMBEDDING_HOSTED_BATCH_SIZE = 4
        settings.EMBEDDING_CONCURRENCY = 3
        embedding.clear_embedder_cache()
        try:
            document = uploaded(tenant_a, "manual.txt", "\n\n".join(paragraphs).encode())
            document.refresh_from_db()

            assert document.status == "ready", document.error
            assert document.chunk_count > 12
            assert document.chunk_count == vector_count(document)
            # Less the request that learns the unknown model's dimension.
            sizes = [
                len(request.inputs)
                for request in server.embedding_requests
                if request.inputs != ["dimension"]
            ]
            assert sum(sizes) == document.chunk_count and max(sizes) == 4
            assert 1 < server.max_in_flight <= 3
        finally:
            embedding.clear_embedder_cache()
            # The hosted model's collection would stay in the session's Milvus for later tests.
            vector_index.milvus_client().drop_collection(
                vector_index.collection_name(embedder_name="openai-fake-embedding", dimension=8)
            )
    embedding_progress = [value for stage, value in recorded if stage == "embedding"]
    assert len(embedding_progress) > 3
    assert embedding_progress == sorted(embedding_progress)
    # One step per round of batch × concurrency chunks; the last round goes straight to indexing.
    assert 0.2 <= embedding_progress[0] < embedding_progress[-1] < 0.9
