"""PDF: text layer page by page, with pypdf; pages without one rendered with PDFium and read by
text recognition (`ocr`)."""

import logging
import pathlib
import time
from itertools import pairwise

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from knowledge.chunking import ends_sentence, first_sentence
from knowledge.extraction import ocr
from knowledge.extraction.base import (
    DAMAGED,
    SCANNED,
    Extracted,
    ExtractionError,
    Limits,
    ocr_too_slow,
    too_many_ocr_pages,
)
from knowledge.extraction.decoding import SectionBuilder, is_wide, normalise, title_from

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

    texts: list[str | None] = []  # None: the page could not be read
    for number, page in enumerate(reader.pages, start=1):
        try:
            texts.append(page.extract_text())
        except (MemoryError, RecursionError):
            raise
        except Exception:
            # One broken page should not cost the other pages of a long manual.
            logger.exception("page %s of %s could not be read", number, path)
            texts.append(None)
    unreadable_pages = sum(1 for text in texts if text is None)
    if unreadable_pages == page_count:
        raise ExtractionError(DAMAGED["pdf"])

    # Pages without a text layer (scans, text drawn as outlines) are read by text recognition.
    without_text = [index for index, text in enumerate(texts) if text is not None and not normalise(text)]
    recognised: dict[int, ocr.Recognised] = {}
    if without_text:
        recognised = _recognise_pages(path, without_text, limits)

    for index in recognised:
        texts[index] = recognised[index].text
    sections = SectionBuilder(max_characters=limits.max_characters)
    for index, text in enumerate(_complete_cut_sentences(texts)):
        if text is not None:
            sections.add_page(text, index + 1)
    if not sections.sections:
        raise ExtractionError(SCANNED)
    read = [result for result in recognised.values() if result.characters]
    characters = sum(result.characters for result in read)
    return Extracted(
        title=_pdf_title(reader),
        sections=sections.sections,
        ocr_pages=len(read),
        ocr_confidence=(
            sum(result.confidence * result.characters for result in read) / characters if characters else None
        ),
    )


# The most of the next page's first sentence a page that ends inside it is given.
CUT_SENTENCE_LIMIT = 300


def _complete_cut_sentences(texts: list[str | None]) -> list[str | None]:
    """Each page that ends inside a sentence with the rest of that sentence (the next page's
    first, up to CUT_SENTENCE_LIMIT characters) added: a chunk never crosses a page, so a
    sentence a page break cuts would be whole in no passage, nor would an answer or a word cut
    with it. The next page keeps its text (the sentence is cited where it starts, and found from
    either page)."""
    completed = list(texts)
    for index, (text, following) in enumerate(pairwise(texts)):
        text, following = normalise(text or ""), normalise(following or "")
        if not text or not following or ends_sentence(text):
            continue
        rest = first_sentence(following, limit=CUT_SENTENCE_LIMIT)
        if rest:
            gap = "" if is_wide(text[-1]) or is_wide(rest[0]) else " "
            completed[index] = text + gap + rest
    return completed


def _recognise_pages(path: pathlib.Path, indexes: list[int], limits: Limits) -> dict[int, "ocr.Recognised"]:
    """Text recognition of the given pages (0-based), within the plan's page and time limits."""
    if limits.max_ocr_pages and len(indexes) > limits.max_ocr_pages:
        raise ExtractionError(too_many_ocr_pages(len(indexes), limits.max_ocr_pages))
    ocr.allow_memory(limits.ocr_memory_bytes)
    import pypdfium2  # noqa: PLC0415 - only scanned PDFs need the renderer

    try:
        document = pypdfium2.PdfDocument(str(path))
    except pypdfium2.PdfiumError as error:
        raise ExtractionError(DAMAGED["pdf"]) from error
    budget = limits.ocr_seconds_per_page * len(indexes)
    started = time.monotonic()
    recognised = {}
    try:
        for index in indexes:
            if index >= len(document):
                continue
            recognised[index] = ocr.recognise(
                ocr.render_pdf_page(document, index), threads=limits.ocr_threads
            )
            if time.monotonic() - started > budget:
                raise ExtractionError(ocr_too_slow(limits.ocr_seconds_per_page))
    finally:
        document.close()
    return recognised


def _pdf_title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        return title_from(str(metadata.title)) if metadata is not None and metadata.title else None
    except (PdfReadError, ValueError, TypeError, KeyError):
        return None  # a broken /Info dictionary costs the title, not the text
