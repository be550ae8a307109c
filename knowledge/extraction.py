"""Text extraction from uploaded documents: PDF, DOCX, TXT, Markdown and HTML.

Two entry points. `detect_kind` names the type of an upload from its first bytes, before anything
is stored. `extract` reads a stored file into normalised sections for the chunker.

Uploaded files are untrusted input for parsers written for friendly files, so `extract` parses in
a child process with a time limit and a memory limit: a PDF that sends pypdf into a loop, or a
document that expands to gigabytes, costs one child process, never a stuck or killed Celery
worker (a worker killed by its hard time limit would have the task redelivered, forever, since
ingestion is `acks_late` with `reject_on_worker_lost`). Every failure ends as an
`ExtractionError` whose text is a sentence a tenant admin can act on.

This module imports nothing from Django or the project: the child process runs this very file
as a script.
"""

import codecs
import html.parser
import io
import json
import logging
import pathlib
import re
import struct
import subprocess  # noqa: S404 - runs this module's own file with the current interpreter, no shell
import sys
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import charset_normalizer
import docx
import filetype
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.ns import qn
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

# The child runs this file as __main__; log under the module's real name either way.
logger = logging.getLogger("knowledge.extraction")


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

# Limits. Module-level so that tests (and an operator, if ever needed) can change them.
EXTRACTION_TIMEOUT_SECONDS = 600  # a 5,000-page PDF takes a few minutes; the task's soft limit is 30
EXTRACTION_MEMORY_BYTES = 2 * 1024**3  # address space of the child process
MAX_PDF_PAGES = 5000
MAX_DOCX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_DOCX_COMPRESSION_RATIO = 200  # Word's XML compresses 5–30×; a bomb's zeros compress ~1000×
DOCX_RATIO_CHECK_MIN_BYTES = 1024 * 1024  # below this a member is harmless whatever its ratio
MAX_DOCX_MEMBERS = 10_000  # Word files have tens of parts, a few hundred with many images
MAX_TITLE_CHARACTERS = 300  # Document.title's length; anything longer is not a title

