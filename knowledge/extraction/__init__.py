"""Text extraction from uploaded documents: PDF, DOCX, TXT, Markdown and HTML, and text recognition
(OCR) of scanned PDF pages and of PNG and JPEG images.

Two entry points. `detect_kind` names the type of an upload from its first bytes, before anything
is stored. `extract` reads a stored file into normalised sections for the chunker.

Uploaded files are untrusted input for parsers written for friendly files, so `extract` parses in
a child process with a time limit and a memory limit (`sandbox`): a PDF that sends pypdf into a
loop, or a document that expands to gigabytes, costs one child process, never a stuck or killed
Celery worker (a worker killed by its hard time limit would have the task redelivered, forever,
since ingestion is `acks_late` with `reject_on_worker_lost`). Every failure ends as an
`ExtractionError` whose text is a sentence a tenant admin can act on.

The package: `detection` (the kind of an upload), `decoding` (encodings, Big5, normalisation, the
section builder), one reader per format (`pdf`, `word`, `plain_text`, `markdown`, `html_page`, `image`),
`ocr` (text recognition of page images),
`reader` (the dispatch, in this process) and `sandbox` (the child process). It imports nothing
from Django or the rest of the project: the child process imports it alone.
"""

import pathlib

from knowledge.extraction import sandbox
from knowledge.extraction.base import (
    CONTENT_TYPES,
    KINDS,
    OCR_KINDS,
    Extracted,
    ExtractionError,
    Limits,
    Section,
    UnsupportedFileType,
)
from knowledge.extraction.detection import detect_kind
from knowledge.extraction.reader import extract_in_process

__all__ = [
    "CONTENT_TYPES",
    "KINDS",
    "OCR_KINDS",
    "Extracted",
    "ExtractionError",
    "Section",
    "UnsupportedFileType",
    "detect_kind",
    "extract",
]

# Limits. Module-level so that tests (and an operator, if ever needed) can change them.
EXTRACTION_TIMEOUT_SECONDS = 600  # a 5,000-page PDF takes a few minutes; the task's soft limit is 30
EXTRACTION_MEMORY_BYTES = 2 * 1024**3  # address space of the child process
MAX_PDF_PAGES = 5000
MAX_DOCX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_DOCX_COMPRESSION_RATIO = 200  # Word's XML compresses 5–30×; a bomb's zeros compress ~1000×
DOCX_RATIO_CHECK_MIN_BYTES = 1024 * 1024  # below this a member is harmless whatever its ratio
MAX_DOCX_MEMBERS = 10_000  # Word files have tens of parts, a few hundred with many images
# Text recognition (OCR). The plan bounds the pages of one document and the seconds a page may
# take; MAX_OCR_PAGES caps a plan without a page limit. The child process's memory limit rises
# from EXTRACTION_MEMORY_BYTES to OCR_MEMORY_BYTES once the file is parsed: the ONNX models and
# their buffers need ~1.2 GiB of address space beyond the parsers (measured peak: see
# docs/retrieval.md), so the parsers keep the tighter limit and only the recogniser has more.
MAX_OCR_PAGES = 1000
OCR_MEMORY_BYTES = 4 * 1024**3
OCR_THREADS = 0  # ONNX Runtime's threads in the child; 0: one per core
OCR_MODEL_LOAD_SECONDS = 60  # what the parent's time limit allows beyond the pages for loading
# At most this much longer than EXTRACTION_TIMEOUT_SECONDS for text recognition: the ingestion
# task's soft time limit is 30 minutes, and a scan must be read within it (about 300 pages at
# 5 s a page; a longer scan fails with the time-limit message and should be split).
OCR_MAX_EXTRA_SECONDS = 20 * 60

# Plain text is only decoded and normalised by linear code: nothing a hostile file can send into
# a loop or a memory blow-up, so it skips the child process (about 0.2 s a document, which
# dominated the ingestion of small text files). Markdown keeps the child: its inline regexes
# can go quadratic on a pathological line.
IN_PROCESS_KINDS = frozenset({"txt"})


def extract(
    path: pathlib.Path | str,
    kind: str,
    *,
    max_characters: int,
    max_ocr_pages: int = 0,
    ocr_seconds_per_page: float = 60.0,
) -> Extracted:
    """Text of a stored file, read in a child process with a time and memory limit (plain text,
    which cannot hang a parser, in this process).

    Raises ExtractionError with a readable message for: encrypted PDFs that do not open with an
    empty password, corrupt or truncated files, image-only PDFs ('looks scanned'), DOCX
    decompression bombs (checked on the zip's declared sizes before python-docx opens it),
    documents whose text exceeds max_characters, empty documents ('no text found'), and files
    that take more time or memory than allowed. Pages of a PDF without a text layer, and PNG and
    JPEG images, are read by text recognition (OCR): at most `max_ocr_pages` pages (0: up to
    MAX_OCR_PAGES), `ocr_seconds_per_page` seconds a page on average; more fails with a message
    in English and Traditional Chinese. Raises FileNotFoundError when the file is missing. No
    library exception escapes."""
    if kind not in KINDS:
        raise ValueError(f"Unknown document kind {kind!r}; expected one of {KINDS}.")
    path = pathlib.Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"No stored file at {path}")
    limits = Limits(
        max_characters=max_characters,
        max_pdf_pages=MAX_PDF_PAGES,
        max_docx_uncompressed_bytes=MAX_DOCX_UNCOMPRESSED_BYTES,
        max_docx_compression_ratio=MAX_DOCX_COMPRESSION_RATIO,
        docx_ratio_check_min_bytes=DOCX_RATIO_CHECK_MIN_BYTES,
        max_docx_members=MAX_DOCX_MEMBERS,
        memory_bytes=EXTRACTION_MEMORY_BYTES,
        max_ocr_pages=min(max_ocr_pages, MAX_OCR_PAGES) if max_ocr_pages else MAX_OCR_PAGES,
        ocr_seconds_per_page=ocr_seconds_per_page,
        ocr_memory_bytes=OCR_MEMORY_BYTES,
        ocr_threads=OCR_THREADS,
    )
    if kind in IN_PROCESS_KINDS:
        return extract_in_process(path, kind, limits)
    timeout = EXTRACTION_TIMEOUT_SECONDS
    if kind in OCR_KINDS:
        # The child enforces the per-page budget itself; this is the backstop that a recogniser
        # stuck inside one page cannot pass.
        pages = 1 if kind != "pdf" else limits.max_ocr_pages
        timeout += min(OCR_MODEL_LOAD_SECONDS + pages * ocr_seconds_per_page, OCR_MAX_EXTRA_SECONDS)
    return sandbox.extract_in_child(path, kind, limits, timeout_seconds=timeout)
