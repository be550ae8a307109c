"""Extraction in the current process: one reader per kind; every failure becomes an
ExtractionError (or FileNotFoundError)."""

import logging
import pathlib
from collections.abc import Callable

from knowledge.extraction.base import DAMAGED, NO_TEXT, TOO_COMPLEX, Extracted, ExtractionError, Limits
from knowledge.extraction.html_page import extract_html
from knowledge.extraction.image import extract_image
from knowledge.extraction.markdown import extract_markdown
from knowledge.extraction.pdf import extract_pdf
from knowledge.extraction.plain_text import extract_plain_text
from knowledge.extraction.word import extract_docx

logger = logging.getLogger(__name__)


def extract_in_process(path: pathlib.Path, kind: str, limits: Limits) -> Extracted:
    """The extraction itself, in the current process; every failure becomes an ExtractionError
    (or FileNotFoundError)."""
    extractors: dict[str, Callable[[pathlib.Path, Limits], Extracted]] = {
        "pdf": extract_pdf,
        "docx": extract_docx,
        "txt": extract_plain_text,
        "markdown": extract_markdown,
        "html": extract_html,
        "png": lambda path, limits: extract_image(path, "png", limits),
        "jpeg": lambda path, limits: extract_image(path, "jpeg", limits),
    }
    try:
        extracted = extractors[kind](path, limits)
    except (ExtractionError, FileNotFoundError):
        raise
    except (MemoryError, RecursionError) as error:
        raise ExtractionError(TOO_COMPLEX) from error
    except Exception as error:
        # Parsers of malformed files raise anything (KeyError, struct.error, zlib.error, ...).
        logger.exception("could not extract %s as %s", path, kind)
        raise ExtractionError(DAMAGED[kind]) from error
    if not extracted.sections:
        raise ExtractionError(NO_TEXT)
    return extracted
