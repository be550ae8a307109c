"""Builders of small test documents, generated in code so that no binary file is committed.

The PDFs are written by hand: a few objects, a cross-reference table with exact offsets, and
content streams that draw text with a standard font (nothing is embedded).
"""

import io
import struct
import zipfile
import zlib
from collections.abc import Sequence

import docx
from pypdf import PdfWriter

WORD_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def _pdf_document(objects: Sequence[bytes]) -> bytes:
    """A complete PDF from numbered object bodies (object 1 is the catalog)."""
    output = io.BytesIO()
    output.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(output.tell())
        output.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref_offset = output.tell()
    output.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        output.write(b"%010d 00000 n \n" % offset)
    output.write(b"trailer\n<< /Size %d /Root 1 0 R /Info 2 0 R >>\n" % (len(objects) + 1))
    output.write(b"startxref\n%d\n%%%%EOF\n" % xref_offset)
    return output.getvalue()


def _stream(content: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"


def pdf_bytes(pages: Sequence[str | None], *, title: str = "") -> bytes:
    """A PDF with one page per item: a string is drawn as lines of Helvetica text, None makes a
    page that only paints a grey rectangle (what a scanned page looks like to a text extractor)."""
    # Objects: 1 catalog, 2 info, 3 pages, 4 font, then a page and its content stream per page.
    page_numbers = [5 + 2 * index for index in range(len(pages))]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 3 0 R >>",
        b"<< /Title " + _pdf_string(title) + b" /Producer (tests) >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % number for number in page_numbers), len(pages)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for number, text in zip(page_numbers, pages, strict=True):
        if text is None:
            content = b"q 0.5 g 72 72 468 648 re f Q"
        else:
            lines = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
            lines += [_pdf_string(line) + b" Tj T*" for line in text.split("\n")]
            lines.append(b"ET")
            content = b"\n".join(lines)
        objects.append(
            b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 4 0 R >> >> /Contents %d 0 R >>" % (number + 1)
        )
        objects.append(_stream(content))
    return _pdf_document(objects)


def chinese_pdf_bytes(text: str) -> bytes:
    """One page of Chinese text in a Type0 font whose two-byte codes are the characters' code
    points, with a ToUnicode map saying so: how a PDF with a CJK font reads to an extractor."""
    characters = sorted(set(text))
    to_unicode = "\n".join(
        [
            "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            "/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
            "1 begincodespacerange <0000> <FFFF> endcodespacerange",
            f"{len(characters)} beginbfchar",
            *(f"<{ord(character):04X}> <{ord(character):04X}>" for character in characters),
            "endbfchar endcmap CMapName currentdict /CMap defineresource pop end end",
        ]
    ).encode("ascii")
    codes = "".join(f"{ord(character):04X}" for character in text)
    content = b"BT /F1 12 Tf 72 720 Td <" + codes.encode("ascii") + b"> Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 3 0 R >>",
        b"<< /Producer (tests) >>",
        b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /MingLiU /Encoding /Identity-H "
        b"/DescendantFonts [7 0 R] /ToUnicode 8 0 R >>",
        b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 6 0 R >>",
        _stream(content),
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /MingLiU "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
        b"/FontDescriptor 9 0 R /DW 1000 >>",
        _stream(to_unicode),
        b"<< /Type /FontDescriptor /FontName /MingLiU /Flags 4 /FontBBox [0 -200 1000 800] "
        b"/ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 >>",
    ]
    return _pdf_document(objects)


def encrypted_pdf_bytes(pages: Sequence[str | None], *, user_password: str, owner_password: str) -> bytes:
    """`pdf_bytes` encrypted with AES-128 by pypdf. An empty user password makes a PDF that
    opens without asking (only its permissions are protected)."""
    writer = PdfWriter(clone_from=io.BytesIO(pdf_bytes(pages)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-128")
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def docx_bytes(build) -> bytes:
    """A DOCX written by python-docx; `build` receives the new Document to fill in."""
    document = docx.Document()
    build(document)
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return output.getvalue()


def zeros_zip_member_bytes(name: str, size: int, *, extra_members: dict[str, bytes] | None = None) -> bytes:
    """A zip with `extra_members` and a member `name` holding `size` zero bytes, deflated
    while streaming so that a large member costs no memory (zeros compress about 1000 to 1)."""
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in (extra_members or {}).items():
            archive.writestr(member, data)
        chunk = bytes(1024 * 1024)
        with archive.open(name, "w", force_zip64=size >= 2**31) as stream:
            remaining = size
            while remaining > 0:
                stream.write(chunk[: min(remaining, len(chunk))])
                remaining -= len(chunk)
    return output.getvalue()


def with_declared_size(archive: bytes, member: str, declared_size: int) -> bytes:
    """`archive` with the uncompressed size of `member` rewritten in its local header and in the
    central directory: a zip that claims a member expands to `declared_size` bytes."""
    data = bytearray(archive)
    encoded = member.encode()
    # (signature, offset of the uncompressed size, offset of the name) in a local header and in
    # a central directory entry; the name's length always follows the size's 4 + 4 bytes later.
    for signature, size_offset, name_offset in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        position = data.find(signature)
        while position != -1:
            (name_length,) = struct.unpack_from("<H", data, position + size_offset + 4)
            if data[position + name_offset : position + name_offset + name_length] == encoded:
                struct.pack_into("<I", data, position + size_offset, declared_size)
            position = data.find(signature, position + 4)
    return bytes(data)


def png_bytes() -> bytes:
    """A valid 1×1 grey PNG."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def elf_bytes() -> bytes:
    """The 64-byte header of an x86-64 Linux executable followed by some code-like bytes."""
    identity = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = identity + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    return header + bytes(range(256)) * 4


def ole2_bytes() -> bytes:
    """The start of a Compound File (the container of Word 97–2003 .doc files)."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + b"\x3e\x00\x03\x00\xfe\xff\x09\x00" + bytes(600)
