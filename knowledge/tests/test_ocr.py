"""Scanned PDFs and PNG/JPEG pictures of pages: read by text recognition (OCR) in the extraction
sandbox, through the API upload and the real ingestion, then found by search; the plan bounds the
pages one document may have recognised."""

import io

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from knowledge import extraction
from knowledge.models import Chunk, Document
from testsupport.dashboard import dashboard_url, signed_in
from testsupport.documents import upload, uploaded, vector_count
from testsupport.files import pdf_bytes
from testsupport.scans import image_bytes, page_image, scanned_pdf_bytes

pytestmark = pytest.mark.django_db

RETURNS = "退貨政策：商品於收到後七天內可申請退貨，請保留原包裝與發票。"
SHIPPING = "Shipping: orders over NT$1,000 ship free anywhere in Taiwan within three days."


def search(people, query: str, mode: str = "keyword"):
    response = people.client("agent").post(
        f"/v1/tenants/{people.tenant.pk}/knowledge/search",
        {"query": query, "mode": mode, "top_k": 5},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_scanned_pdf_is_recognised_and_its_pages_are_searchable(tenant_a, eager_ingestion):
    content = scanned_pdf_bytes([page_image(RETURNS), page_image(SHIPPING)])
    document = uploaded(tenant_a, "scan.pdf", content)
    body = tenant_a.client("agent").get(f"/v1/tenants/{tenant_a.tenant.pk}/documents/{document.pk}").json()
    assert body["status"] == "ready", body
    assert body["kind"] == "pdf"
    assert body["ocr_pages"] == 2
    assert 0.8 < body["ocr_confidence"] <= 1.0
    chinese = search(tenant_a, "收到後幾天內可以退貨")
    assert chinese and chinese[0]["document_id"] == document.pk
    assert "七天內" in chinese[0]["text"] and chinese[0]["page"] == 1
    english = search(tenant_a, "free shipping Taiwan")
    assert english and english[0]["document_id"] == document.pk
    assert "ship free" in english[0]["text"] and english[0]["page"] == 2

    page = signed_in(tenant_a.tenant_admin).get(dashboard_url("documents", tenant_a))
    assert "Recognised by OCR: 2 pages" in page.content.decode()


def test_pages_with_a_text_layer_keep_it_and_only_the_others_are_recognised(tmp_path):
    text_layer = pdf_bytes(["Chapter one. The device boots in ten seconds."])
    scan = scanned_pdf_bytes([page_image(RETURNS)])
    writer = PdfWriter()
    for content in (text_layer, scan):
        writer.append(PdfReader(io.BytesIO(content)))
    path = tmp_path / "mixed.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    extracted = extraction.extract(path, "pdf", max_characters=100_000, max_ocr_pages=1)
    assert [section.page for section in extracted.sections] == [1, 2]
    assert "boots in ten seconds" in extracted.sections[0].text
    assert "七天內" in extracted.sections[1].text
    assert extracted.ocr_pages == 1


@pytest.mark.parametrize(("name", "format"), [("receipt.png", "PNG"), ("notice.jpg", "JPEG")])
def test_png_and_jpeg_pictures_of_a_page_are_accepted_and_searchable(tenant_a, eager_ingestion, name, format):
    response = upload(tenant_a, name, image_bytes(page_image(RETURNS + "\n" + SHIPPING), format))
    assert response.status_code == 202, response.content
    assert response.json()["kind"] == ("png" if format == "PNG" else "jpeg")
    assert response.json()["content_type"] == f"image/{format.lower()}"
    document = Document.objects.get(pk=response.json()["id"])
    assert document.status == "ready", document.error
    assert document.ocr_pages == 1 and document.ocr_confidence > 0.8
    results = search(tenant_a, "七天內 退貨")
    assert results and results[0]["document_id"] == document.pk


def test_a_scanned_pdf_over_the_plans_ocr_page_limit_fails_with_a_clear_message(tenant_a, eager_ingestion):
    plan = tenant_a.tenant.plan
    plan.max_ocr_pages = 2
    plan.save()
    blank = page_image("", width=200)
    document = uploaded(tenant_a, "long-scan.pdf", scanned_pdf_bytes([blank, blank, blank]))
    document.refresh_from_db()
    assert document.status == "failed"
    assert "3 scanned pages" in document.error and "at most 2 pages" in document.error
    assert "此 PDF 有 3 頁" in document.error and "最多以文字辨識（OCR）讀取 2 頁" in document.error
    assert document.ocr_pages == 0 and document.chunk_count == 0
    assert not Chunk.objects.filter(document=document).exists()
    assert vector_count(document) == 0


def test_a_picture_without_text_fails_with_a_clear_message(tmp_path):
    path = tmp_path / "blank.png"
    path.write_bytes(image_bytes(page_image("", width=300), "PNG"))
    with pytest.raises(extraction.ExtractionError, match=r"found no text in this image"):
        extraction.extract(path, "png", max_characters=100_000)


def test_a_picture_larger_than_the_pixel_limit_is_refused(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (9000, 9000), "white").save(path)  # 81 Mpx, a few kilobytes of PNG
    with pytest.raises(extraction.ExtractionError, match=r"more memory or time"):
        extraction.extract(path, "png", max_characters=100_000)


def test_recognition_beyond_the_memory_limit_fails_with_the_too_complex_message(tmp_path, monkeypatch):
    # The parsers' limit holds, and the recogniser's is set below what its models need.
    monkeypatch.setattr(extraction, "EXTRACTION_MEMORY_BYTES", 1024**3)
    monkeypatch.setattr(extraction, "OCR_MEMORY_BYTES", 1024**3)
    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_pdf_bytes([page_image(RETURNS)]))
    with pytest.raises(extraction.ExtractionError, match=r"needs more memory or time"):
        extraction.extract(path, "pdf", max_characters=100_000)
    monkeypatch.setattr(extraction, "OCR_MEMORY_BYTES", 4 * 1024**3)
    assert "七天內" in extraction.extract(path, "pdf", max_characters=100_000).sections[0].text