_UPLOAD_ADVICE = "Upload PDF, DOCX, TXT, Markdown or HTML."
_NO_TEXT = "No text was found in this document."
_SCANNED = "This PDF has no text layer; it looks scanned. Upload a PDF with selectable text."
_DAMAGED = {
    "pdf": "This PDF is damaged or incomplete and cannot be read. Open it, save or export it as a "
    "new PDF, and upload that.",
    "docx": "This Word file is damaged or incomplete and cannot be read. Open it in Word, save it "
    "again as DOCX, and upload that.",
    "txt": "This file could not be read as text. Save it as UTF-8 text and upload it again.",
    "markdown": "This file could not be read as text. Save it as UTF-8 text and upload it again.",
    "html": "This HTML file could not be read. Save it as UTF-8 and upload it again.",
}
_TOO_COMPLEX = (
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
class _Limits:
    """What one extraction may use; passed to the child process, so read at call time."""

    max_characters: int
    max_pdf_pages: int = MAX_PDF_PAGES
    max_docx_uncompressed_bytes: int = MAX_DOCX_UNCOMPRESSED_BYTES
    max_docx_compression_ratio: int = MAX_DOCX_COMPRESSION_RATIO
    docx_ratio_check_min_bytes: int = DOCX_RATIO_CHECK_MIN_BYTES
    max_docx_members: int = MAX_DOCX_MEMBERS
    memory_bytes: int = EXTRACTION_MEMORY_BYTES


# ---------------------------------------------------------------------------------------------
# Detection


_PDF_SIGNATURE = b"%PDF-"
_ZIP_SIGNATURE = b"PK\x03\x04"
_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MARKDOWN_SUFFIXES = frozenset({"md", "markdown", "mdown", "mkd", "mkdn"})
_TEXT_SUFFIXES = frozenset({"txt", "text"})

_EXECUTABLE_TYPES = frozenset(
    {"application/x-executable", "application/x-msdownload", "application/wasm", "application/x-elf"}
)
_ARCHIVE_TYPES = frozenset(
    {
        "application/zip",
        "application/x-tar",
        "application/gzip",
        "application/x-bzip2",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/vnd.rar",
        "application/x-xz",
        "application/zstd",
        "application/x-lzip",
        "application/x-lz4",
        "application/x-compress",
        "application/x-lzop",
        "application/x-brotli",
        "application/vnd.ms-cab-compressed",
        "application/x-rpm",
        "application/x-deb",
        "application/x-unix-archive",
    }
)
# Formats people mean as documents: say what to turn them into instead.
_SAVE_AS_DOCX = "Open it in Word, save it as DOCX, and upload that."
_EXPORT_AS_PDF = "Export it as PDF and upload that."
_CONVERTIBLE_TYPES = {
    "application/msword": ("a Word 97–2003 document", _SAVE_AS_DOCX),
    "application/vnd.ms-excel": ("an Excel 97–2003 spreadsheet", _EXPORT_AS_PDF),
    "application/vnd.ms-powerpoint": ("a PowerPoint 97–2003 presentation", _EXPORT_AS_PDF),
    # Word 97–2003 files and password-protected Office files share this container.
    "application/x-ole-storage": (
        "a Word 97–2003 document or a password-protected Office file",
        "Open it in Word, remove any password, save it as DOCX, and upload that.",
    ),
    "application/vnd.ms-word.document.macroEnabled.12": (
        "a macro-enabled Word document (.docm)",
        _SAVE_AS_DOCX,
    ),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template": (
        "a Word template (.dotx)",
        _SAVE_AS_DOCX,
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (
        "an Excel spreadsheet",
        _EXPORT_AS_PDF,
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "a PowerPoint presentation",
        _EXPORT_AS_PDF,
    ),
    "application/vnd.oasis.opendocument.text": ("an OpenDocument text", "Save it as DOCX and upload that."),
    "application/vnd.oasis.opendocument.spreadsheet": ("an OpenDocument spreadsheet", _EXPORT_AS_PDF),
    "application/vnd.oasis.opendocument.presentation": ("an OpenDocument presentation", _EXPORT_AS_PDF),
    "application/rtf": ("a Rich Text Format file", _SAVE_AS_DOCX),
    "application/postscript": ("a PostScript file", "Convert it to PDF and upload that."),
    "application/epub+zip": ("an e-book (EPUB)", _EXPORT_AS_PDF),
}
# What [Content_Types].xml declares for the main part of each Office Open XML package.
_OOXML_MAIN_PARTS = {
    b"wordprocessingml.document.main+xml": "docx",
    b"ms-word.document.macroEnabled.main+xml": "application/vnd.ms-word.document.macroEnabled.12",
    b"wordprocessingml.template.main+xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    b"spreadsheetml.sheet.main+xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    b"presentationml.presentation.main+xml": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}

_HTML_PREAMBLE = re.compile(r"(?:\s+|<!--.*?-->|<\?xml[^>]*>)*", re.DOTALL)
_HTML_DOCUMENT = re.compile(r"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_HTML_TAG = re.compile(
    r"<(?:head|body|title|meta|div|p|h[1-6]|table|ul|ol|section|article|header|nav|main|span|a|br"
    r"|link|script|style)[\s/>]",
    re.IGNORECASE,
)
_MARKDOWN_BLOCK = re.compile(r"^ {0,3}(?:#{1,6}[ \t]+\S|```|~~~)", re.MULTILINE)
_MARKDOWN_LINK = re.compile(r"\[[^\]\n]+\]\([^)\s]+\)")


def detect_kind(head: bytes, filename: str = "") -> str:
    """Kind of a file from its first bytes (pass at least the first 64 KiB; the whole file when
    smaller). The type comes from the bytes, never from the name: an executable renamed .pdf
    raises UnsupportedFileType. The name only tells Markdown from plain text among text files
    (.md/.markdown), or content sniffing when the name says nothing (lines starting with '# ', ...)."""
    if head.startswith(_PDF_SIGNATURE):
        return "pdf"
    if head.startswith(_ZIP_SIGNATURE):
        return _zip_kind(head)
    if head.startswith(_OLE2_SIGNATURE):
        guess = filetype.guess(head)
        mime = (
            guess.mime
            if guess is not None and guess.mime in _CONVERTIBLE_TYPES
            else "application/x-ole-storage"
        )
        raise _unsupported(mime)
    text = _decode(head, complete=False)
    guess = filetype.guess(head)
    if text is None:
        raise _unsupported(guess.mime if guess is not None else None)
    # A signature made of printable characters ("MZ", "BM", "ID3") can start a real text file;
    # only text-based formats that are not documents of ours are refused once the bytes are text.
    if guess is not None and guess.mime in ("application/rtf", "application/postscript"):
        raise _unsupported(guess.mime)
    return _text_kind(text, filename)


def _unsupported(mime: str | None) -> UnsupportedFileType:
    if mime is None:
        return UnsupportedFileType(
            f"This file is binary data of an unknown type, not a document. {_UPLOAD_ADVICE}"
        )
    if mime in _CONVERTIBLE_TYPES:
        what, advice = _CONVERTIBLE_TYPES[mime]
        return UnsupportedFileType(
            f"This file looks like {what} ({mime}), which cannot be read here. {advice}"
        )
    if mime in _EXECUTABLE_TYPES:
        what = "an executable"
    elif mime in _ARCHIVE_TYPES:
        what = "an archive"
    elif mime.startswith("image/"):
        what = "an image"
    elif mime.startswith("audio/"):
        what = "an audio file"
    elif mime.startswith("video/"):
        what = "a video"
    elif mime.startswith("font/") or mime.startswith("application/font"):
        what = "a font"
    elif mime == "application/x-sqlite3":
        what = "a database"
    else:
        what = "binary data"
    return UnsupportedFileType(f"This file looks like {what} ({mime}), not a document. {_UPLOAD_ADVICE}")


def _zip_kind(head: bytes) -> str:
    """The kind of a zip: "docx" for a Word document, else UnsupportedFileType naming what it is."""
    names, content_types = _zip_entries(head)
    for marker, kind_or_mime in _OOXML_MAIN_PARTS.items():
        if marker in content_types:
            if kind_or_mime == "docx":
                return "docx"
            raise _unsupported(kind_or_mime)
    if "word/document.xml" in names:
        return "docx"
    if "mimetype" in names:
        guess = filetype.guess(head)  # OpenDocument and EPUB name themselves in a first "mimetype" member
        if guess is not None:
            raise _unsupported(guess.mime)
    raise _unsupported("application/zip")


def _zip_entries(head: bytes) -> tuple[set[str], bytes]:
    """Member names of a zip and the text of its [Content_Types].xml, from as much of the zip as
    `head` holds. The central directory sits at the end of the file, beyond a 64 KiB head, so the
    local headers are walked from the start; Word writes [Content_Types].xml first."""
    try:
        with zipfile.ZipFile(io.BytesIO(head)) as archive:  # the whole file when it is small
            names = set(archive.namelist())
            if (
                "[Content_Types].xml" in names
                and archive.getinfo("[Content_Types].xml").file_size < 1024 * 1024
            ):
                return names, archive.read("[Content_Types].xml")
            return names, b""
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error):
        pass

    names: set[str] = set()
    content_types = b""
    position = 0
    while position + 30 <= len(head) and head.startswith(_ZIP_SIGNATURE, position):
        # Local file header: signature, version, flags, method, time, date, CRC, compressed size,
        # uncompressed size, name length, extra field length; then the name, extra field, data.
        _version, flags, method, _time, _date, _crc, compressed_size, _size, name_length, extra_length = (
            struct.unpack_from("<HHHHHIIIHH", head, position + 4)
        )
        name = head[position + 30 : position + 30 + name_length].decode("utf-8", "replace")
        names.add(name)
        data_start = position + 30 + name_length + extra_length
        sizes_known = not flags & 0x08  # bit 3: sizes come in a descriptor after the data
        if name == "[Content_Types].xml" and sizes_known:
            content_types = _inflate_member(head[data_start : data_start + compressed_size], method)
        if sizes_known:
            position = data_start + compressed_size
        else:
            position = head.find(_ZIP_SIGNATURE, data_start)
            if position == -1:
                break
    return names, content_types


