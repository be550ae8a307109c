"""Type detection and text extraction. Pure functions on generated files: no database."""

import io
import itertools
import os
import random
import zipfile
from pathlib import Path

import pytest

from knowledge import extraction
from knowledge.extraction import (
    Extracted,
    ExtractionError,
    Section,
    UnsupportedFileType,
    detect_kind,
    extract,
)
from testsupport import files

HEAD = 64 * 1024
MAX_CHARACTERS = 100_000
BIG5_TEXT = "本公司提供全年無休的客服服務。\n\n退貨政策：收到商品後七天內可以申請退貨！請保留發票；謝謝。"


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def extract_bytes(directory: Path, name: str, data: bytes, kind: str, **options) -> Extracted:
    options.setdefault("max_characters", MAX_CHARACTERS)
    return extract(write(directory, name, data), kind, **options)


def policy_docx(document) -> None:
    document.add_heading("退貨政策", level=1)
    document.add_paragraph("收到商品後七天內可以申請退貨。")
    document.add_paragraph("請保留發票與完整包裝！")
    table = document.add_table(rows=3, cols=2)
    for row, (item, days) in zip(
        table.rows, [("項目", "天數"), ("退貨", "七天"), ("換貨", "十四天")], strict=True
    ):
        row.cells[0].text, row.cells[1].text = item, days
    document.add_paragraph("表格之後的說明。")
    document.add_heading("運費", level=2)
    document.add_paragraph("訂單滿一千元免運費。")


# ---------------------------------------------------------------------------------------------
# detect_kind


@pytest.mark.parametrize(
    ("data", "filename", "kind"),
    [
        (files.pdf_bytes(["Hello"]), "manual.pdf", "pdf"),
        (files.docx_bytes(policy_docx), "policy.docx", "docx"),
        (b"Opening hours: 9 to 5.\n", "hours.txt", "txt"),
        (b"Opening hours: 9 to 5.\n", "hours.md", "markdown"),
        (b"<!DOCTYPE html><html><body><p>Hi</p></body></html>", "page.html", "html"),
    ],
)
def test_detect_kind_recognises_each_supported_kind(data, filename, kind):
    assert detect_kind(data[:HEAD], filename) == kind


def test_detect_kind_takes_the_type_from_the_bytes_not_the_name():
    assert detect_kind(files.pdf_bytes(["Hello"]), "notes.txt") == "pdf"
    assert detect_kind(b"<html><body>Hi</body></html>", "manual.pdf") == "html"
    assert detect_kind(b"Plain words only.", "page.html") == "txt"


def test_detect_kind_refuses_executable_renamed_to_pdf():
    with pytest.raises(UnsupportedFileType) as raised:
        detect_kind(files.elf_bytes(), "x.pdf")
    assert str(raised.value) == (
        "This file looks like an executable (application/x-executable), not a document. "
        "Upload PDF, DOCX, TXT, Markdown, HTML, PNG or JPEG."
    )


def test_detect_kind_names_png_and_jpeg_pictures_of_pages_from_their_bytes():
    assert detect_kind(files.png_bytes(), "scan.pdf") == "png"
    assert detect_kind(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64), "scan.txt") == "jpeg"


def test_detect_kind_refuses_other_images():
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(32)
    with pytest.raises(UnsupportedFileType, match=r"an image \(image/gif\)"):
        detect_kind(gif, "scan.gif")


def test_detect_kind_refuses_legacy_word_document_with_advice_to_save_as_docx():
    with pytest.raises(UnsupportedFileType, match="save it as DOCX"):
        detect_kind(files.ole2_bytes(), "contract.doc")


def test_detect_kind_refuses_zip_that_is_not_a_word_document():
    with pytest.raises(UnsupportedFileType, match=r"an archive \(application/zip\)"):
        detect_kind(files.zip_bytes({"readme.txt": b"hello", "data.csv": b"a,b"}), "policy.docx")


def test_detect_kind_refuses_excel_workbook_naming_it():
    content_types = b'<Types><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
    workbook = files.zip_bytes({"[Content_Types].xml": content_types, "xl/workbook.xml": b"<workbook/>"})
    with pytest.raises(UnsupportedFileType, match="Excel spreadsheet"):
        detect_kind(workbook, "prices.docx")


