"""What every part of extraction shares: the result types, the errors and their messages."""

from dataclasses import dataclass


class ExtractionError(Exception):
    """Extraction failed; str(error) is a sentence a tenant admin understands."""


class UnsupportedFileType(Exception):
    """The bytes are not PDF, DOCX, TXT, Markdown or HTML; str() says what was detected."""


KINDS = ("pdf", "docx", "txt", "markdown", "html")
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain",
    "markdown": "text/markdown",
    "html": "text/html",
}

MAX_TITLE_CHARACTERS = 300  # Document.title's length; anything longer is not a title

UPLOAD_ADVICE = "Upload PDF, DOCX, TXT, Markdown or HTML."
NO_TEXT = "No text was found in this document."
SCANNED = "This PDF has no text layer; it looks scanned. Upload a PDF with selectable text."
DAMAGED = {
    "pdf": "This PDF is damaged or incomplete and cannot be read. Open it, save or export it as a "
    "new PDF, and upload that.",
    "docx": "This Word file is damaged or incomplete and cannot be read. Open it in Word, save it "
    "again as DOCX, and upload that.",
    "txt": "This file could not be read as text. Save it as UTF-8 text and upload it again.",
    "markdown": "This file could not be read as text. Save it as UTF-8 text and upload it again.",
    "html": "This HTML file could not be read. Save it as UTF-8 and upload it again.",
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