def _inflate_member(data: bytes, method: int) -> bytes:
    if method == zipfile.ZIP_STORED:
        return data
    if method == zipfile.ZIP_DEFLATED:
        try:
            return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, 1024 * 1024)
        except zlib.error:
            return b""
    return b""


def _suffix(filename: str) -> str:
    basename = re.split(r"[\\/]", filename)[-1]
    return basename.rpartition(".")[2].lower() if "." in basename else ""


def _text_kind(text: str, filename: str) -> str:
    suffix = _suffix(filename)
    named_markdown = suffix in _MARKDOWN_SUFFIXES
    # A README.md may open with <p align="center">: only a full HTML document outweighs the name.
    if _looks_like_html(text, documents_only=named_markdown):
        return "html"
    if named_markdown:
        return "markdown"
    if suffix in _TEXT_SUFFIXES:
        return "txt"
    return "markdown" if _looks_like_markdown(text) else "txt"


def _looks_like_html(text: str, *, documents_only: bool) -> bool:
    start = text[:4096].lstrip("\ufeff")
    start = start[_HTML_PREAMBLE.match(start).end() :]
    if _HTML_DOCUMENT.match(start):
        return True
    return not documents_only and start.startswith("<") and _HTML_TAG.search(start) is not None


def _looks_like_markdown(text: str) -> bool:
    return _MARKDOWN_BLOCK.search(text) is not None or len(_MARKDOWN_LINK.findall(text[: 64 * 1024])) >= 2


# ---------------------------------------------------------------------------------------------
# Decoding and normalisation

