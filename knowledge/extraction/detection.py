"""Which kind of document an upload is, named from its first bytes (and its name only to tell
Markdown from plain text), before anything is stored."""

import io
import re
import struct
import zipfile
import zlib

import filetype

from knowledge.extraction.base import UPLOAD_ADVICE, UnsupportedFileType
from knowledge.extraction.decoding import decode

_PDF_SIGNATURE = b"%PDF-"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_ZIP_SIGNATURE = b"PK\x03\x04"
_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MARKDOWN_SUFFIXES = frozenset({"md", "markdown", "mdown", "mkd", "mkdn"})
_TEXT_SUFFIXES = frozenset({"txt", "text"})

_EXECUTABLE_TYPES = frozenset(
    {"application/x-executable", "application/x-msdownload", "application/wasm", "application/x-elf"}
)
ARCHIVE_TYPES = frozenset(
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
    if head.startswith(_PNG_SIGNATURE):
        return "png"  # a scanned or photographed page, read by text recognition
    if head.startswith(_JPEG_SIGNATURE):
        return "jpeg"
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
    text = decode(head, complete=False)
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
            f"This file is binary data of an unknown type, not a document. {UPLOAD_ADVICE}"
        )
    if mime in _CONVERTIBLE_TYPES:
        what, advice = _CONVERTIBLE_TYPES[mime]
        return UnsupportedFileType(
            f"This file looks like {what} ({mime}), which cannot be read here. {advice}"
        )
    if mime in _EXECUTABLE_TYPES:
        what = "an executable"
    elif mime in ARCHIVE_TYPES:
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
    return UnsupportedFileType(f"This file looks like {what} ({mime}), not a document. {UPLOAD_ADVICE}")


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
