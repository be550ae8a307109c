"""What every part of extraction shares: the result types, the errors and their messages."""

from dataclasses import dataclass


class ExtractionError(Exception):
    """Extraction failed; str(error) is a sentence a tenant admin understands."""


class UnsupportedFileType(Exception):
    """The bytes are not PDF, DOCX, TXT, Markdown, HTML, PNG or JPEG; str() says what was detected."""


KINDS = ("pdf", "docx", "txt", "markdown", "html", "png", "jpeg")
# Kinds whose text may come from text recognition (OCR): PDF pages without a text layer, images.
OCR_KINDS = frozenset({"pdf", "png", "jpeg"})
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain",
    "markdown": "text/markdown",
    "html": "text/html",
    "png": "image/png",
    "jpeg": "image/jpeg",
}

MAX_TITLE_CHARACTERS = 300  # Document.title's length; anything longer is not a title

UPLOAD_ADVICE = "Upload PDF, DOCX, TXT, Markdown, HTML, PNG or JPEG."
NO_TEXT = "No text was found in this document."
SCANNED = (
    "This PDF has no text layer, and text recognition (OCR) found no text on its scanned pages. "
    "Upload a sharper scan or a PDF with selectable text."
)
NO_TEXT_IN_IMAGE = (
    "Text recognition (OCR) found no text in this image. Upload a sharper picture of the page, "
    "or the document itself."
)
DAMAGED = {
    "pdf": "This PDF is damaged or incomplete and cannot be read. Open it, save or export it as a "
    "new PDF, and upload that.",
    "docx": "This Word file is damaged or incomplete and cannot be read. Open it in Word, save it "
    "again as DOCX, and upload that.",
    "txt": "This file could not be read as text. Save it as UTF-8 text and upload it again.",
    "markdown": "This file could not be read as text. Save it as UTF-8 text and upload it again.",
    "html": "This HTML file could not be read. Save it as UTF-8 and upload it again.",
    "png": "This image is damaged or incomplete and cannot be read. Save it again as PNG or JPEG "
    "and upload that.",
    "jpeg": "This image is damaged or incomplete and cannot be read. Save it again as PNG or JPEG "
    "and upload that.",
}
TOO_COMPLEX = (
    "This file needs more memory or time to read than one document may use; it may be damaged or "
    "unusually complex. Split it into smaller documents or save it again, and upload those."
)


@dataclass(frozen=True)
class Section:
    """One block of a document's text. The sections of a document, in order, hold its text once:
    a heading's section starts with the heading's own text."""

    text: str  # normalised text of one block (a PDF page, a heading's section, a table, ...)
    page: int | None  # 1-based page for PDFs, else None
    heading: str | None  # nearest heading, if any


@dataclass(frozen=True)
class Extracted:
    title: str | None  # from the document's metadata/first heading when there is one
    sections: list[Section]
    ocr_pages: int = 0  # pages (an image counts one) whose text came from text recognition
    ocr_confidence: float | None = None  # the recogniser's mean confidence over their characters


@dataclass(frozen=True)
class Limits:
    """What one extraction may use; passed to the child process, so read at call time."""

    max_characters: int
    max_pdf_pages: int
    max_docx_uncompressed_bytes: int
    max_docx_compression_ratio: int
    docx_ratio_check_min_bytes: int
    max_docx_members: int
    memory_bytes: int
    # Text recognition: at most this many pages of one document (0: no limit), each allowed this
    # many seconds on average, in a process whose address space may grow to ocr_memory_bytes
    # once the file has been parsed (the models need ~1 GiB more than the parsers).
    max_ocr_pages: int = 0
    ocr_seconds_per_page: float = 60.0
    ocr_memory_bytes: int = 4 * 1024**3
    ocr_threads: int = 0  # ONNX Runtime's intra-op threads; 0: one per core
    max_image_pixels: int = 60_000_000  # a 7,000 x 8,500 scan; more is a decompression bomb


def too_many_ocr_pages(pages: int, limit: int) -> str:
    """The failure for a document with more pages to recognise than the plan allows, in English
    and in Traditional Chinese (the message is stored on the document, in no one's language)."""
    return (
        f"This PDF has {pages:,} scanned pages without a text layer; your plan reads at most "
        f"{limit:,} pages of one document by text recognition (OCR). Split it into files of at "
        f"most {limit:,} pages, or upload a PDF with selectable text. "
        f"此 PDF 有 {pages:,} 頁沒有文字層的掃描頁面；您的方案每份文件最多以文字辨識（OCR）讀取 "
        f"{limit:,} 頁。請分割為每份不超過 {limit:,} 頁的檔案，或上傳含可選取文字的 PDF。"
    )


def ocr_too_slow(seconds_per_page: float) -> str:
    return (
        f"Text recognition (OCR) of the scanned pages took longer than the {seconds_per_page:g} "
        "seconds a page allowed. Upload a smaller or sharper scan, or a PDF with selectable text. "
        f"掃描頁面的文字辨識（OCR）超過每頁 {seconds_per_page:g} 秒的上限。請上傳較小或較清晰的掃描檔，"
        "或含可選取文字的 PDF。"
    )