# UTF-32 first: its little-endian BOM starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Without a BOM, UTF-16 of CJK text is indistinguishable from a two-byte legacy encoding, and
# charset-normalizer would call a short Big5 file UTF-16; such files are not supported.
_GUESS_EXCLUDED = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le", "utf_7"]
# Decode with Microsoft's supersets, which Taiwanese files are really written in (CP950 adds
# the euro sign and the ETEN characters to Big5).
_WIDER_ENCODINGS = {"big5": "cp950", "gb2312": "gb18030", "gbk": "gb18030"}
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x19\x1c-\x1f\x7f]")
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._-]+)""", re.IGNORECASE)

_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028]")
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u200b\u2060\ufeff\ufffe\uffff]")
_HORIZONTAL_SPACE = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def _decode(data: bytes, *, complete: bool, declared: str | None = None) -> str | None:
    """Unicode text of `data`, or None when the bytes are not text. With `complete` False the
    bytes are the head of a longer file and may end inside a character."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = _decode_strictly(data[len(bom) :], encoding, complete=complete)
            break
    else:
        if b"\x00" in data:
            return None
        text = _decode_strictly(data, "utf-8", complete=complete)
        if text is None and declared:
            text = _decode_strictly(data, _WIDER_ENCODINGS.get(declared.lower(), declared), complete=complete)
        if text is None:
            text = _guess_and_decode(data, complete=complete)
    return None if text is None or _has_control_characters(text) else text


def _has_control_characters(text: str) -> bool:
    """Binary data that happens to decode has control characters all over; text has at most a
    stray one (a form feed, a DOS end-of-file mark)."""
    sample = text[: 64 * 1024]
    return len(_CONTROL_CHARACTERS.findall(sample)) > len(sample) // 100


def _decode_strictly(data: bytes, encoding: str, *, complete: bool) -> str | None:
    try:
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        return decoder.decode(data, final=complete)
    except (UnicodeDecodeError, LookupError):
        return None


def _guess_and_decode(data: bytes, *, complete: bool) -> str | None:
    if not complete:
        # Cut after the last ASCII byte: in the legacy CJK encodings (Big5, GBK, Shift_JIS, EUC)
        # a byte below 0x80 always ends a character, and charset-normalizer rejects an encoding
        # when the last character of the sample is cut in half.
        for end in range(len(data), max(len(data) - 8, 0), -1):
            if data[end - 1] < 0x80:
                data = data[:end]
                break
    best = charset_normalizer.from_bytes(data, cp_exclusion=_GUESS_EXCLUDED).best()
    if best is None:
        return None
    wider = _WIDER_ENCODINGS.get(best.encoding)
    if wider is not None:
        text = _decode_strictly(data, wider, complete=True)
        if text is not None:
            return text
    return str(best)


