"""PDF: text layer page by page, with pypdf."""

import logging
import pathlib

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from knowledge.extraction.base import DAMAGED, SCANNED, Extracted, ExtractionError, Limits
from knowledge.extraction.decoding import SectionBuilder, title_from

logger = logging.getLogger(__name__)


def extract_pdf(path: pathlib.Path, limits: Limits) -> Extracted:
    try:
        reader = PdfReader(path, strict=False)
    except PdfReadError as error:
        raise ExtractionError(DAMAGED["pdf"]) from error
    if reader.is_encrypted:
        # Many PDFs are "encrypted" only to restrict printing or copying: an empty user password
        # opens them, as any PDF viewer does without asking.
        try:
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except (DependencyError, NotImplementedError, PdfReadError) as error:
            raise ExtractionError(
                "This PDF is protected with an encryption that cannot be opened here. Remove the "
                "protection (for example print it to a new PDF) and upload it again."
            ) from error
        if not opened:
            raise ExtractionError(
                "This PDF is protected by a password. Remove the password (for example print it to "
                "a new PDF) and upload it again."
            )
    try:
        page_count = len(reader.pages)
    except FileNotDecryptedError as error:
        raise ExtractionError(
            "This PDF is protected by a password. Remove the password and upload it again."
        ) from error
    if page_count == 0:
        raise ExtractionError(
            "This PDF has no pages; it may be damaged. Export it again and upload the new file."
        )
    if page_count > limits.max_pdf_pages:
        raise ExtractionError(
            f"This PDF has {page_count:,} pages, more than the {limits.max_pdf_pages:,} one document may "
            "have. Split it into smaller files and upload those."
        )

    sections = SectionBuilder(max_characters=limits.max_characters)
    unreadable_pages = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text()
        except (MemoryError, RecursionError):
            raise
        except Exception:
            # One broken page should not cost the other pages of a long manual.
            logger.exception("page %s of %s could not be read", number, path)
            unreadable_pages += 1
            continue
        sections.add_page(text, number)
    if not sections.sections:
        raise ExtractionError(DAMAGED["pdf"] if unreadable_pages == page_count else SCANNED)
    return Extracted(title=_pdf_title(reader), sections=sections.sections)


def _pdf_title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        return title_from(str(metadata.title)) if metadata is not None and metadata.title else None
    except (PdfReadError, ValueError, TypeError, KeyError):
        return None  # a broken /Info dictionary costs the title, not the text