def test_detect_kind_recognises_docx_from_the_first_64_kib_of_a_larger_file():
    document = io.BytesIO(files.docx_bytes(policy_docx))
    with zipfile.ZipFile(document, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("word/media/image1.png", random.Random(1).randbytes(300 * 1024))
    data = document.getvalue()
    assert len(data) > 4 * HEAD
    assert detect_kind(data[:HEAD], "policy.docx") == "docx"


def test_detect_kind_refuses_binary_data_with_nul_bytes():
    with pytest.raises(UnsupportedFileType, match="binary data"):
        detect_kind(b"\x01\x02\x00\x00\x05 some\x00 bytes " * 100, "notes.txt")


def test_detect_kind_accepts_text_that_happens_to_start_like_an_executable():
    # "MZ" is the signature of Windows executables, and the start of this company's name.
    assert detect_kind(b"MZ Logistics opening hours: 9 to 5.\n", "hours.txt") == "txt"


def test_detect_kind_tells_markdown_from_text_by_name_then_by_content():
    assert detect_kind(b"Just a sentence.", "faq.md") == "markdown"
    assert detect_kind(b"Just a sentence.", "faq.markdown") == "markdown"
    assert detect_kind(b"# Returns\n\nWithin seven days.", "faq.txt") == "txt"
    assert detect_kind(b"# Returns\n\nWithin seven days.", "faq") == "markdown"
    assert detect_kind(b"Intro\n\n```\ncode\n```\n", "") == "markdown"
    assert detect_kind(b"Just a sentence.", "") == "txt"


def test_detect_kind_keeps_markdown_named_file_that_opens_with_an_html_tag():
    readme = b'<p align="center"><img src="logo.png"></p>\n\n# Product\n'
    assert detect_kind(readme, "README.md") == "markdown"
    assert detect_kind(readme, "README") == "html"


def test_detect_kind_reads_big5_text_whose_head_ends_inside_a_character():
    head = b""
    for character in itertools.cycle(BIG5_TEXT):
        encoded = character.encode("big5")
        if len(head) + len(encoded) > HEAD and len(encoded) == 2:
            head += encoded[:1]  # the head ends on the first byte of a two-byte character
            break
        head += encoded
    assert detect_kind(head, "faq.txt") == "txt"


def test_detect_kind_accepts_utf16_text_with_a_bom():
    assert detect_kind("客服中心 FAQ".encode("utf-16"), "faq.txt") == "txt"


def test_detect_kind_treats_an_empty_head_by_its_name():
    assert detect_kind(b"", "notes.md") == "markdown"
    assert detect_kind(b"", "notes.txt") == "txt"


# ---------------------------------------------------------------------------------------------
# PDF


def test_extract_reads_pdf_text_and_title(tmp_path):
    data = files.pdf_bytes(["Returns are accepted\nwithin 7 days (with receipt)."], title="Returns policy")
    extracted = extract_bytes(tmp_path, "policy.pdf", data, "pdf")
    assert extracted == Extracted(
        title="Returns policy",
        sections=[Section(text="Returns are accepted\nwithin 7 days (with receipt).", page=1, heading=None)],
    )


def test_extract_keeps_pdf_page_numbers_and_skips_empty_pages(tmp_path):
    data = files.pdf_bytes(["First page.", None, "Third page."])
    extracted = extract_bytes(tmp_path, "manual.pdf", data, "pdf")
    assert [(section.page, section.text) for section in extracted.sections] == [
        (1, "First page."),
        (3, "Third page."),
    ]


def test_a_page_that_ends_inside_a_sentence_is_given_the_rest_of_it_from_the_next_page(tmp_path):
    # A chunk never crosses a page: without the rest, "within 7 days" would be in no passage.
    data = files.pdf_bytes(
        ["Returns are accepted", "within 7 days. Keep the receipt.", "It is needed.", "Last page."]
    )
    extracted = extract_bytes(tmp_path, "manual.pdf", data, "pdf")
    assert [(section.page, section.text) for section in extracted.sections] == [
        (1, "Returns are accepted within 7 days."),
        (2, "within 7 days. Keep the receipt."),  # a page that ends a sentence is left as it is
        (3, "It is needed."),
        (4, "Last page."),
    ]


def test_extract_reads_traditional_chinese_pdf_text(tmp_path):
    data = files.chinese_pdf_bytes("退貨政策：收到商品後七天內可以申請退貨！")
    extracted = extract_bytes(tmp_path, "policy.pdf", data, "pdf")
    assert extracted.sections == [
        Section(text="退貨政策：收到商品後七天內可以申請退貨！", page=1, heading=None)
    ]


def test_extract_refuses_a_pdf_without_text_layer_where_ocr_finds_no_text(tmp_path):
    with pytest.raises(ExtractionError) as raised:
        extract_bytes(tmp_path, "scan.pdf", files.pdf_bytes([None, None]), "pdf")
    assert str(raised.value) == (
        "This PDF has no text layer, and text recognition (OCR) found no text on its scanned pages. "
        "Upload a sharper scan or a PDF with selectable text."
    )


def test_extract_refuses_encrypted_pdf_with_a_clear_message(tmp_path):
    data = files.encrypted_pdf_bytes(["Secret"], user_password="s3cret", owner_password="owner")
    with pytest.raises(ExtractionError, match="protected by a password. Remove the password"):
        extract_bytes(tmp_path, "secret.pdf", data, "pdf")


def test_extract_opens_pdf_encrypted_with_an_empty_user_password(tmp_path):
    data = files.encrypted_pdf_bytes(
        ["Printing is restricted, reading is not."], user_password="", owner_password="o"
    )
    extracted = extract_bytes(tmp_path, "restricted.pdf", data, "pdf")
    assert extracted.sections[0].text == "Printing is restricted, reading is not."


def test_extract_refuses_truncated_pdf(tmp_path):
    data = files.pdf_bytes(["Page one.", "Page two."])
    with pytest.raises(ExtractionError, match="PDF is damaged or incomplete"):
        extract_bytes(tmp_path, "cut.pdf", data[: len(data) // 2], "pdf")


def test_extract_refuses_pdf_with_more_pages_than_allowed(tmp_path, monkeypatch):
    monkeypatch.setattr(extraction, "MAX_PDF_PAGES", 2)
    with pytest.raises(ExtractionError, match="This PDF has 3 pages, more than the 2"):
        extract_bytes(tmp_path, "long.pdf", files.pdf_bytes(["a", "b", "c"]), "pdf")


def test_extract_never_lets_a_library_error_escape_on_mangled_pdfs(tmp_path):
    original = files.pdf_bytes(["Page one text.", "Page two text."], title="T")
    generator = random.Random(7)
    for attempt in range(8):
        data = bytearray(original)
        for _ in range(20):
            data[generator.randrange(len(data))] = generator.randrange(256)
        try:
            extract_bytes(tmp_path, f"mangled{attempt}.pdf", bytes(data), "pdf")
        except ExtractionError:
            pass


# ---------------------------------------------------------------------------------------------
# DOCX


def test_extract_reads_docx_headings_paragraphs_and_tables_in_traditional_chinese(tmp_path):
    extracted = extract_bytes(tmp_path, "policy.docx", files.docx_bytes(policy_docx), "docx")
    assert extracted.title == "退貨政策"
    assert extracted.sections == [
        Section(
            text="退貨政策\n\n收到商品後七天內可以申請退貨。\n\n請保留發票與完整包裝！",
            page=None,
            heading="退貨政策",
        ),
        Section(text="項目 | 天數\n退貨 | 七天\n換貨 | 十四天", page=None, heading="退貨政策"),
        Section(text="表格之後的說明。", page=None, heading="退貨政策"),
        Section(text="運費\n\n訂單滿一千元免運費。", page=None, heading="運費"),
    ]


def test_extract_takes_docx_title_from_its_properties_first(tmp_path):
    def build(document):
        document.core_properties.title = "客服手冊"
        policy_docx(document)

    extracted = extract_bytes(tmp_path, "manual.docx", files.docx_bytes(build), "docx")
    assert extracted.title == "客服手冊"


def test_extract_treats_chinese_named_heading_styles_as_headings(tmp_path):
    def build(document):
        from docx.enum.style import WD_STYLE_TYPE

        document.styles.add_style("標題 1", WD_STYLE_TYPE.PARAGRAPH)
        document.add_paragraph("付款方式", style="標題 1")
        document.add_paragraph("接受信用卡與轉帳。")

    extracted = extract_bytes(tmp_path, "pay.docx", files.docx_bytes(build), "docx")
    assert extracted.sections == [
        Section(text="付款方式\n\n接受信用卡與轉帳。", page=None, heading="付款方式")
    ]


def test_extract_refuses_docx_zip_bomb_before_opening_it(tmp_path):
    # 300 MB of zeros deflate to about 300 KB: a ratio near 1000.
    bomb = files.zeros_zip_member_bytes(
        "word/document.xml",
        300 * 1024 * 1024,
        extra_members={"[Content_Types].xml": files.WORD_CONTENT_TYPE.encode()},
    )
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ExtractionError, match="would expand 1,0[0-9]{2} times when unpacked"):
        extract_bytes(tmp_path, "bomb.docx", bomb, "docx")


def test_extract_refuses_docx_whose_members_declare_a_huge_size(tmp_path):
    lying = files.with_declared_size(files.docx_bytes(policy_docx), "word/document.xml", 3_000_000_000)
    with pytest.raises(ExtractionError, match="would expand"):
        extract_bytes(tmp_path, "lying.docx", lying, "docx")


def test_extract_refuses_docx_larger_than_the_total_unpacked_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(extraction, "MAX_DOCX_UNCOMPRESSED_BYTES", 1024 * 1024)
    document = io.BytesIO(files.docx_bytes(policy_docx))
    with zipfile.ZipFile(document, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("word/media/image1.png", random.Random(2).randbytes(1200 * 1024))
    with pytest.raises(ExtractionError, match="would expand to more than 1 MB when unpacked"):
        extract_bytes(tmp_path, "big.docx", document.getvalue(), "docx")


def test_extract_refuses_truncated_docx(tmp_path):
    data = files.docx_bytes(policy_docx)
    with pytest.raises(ExtractionError, match="Word file is damaged or incomplete"):
        extract_bytes(tmp_path, "cut.docx", data[: len(data) // 2], "docx")


def test_extract_never_lets_a_library_error_escape_on_mangled_docx(tmp_path):
    original = files.docx_bytes(policy_docx)
    generator = random.Random(11)
    for attempt in range(6):
        data = bytearray(original)
        for _ in range(10):
            data[generator.randrange(len(data))] = generator.randrange(256)
        try:
            extract_bytes(tmp_path, f"mangled{attempt}.docx", bytes(data), "docx")
        except ExtractionError:
            pass


def test_extract_refuses_zip_without_a_word_document_as_docx(tmp_path):
    with pytest.raises(ExtractionError):
        extract_bytes(tmp_path, "other.docx", files.zip_bytes({"a.txt": b"hello"}), "docx")


# ---------------------------------------------------------------------------------------------
# Text, Markdown, HTML


def test_extract_decodes_big5_traditional_chinese_text(tmp_path):
    extracted = extract_bytes(tmp_path, "faq.txt", BIG5_TEXT.encode("big5"), "txt")
    assert extracted == Extracted(title=None, sections=[Section(text=BIG5_TEXT, page=None, heading=None)])


def test_extract_decodes_short_big5_text(tmp_path):
    # A few characters of Big5 are also valid UTF-16; such text must still come out as Big5.
    extracted = extract_bytes(tmp_path, "phone.txt", "客服電話：02-1234-5678。".encode("big5"), "txt")
    assert extracted.sections[0].text == "客服電話：02-1234-5678。"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom"])
def test_extract_decodes_unicode_text_with_or_without_bom(tmp_path, encoding):
    text = "退貨 Returns：七天內。"
    data = b"\xfe\xff" + text.encode("utf-16-be") if encoding == "utf-16-be-bom" else text.encode(encoding)
    extracted = extract_bytes(tmp_path, "faq.txt", data, "txt")
    assert extracted.sections[0].text == text


def test_extract_normalises_whitespace_and_keeps_full_width_punctuation(tmp_path):
    text = "  第一條\u3000\u3000退貨：七天內，可以申請！？；。 \r\nＡＢＣ  caf\u0065\u0301\t\tok \r\n\r\n\r\n\r\nNext paragraph.  \n"
    extracted = extract_bytes(tmp_path, "rules.txt", text.encode("utf-8"), "txt")
    # NFC composes é; NFKC would also have turned ＡＢＣ and the full-width punctuation into ASCII.
    assert (
        extracted.sections[0].text
        == "第一條 退貨：七天內，可以申請！？；。\nＡＢＣ café ok\n\nNext paragraph."
    )


def test_extract_refuses_binary_data_inside_a_text_file(tmp_path):
    data = b"Readable start.\n" * 5000 + b"\x00\x01\x02" * 100
    with pytest.raises(ExtractionError, match="could not be read as text"):
        extract_bytes(tmp_path, "notes.txt", data, "txt")


def test_extract_reads_markdown_sections_and_strips_markup(tmp_path):
    markdown = """---
title: "Help centre"
---
Intro with **bold**, _emphasis_, `code` and a [link](https://example.com/a).

# Returns

> Returns within *seven* days.

- one item
- snake_case_name stays

```python
# a comment, not a heading
print("hi")
```

Shipping
========

| Zone | Days |
| ---- | ---- |
| TW   | 2    |
"""
    extracted = extract_bytes(tmp_path, "help.md", markdown.encode(), "markdown")
    assert extracted.title == "Help centre"
    assert extracted.sections == [
        Section(text="Intro with bold, emphasis, code and a link.", page=None, heading=None),
        Section(
            text='Returns\n\nReturns within seven days.\n\n- one item\n- snake_case_name stays\n\n# a comment, not a heading\nprint("hi")',
            page=None,
            heading="Returns",
        ),
        Section(text="Shipping\n\n| Zone | Days |\n| TW | 2 |", page=None, heading="Shipping"),
    ]


def test_extract_takes_markdown_title_from_the_first_heading(tmp_path):
    extracted = extract_bytes(tmp_path, "faq.md", "# 常見問題\n\n內容。".encode(), "markdown")
    assert extracted.title == "常見問題"


def test_extract_reads_html_without_scripts_or_styles(tmp_path):
    page = """<!DOCTYPE html>
<html><head><title>Help &amp; support</title>
<style>body { color: red }</style><script>var tracking = "secret";</script></head>
<body>
<noscript>Enable JavaScript</noscript>
<template><p>Hidden template</p></template>
<p>Welcome   to the
help centre.</p>
<h2>Opening <em>hours</em></h2>
<ul><li>Weekdays 9–18</li><li>Weekends closed</li></ul>
<table><tr><th>Zone</th><th>Days</th></tr><tr><td>TW</td><td>2</td></tr></table>
<p>Line one<br>line two</p>
</body></html>"""
    extracted = extract_bytes(tmp_path, "help.html", page.encode(), "html")
    assert extracted.title == "Help & support"
    assert extracted.sections == [
        Section(text="Welcome to the help centre.", page=None, heading=None),
        Section(
            text="Opening hours\n\nWeekdays 9–18\n\nWeekends closed\n\nZone | Days\nTW | 2\n\nLine one\nline two",
            page=None,
            heading="Opening hours",
        ),
    ]
    assert "secret" not in str(extracted) and "JavaScript" not in str(extracted)


def test_extract_takes_html_title_from_the_first_h1_without_a_title_element(tmp_path):
    page = "<html><body><h1>退貨說明</h1><p>七天內。</p></body></html>"
    extracted = extract_bytes(tmp_path, "page.html", page.encode(), "html")
    assert extracted.title == "退貨說明"


def test_extract_decodes_big5_html_declaring_its_charset(tmp_path):
    page = '<html><head><meta charset="big5"><title>說明</title></head><body><p>客服電話。</p></body></html>'
    extracted = extract_bytes(tmp_path, "page.html", page.encode("big5"), "html")
    assert (extracted.title, extracted.sections[0].text) == ("說明", "客服電話。")


# ---------------------------------------------------------------------------------------------
# Limits and failures common to every kind


def test_extract_refuses_empty_file_with_no_text_message(tmp_path):
    with pytest.raises(ExtractionError, match="^No text was found in this document.$"):
        extract_bytes(tmp_path, "empty.txt", b"", "txt")


def test_extract_refuses_whitespace_only_markdown_as_empty(tmp_path):
    with pytest.raises(ExtractionError, match="No text was found"):
        extract_bytes(tmp_path, "blank.md", b"\n\n   \n\t\n", "markdown")


def test_extract_refuses_text_longer_than_max_characters(tmp_path):
    with pytest.raises(ExtractionError, match="more than 50 characters of text"):
        extract_bytes(tmp_path, "long.txt", b"word " * 100, "txt", max_characters=50)


def test_extract_counts_characters_across_pdf_pages(tmp_path):
    data = files.pdf_bytes(["a" * 30, "b" * 30])
    with pytest.raises(ExtractionError, match="more than 50 characters"):
        extract_bytes(tmp_path, "long.pdf", data, "pdf", max_characters=50)


def test_extract_gives_up_on_a_file_that_takes_too_long(tmp_path, monkeypatch):
    monkeypatch.setattr(extraction, "EXTRACTION_TIMEOUT_SECONDS", 0.001)
    monkeypatch.setattr(extraction, "OCR_MAX_EXTRA_SECONDS", 0)  # what a PDF may need for OCR
    with pytest.raises(ExtractionError, match="took longer than"):
        extract_bytes(tmp_path, "slow.pdf", files.pdf_bytes(["text"]), "pdf")


def test_extract_raises_file_not_found_for_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        extract(tmp_path / "gone.pdf", "pdf", max_characters=MAX_CHARACTERS)


def test_extract_accepts_a_path_given_as_a_string(tmp_path):
    path = write(tmp_path, "notes.txt", b"Hello.")
    assert extract(os.fspath(path), "txt", max_characters=MAX_CHARACTERS).sections[0].text == "Hello."


@pytest.mark.parametrize("kind", ["pdf", "docx"])
def test_extract_refuses_random_bytes_as_damaged(tmp_path, kind):
    data = random.Random(3).randbytes(4096)
    with pytest.raises(ExtractionError, match="damaged or incomplete"):
        extract_bytes(tmp_path, f"noise.{kind}", data, kind)