def _normalise(text: str) -> str:
    """NFC (not NFKC, which would turn full-width 。！？；， into ASCII), one kind of line break,
    one space for any run of spaces, paragraphs separated by exactly one blank line."""
    text = unicodedata.normalize("NFC", text)
    text = _LINE_BREAKS.sub("\n", text).replace("\u2029", "\n\n")
    text = _INVISIBLE.sub("", text)
    lines = (_HORIZONTAL_SPACE.sub(" ", line).strip(" ") for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _one_line(text: str) -> str:
    return _normalise(text).replace("\n", " ")


def _title(text: str | None) -> str | None:
    return _one_line(text or "")[:MAX_TITLE_CHARACTERS] or None


class _Sections:
    """Collects a document's text into sections split at headings and tables, normalising each
    and enforcing the character limit section by section (a long PDF stops at the page that
    crosses it, not after the last one)."""

    def __init__(self, *, max_characters: int) -> None:
        self.max_characters = max_characters
        self.sections: list[Section] = []
        self.heading: str | None = None
        self.characters = 0
        self._parts: list[str] = []

    def start_heading(self, text: str) -> None:
        heading = _one_line(text)
        if not heading:
            return
        self.flush()
        self.heading = heading
        self._parts.append(heading + "\n\n")

    def add(self, text: str) -> None:
        self._parts.append(text)

    def add_block(self, text: str) -> None:
        self.flush()
        self._parts.append(text)
        self.flush()

    def remove_last(self) -> None:
        """Take back the text last added (a line that turned out to be a heading)."""
        if self._parts:
            self._parts.pop()

    def add_page(self, text: str, page: int) -> None:
        self._append(Section(text=_normalise(text), page=page, heading=None))

    def flush(self) -> None:
        text = _normalise("".join(self._parts))
        self._parts = []
        self._append(Section(text=text, page=None, heading=self.heading))

    def finish(self) -> list[Section]:
        self.flush()
        return self.sections

    def _append(self, section: Section) -> None:
        if not section.text:
            return
        self.characters += len(section.text)
        if self.characters > self.max_characters:
            raise ExtractionError(
                f"This document has more than {self.max_characters:,} characters of text, the most one "
                "document may hold. Split it into smaller documents and upload those."
            )
        self.sections.append(section)


# ---------------------------------------------------------------------------------------------
# Extraction


# Plain text is only decoded and normalised by linear code: nothing a hostile file can send into
# a loop or a memory blow-up, so it skips the child process (about 0.2 s a document, which
# dominated the ingestion of small text files). Markdown keeps the child: its inline regexes
# can go quadratic on a pathological line.
IN_PROCESS_KINDS = frozenset({"txt"})


def extract(path: pathlib.Path | str, kind: str, *, max_characters: int) -> Extracted:
    """Text of a stored file, read in a child process with a time and memory limit (plain text,
    which cannot hang a parser, in this process).

    Raises ExtractionError with a readable message for: encrypted PDFs that do not open with an
    empty password, corrupt or truncated files, image-only PDFs ('looks scanned'), DOCX
    decompression bombs (checked on the zip's declared sizes before python-docx opens it),
    documents whose text exceeds max_characters, empty documents ('no text found'), and files
    that take more time or memory than allowed. Raises FileNotFoundError when the file is
    missing. No library exception escapes."""
    if kind not in KINDS:
        raise ValueError(f"Unknown document kind {kind!r}; expected one of {KINDS}.")
    path = pathlib.Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"No stored file at {path}")
    limits = _Limits(
        max_characters=max_characters,
        max_pdf_pages=MAX_PDF_PAGES,
        max_docx_uncompressed_bytes=MAX_DOCX_UNCOMPRESSED_BYTES,
        max_docx_compression_ratio=MAX_DOCX_COMPRESSION_RATIO,
        docx_ratio_check_min_bytes=DOCX_RATIO_CHECK_MIN_BYTES,
        max_docx_members=MAX_DOCX_MEMBERS,
        memory_bytes=EXTRACTION_MEMORY_BYTES,
    )
    if kind in IN_PROCESS_KINDS:
        return _extract_here(path, kind, limits)
    command = [
        sys.executable,
        "-I",
        str(pathlib.Path(__file__).resolve()),
        str(path),
        kind,
        json.dumps(asdict(limits)),
    ]
    try:
        completed = subprocess.run(  # noqa: S603 - fixed interpreter and script, arguments are not parsed by a shell
            command, capture_output=True, timeout=EXTRACTION_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        logger.warning("extraction of %s (%s) timed out after %ss", path, kind, EXTRACTION_TIMEOUT_SECONDS)
        seconds = EXTRACTION_TIMEOUT_SECONDS
        allowed = f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} seconds"
        raise ExtractionError(
            f"Reading this file took longer than the {allowed} allowed; it may be damaged or unusually "
            "complex. Save it again or split it, and upload the new file."
        ) from None
    except OSError as error:
        logger.exception("could not start the extraction process for %s", path)
        raise ExtractionError(
            "The file could not be processed right now; reindex the document to try again."
        ) from error

    stderr = completed.stderr.decode("utf-8", "replace").strip()
    if stderr:
        logger.warning("extraction of %s (%s) reported: %s", path, kind, stderr[-4000:])
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        result = None
    if completed.returncode != 0 or not isinstance(result, dict):
        # Killed (the kernel's out-of-memory killer) or crashed inside a C extension.
        logger.error("extraction of %s (%s) ended with exit status %s", path, kind, completed.returncode)
        raise ExtractionError(_TOO_COMPLEX)
    if "missing" in result:
        raise FileNotFoundError(f"No stored file at {path}")
    if "error" in result:
        raise ExtractionError(result["error"])
    return Extracted(
        title=result["title"],
        sections=[
            Section(text=text, page=page, heading=heading) for text, page, heading in result["sections"]
        ],
    )


def _extract_here(path: pathlib.Path, kind: str, limits: _Limits) -> Extracted:
    """The extraction itself, in the current process; every failure becomes an ExtractionError
    (or FileNotFoundError)."""
    extractors: dict[str, Callable[[pathlib.Path, _Limits], Extracted]] = {
        "pdf": _extract_pdf,
        "docx": _extract_docx,
        "txt": _extract_plain_text,
        "markdown": _extract_markdown,
        "html": _extract_html,
    }
    try:
        extracted = extractors[kind](path, limits)
    except (ExtractionError, FileNotFoundError):
        raise
    except (MemoryError, RecursionError) as error:
        raise ExtractionError(_TOO_COMPLEX) from error
    except Exception as error:
        # Parsers of malformed files raise anything (KeyError, struct.error, zlib.error, ...).
        logger.exception("could not extract %s as %s", path, kind)
        raise ExtractionError(_DAMAGED[kind]) from error
    if not extracted.sections:
        raise ExtractionError(_NO_TEXT)
    return extracted


# PDF ------------------------------------------------------------------------------------------


def _extract_pdf(path: pathlib.Path, limits: _Limits) -> Extracted:
    try:
        reader = PdfReader(path, strict=False)
    except PdfReadError as error:
        raise ExtractionError(_DAMAGED["pdf"]) from error
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

    sections = _Sections(max_characters=limits.max_characters)
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
        raise ExtractionError(_DAMAGED["pdf"] if unreadable_pages == page_count else _SCANNED)
    return Extracted(title=_pdf_title(reader), sections=sections.sections)


def _pdf_title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        return _title(str(metadata.title)) if metadata is not None and metadata.title else None
    except (PdfReadError, ValueError, TypeError, KeyError):
        return None  # a broken /Info dictionary costs the title, not the text