def test_wrapped_lines_are_joined_into_their_paragraphs(tmp_path):
    # RETURNS wraps over three lines of 12 characters and ends short: one paragraph, then the
    # English one; a Chinese word cut by a line end is whole again (what search and answers need).
    path = tmp_path / "page.png"
    path.write_bytes(image_bytes(page_image(RETURNS + "\n" + "Ships free.", per_line=12), "PNG"))
    text = extraction.extract(path, "png", max_characters=100_000).sections[0].text
    assert text.split("\n") == [RETURNS, "Ships free."]


def test_a_number_a_chinese_line_break_cuts_is_joined_without_a_space(tmp_path):
    # "1989" wraps after "19": a Chinese line breaks anywhere, and the answer a passage must hold
    # is "1989年", not "19 89年". Two English words parted by a line end keep their space.
    chinese = "臺北縣的縣長與縣議員都由縣民直接選舉19" + "89年起首長由縣民直接選舉產生。"
    path = tmp_path / "page.png"
    path.write_bytes(image_bytes(page_image(chinese, per_line=20), "PNG"))
    assert extraction.extract(path, "png", max_characters=100_000).sections[0].text == chinese


def test_a_sentence_a_page_break_cuts_is_whole_on_the_page_where_it_starts(tmp_path):
    first = "退貨政策：商品於收到後七天內可申請退貨，請保留原包裝與發票。《教會"
    second = "史》第三冊25章記載了新約書卷的清單。其餘內容見下頁。"
    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_pdf_bytes([page_image(first, per_line=12), page_image(second, per_line=12)]))
    sections = extraction.extract(path, "pdf", max_characters=100_000).sections
    assert [(section.page, section.text) for section in sections] == [
        (1, first + "史》第三冊25章記載了新約書卷的清單。"),
        (2, second),
    ]


@pytest.mark.parametrize("angle", [180, 90, 270])
def test_a_page_scanned_upside_down_or_on_its_side_is_read_turned_upright(tmp_path, angle):
    # As it lies, the page reads as a few low-confidence fragments ("：" upside down).
    path = tmp_path / "page.png"
    path.write_bytes(
        image_bytes(page_image(RETURNS + "\n" + SHIPPING, width=1240).rotate(angle, expand=True), "PNG")
    )
    extracted = extraction.extract(path, "png", max_characters=100_000)
    assert extracted.sections[0].text.split("\n") == [RETURNS, SHIPPING]
    assert extracted.ocr_confidence > 0.95