# DOCX -----------------------------------------------------------------------------------------

_W_P, _W_TBL, _W_TR, _W_TC, _W_SDT, _W_SDT_CONTENT = (
    qn(tag) for tag in ("w:p", "w:tbl", "w:tr", "w:tc", "w:sdt", "w:sdtContent")
)
_W_T, _W_TAB, _W_PTAB, _W_BR, _W_CR, _W_NO_BREAK_HYPHEN = (
    qn(tag) for tag in ("w:t", "w:tab", "w:ptab", "w:br", "w:cr", "w:noBreakHyphen")
)
_MC_CHOICE = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Choice"
# Deleted text of tracked changes, drawings and text boxes (drawn twice, as Choice and as
# Fallback), and properties hold no text of the paragraph itself.
_DOCX_SKIPPED = frozenset(
    {
        qn("w:del"),
        qn("w:moveFrom"),
        qn("w:drawing"),
        qn("w:pict"),
        qn("w:object"),
        qn("w:pPr"),
        qn("w:rPr"),
        _MC_CHOICE,
    }
)
_DOCX_CHARACTERS = {_W_TAB: "\t", _W_PTAB: "\t", _W_BR: "\n", _W_CR: "\n", _W_NO_BREAK_HYPHEN: "-"}


def _extract_docx(path: pathlib.Path, limits: _Limits) -> Extracted:
    _check_docx_archive(path, limits)
    try:
        document = docx.Document(str(path))
    except ValueError as error:  # python-docx: "file ... is not a Word file, content type is ..."
        raise ExtractionError(
            "This file is not a Word document that can be read here; save it as DOCX and upload that."
        ) from error
    style_names = {
        style.style_id: style.name or ""
        for style in document.styles
        if style.type == WD_STYLE_TYPE.PARAGRAPH and style.style_id
    }
    sections = _Sections(max_characters=limits.max_characters)
    title_paragraph: str | None = None
    first_heading: str | None = None
    for element in _docx_blocks(document.element.body):
        if element.tag == _W_TBL:
            sections.add_block(_docx_table_text(element))
            continue
        text = _docx_paragraph_text(element)
        style_name = style_names.get(_docx_style_id(element), "")
        if _is_heading_style(style_name) and text.strip():
            if style_name.casefold() == "title" and title_paragraph is None:
                title_paragraph = text
            first_heading = first_heading or text
            sections.start_heading(text)
        else:
            sections.add(text + "\n\n")
    title = _title(document.core_properties.title) or _title(title_paragraph) or _title(first_heading)
    return Extracted(title=title, sections=sections.finish())


def _check_docx_archive(path: pathlib.Path, limits: _Limits) -> None:
    """Refuse a decompression bomb on the sizes the zip declares, before anything is inflated.
    Declared sizes are enough: zipfile, which python-docx reads through, stops inflating a
    member at its declared size, so a member cannot expand beyond what it declares."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise ExtractionError(_DAMAGED["docx"]) from error
    refused = (
        " Files like this are used to exhaust servers and are refused. Save the document again in "
        "Word (compressing or removing large images) and upload that."
    )
    if len(members) > limits.max_docx_members:
        raise ExtractionError(
            f"This Word file holds {len(members):,} parts, far more than a document needs." + refused
        )
    total = 0
    for member in members:
        if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Word only deflates; the bounded inflation described above holds for deflate.
            raise ExtractionError(_DAMAGED["docx"])
        total += member.file_size
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > limits.docx_ratio_check_min_bytes and ratio > limits.max_docx_compression_ratio:
            raise ExtractionError(
                f"This Word file holds a part that would expand {ratio:,.0f} times when unpacked." + refused
            )
    if total > limits.max_docx_uncompressed_bytes:
        megabytes = limits.max_docx_uncompressed_bytes / (1024 * 1024)
        raise ExtractionError(
            f"This Word file would expand to more than {megabytes:,.0f} MB when unpacked." + refused
        )


def _docx_blocks(container) -> Iterator:
    """Paragraphs and tables of a body or cell in order, including those inside content controls."""
    for child in container.iterchildren():
        if child.tag in (_W_P, _W_TBL):
            yield child
        elif child.tag == _W_SDT:
            for content in child.iterchildren(_W_SDT_CONTENT):
                yield from _docx_blocks(content)


def _docx_style_id(paragraph) -> str:
    style = paragraph.find(f"{qn('w:pPr')}/{qn('w:pStyle')}")
    return (style.get(qn("w:val")) or "") if style is not None else ""


def _is_heading_style(name: str) -> bool:
    # English names, and the Traditional Chinese ones of Word in Taiwan (標題 is Title, 標題 1 is Heading 1).
    folded = name.casefold()
    return folded.startswith("heading") or folded == "title" or name.startswith("標題")


def _docx_paragraph_text(element) -> str:
    """Text of a paragraph. Walks the XML rather than python-docx's Paragraph.text, which
    reads only direct runs and hyperlinks, so that tracked insertions, fields and content
    controls keep their text."""
    parts: list[str] = []
    for child in element.iterchildren():
        if not isinstance(child.tag, str) or child.tag in _DOCX_SKIPPED:
            continue  # comments and processing instructions have a non-string tag
        if child.tag == _W_T:
            parts.append(child.text or "")
        elif child.tag in _DOCX_CHARACTERS:
            parts.append(_DOCX_CHARACTERS[child.tag])
        else:
            parts.append(_docx_paragraph_text(child))
    return "".join(parts)


def _docx_table_text(table) -> str:
    """One line per row, cells joined by " | ". A merged cell appears once: its continuation
    cells are empty in the XML."""
    rows = []
    for row in table.iterchildren(_W_TR):
        cells = [_docx_cell_text(cell) for cell in row.iterchildren(_W_TC)]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _docx_cell_text(cell) -> str:
    parts = []
    for block in _docx_blocks(cell):
        if block.tag == _W_TBL:
            parts.append(_docx_table_text(block).replace("\n", "; "))  # a nested table stays in its cell
        else:
            parts.append(_docx_paragraph_text(block))
    return _one_line(" ".join(parts))


# Text, Markdown, HTML -----------------------------------------------------------------------


def _read_text(path: pathlib.Path, kind: str, *, declared_charset: bool = False) -> str:
    data = path.read_bytes()
    declared = None
    if declared_charset:
        match = _DECLARED_CHARSET.search(data[:4096])
        declared = match.group(1).decode("ascii") if match else None
    text = _decode(data, complete=True, declared=declared)
    if text is None:
        raise ExtractionError(_DAMAGED[kind])
    return text


def _extract_plain_text(path: pathlib.Path, limits: _Limits) -> Extracted:
    sections = _Sections(max_characters=limits.max_characters)
    sections.add(_read_text(path, "txt"))
    return Extracted(title=None, sections=sections.finish())


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(?:={3,}|-{3,})[ \t]*")
_THEMATIC_BREAK = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_REFERENCE_DEFINITION = re.compile(r" {0,3}\[[^\]]+\]:\s*\S+.*")
_TABLE_DELIMITER_ROW = re.compile(r"\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*")
_BLOCKQUOTE = re.compile(r"^ {0,3}(?:>[ \t]?)+")
_FRONT_MATTER_TITLE = re.compile(r"title\s*:\s*(.+)", re.IGNORECASE)
_INLINE_MARKUP = (
    (re.compile(r"`+([^`\n]+?)`+"), r"\1"),  # code spans keep their text
    (re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),  # images: alt text
    (re.compile(r"\[([^\]\n]+)\](?:\([^)\n]*\)|\[[^\]\n]*\])"), r"\1"),  # links: link text
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=[^\s_])([^_\n]+?)(?<=\S)_(?![\w_])"), r"\1"),  # not snake_case
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),
    (re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"), ""),  # inline HTML tags
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!>~|])"), r"\1"),  # backslash escapes
)


def _strip_inline_markdown(line: str) -> str:
    for pattern, replacement in _INLINE_MARKUP:
        line = pattern.sub(replacement, line)
    return line


def _extract_markdown(path: pathlib.Path, limits: _Limits) -> Extracted:
    lines = _normalise_line_breaks(_read_text(path, "markdown")).split("\n")
    title, lines = _split_front_matter(lines)
    sections = _Sections(max_characters=limits.max_characters)
    first_heading: str | None = None
    fence: str | None = None
    previous = ""  # the last line added outside code, for setext headings
    for line in lines:
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
                fence = None
            else:
                sections.add(line + "\n")
            continue
        if match := _FENCE.match(line):
            fence = match.group(1)
            sections.add("\n")
            previous = ""
            continue
        if match := _ATX_HEADING.fullmatch(line):
            heading = _strip_inline_markdown(match.group(2) or "")
            first_heading = first_heading or _title(heading)
            sections.start_heading(heading)
            previous = ""
            continue
        if previous.strip() and _SETEXT_UNDERLINE.fullmatch(line):
            # "Title" over "=====": the line already added becomes the heading.
            sections.remove_last()
            first_heading = first_heading or _title(previous)
            sections.start_heading(previous)
            previous = ""
            continue
        if _THEMATIC_BREAK.fullmatch(line) or _REFERENCE_DEFINITION.fullmatch(line):
            sections.add("\n")
            previous = ""
            continue
        if _TABLE_DELIMITER_ROW.fullmatch(line) and "-" in line and "|" in line:
            continue
        previous = _strip_inline_markdown(_BLOCKQUOTE.sub("", line))
        sections.add(previous + "\n")
    return Extracted(title=title or first_heading, sections=sections.finish())


def _normalise_line_breaks(text: str) -> str:
    return _LINE_BREAKS.sub("\n", text)


def _split_front_matter(lines: list[str]) -> tuple[str | None, list[str]]:
    """YAML front matter ("---" ... "---" at the top) is metadata, not text; its title is the title."""
    if not lines or lines[0].strip() != "---":
        return None, lines
    for index, line in enumerate(lines[1:101], start=1):
        if line.strip() in ("---", "..."):
            title = None
            for entry in lines[1:index]:
                if match := _FRONT_MATTER_TITLE.match(entry.strip()):
                    title = _title(match.group(1).strip().strip("\"'"))
            return title, lines[index + 1 :]
    return None, lines


_HTML_SKIPPED = frozenset({"script", "style", "noscript", "template"})
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr",
        "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "ul",
    }
)  # fmt: skip
_HTML_WHITESPACE = re.compile(r"[ \t\n\r\f]+")


class _HTMLText(html.parser.HTMLParser):
    """Text of an HTML page: block elements end paragraphs, headings start sections, table rows
    become lines with cells joined by " | ", and scripts, styles and templates are dropped."""

    def __init__(self, sections: _Sections) -> None:
        super().__init__(convert_charrefs=True)
        self.sections = sections
        self.title_parts: list[str] = []
        self.first_h1: str | None = None
        self._in_title = False
        self._skipped_depth = 0
        self._preformatted_depth = 0
        self._heading_tag: str | None = None
        self._heading_parts: list[str] = []
        self._cells_in_row = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _HTML_SKIPPED:
            self._skipped_depth += 1
            return
        if self._skipped_depth:
            return
        if tag == "title":
            self._in_title = True
            return
        self._in_title = False  # an unclosed <title> ends where the page starts
        if tag in _HTML_HEADINGS:
            self._end_heading()
            self._heading_tag = tag
        elif tag == "br":
            self._write("\n")
        elif tag == "tr":
            self._write("\n")
            self._cells_in_row = 0
        elif tag in ("td", "th"):
            if self._cells_in_row:
                self._write(" | ")
            self._cells_in_row += 1
        elif tag in _HTML_BLOCKS:
            self._write("\n\n")
        if tag == "pre":
            self._preformatted_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIPPED:
            self._skipped_depth = max(self._skipped_depth - 1, 0)
            return
        if self._skipped_depth:
            return
        if tag == "title":
            self._in_title = False
        elif tag == self._heading_tag:
            self._end_heading()
        elif tag in _HTML_BLOCKS:
            self._write("\n\n")
        if tag == "pre":
            self._preformatted_depth = max(self._preformatted_depth - 1, 0)

    def handle_data(self, data: str) -> None:
        if self._skipped_depth:
            return
        if self._in_title:
            self.title_parts.append(data)
            return
        if not self._preformatted_depth:
            data = _HTML_WHITESPACE.sub(" ", data)
        self._write(data)

    def close(self) -> None:
        super().close()
        self._end_heading()

    def _write(self, text: str) -> None:
        if self._heading_tag is not None:
            self._heading_parts.append(" " if "\n" in text else text)
        else:
            self.sections.add(text)

    def _end_heading(self) -> None:
        if self._heading_tag is None:
            return
        heading = "".join(self._heading_parts)
        if self._heading_tag == "h1" and self.first_h1 is None:
            self.first_h1 = _title(heading)
        self._heading_tag, self._heading_parts = None, []
        self.sections.start_heading(heading)


def _extract_html(path: pathlib.Path, limits: _Limits) -> Extracted:
    sections = _Sections(max_characters=limits.max_characters)
    parser = _HTMLText(sections)
    parser.feed(_read_text(path, "html", declared_charset=True))
    parser.close()
    return Extracted(title=_title("".join(parser.title_parts)) or parser.first_h1, sections=sections.finish())


# ---------------------------------------------------------------------------------------------
# The child process


def _limit_memory(limit_bytes: int) -> None:
    try:
        import resource
    except ImportError:  # not on this platform; the time limit still applies
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _child_main(arguments: list[str]) -> int:
    """Extract one file and write the result as JSON on stdout: {"title", "sections"}, or
    {"error": message}, or {"missing": true}. Diagnostics go to stderr."""
    path, kind, limits_json = arguments
    limits = _Limits(**json.loads(limits_json))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every quirk of real PDFs
    _limit_memory(limits.memory_bytes)
    result: dict
    try:
        extracted = _extract_here(pathlib.Path(path), kind, limits)
        result = {
            "title": extracted.title,
            "sections": [[section.text, section.page, section.heading] for section in extracted.sections],
        }
    except ExtractionError as error:
        result = {"error": str(error)}
    except FileNotFoundError:
        result = {"missing": True}
    sys.stdout.buffer.write(json.dumps(result, ensure_ascii=False).encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
