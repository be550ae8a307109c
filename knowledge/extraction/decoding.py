"""Bytes to text (encodings, Big5 and its supersets included) and text to normalised sections."""

import codecs
import pathlib
import re
import unicodedata

import charset_normalizer

from knowledge.extraction.base import DAMAGED, MAX_TITLE_CHARACTERS, ExtractionError, Section

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

LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028]")
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u200b\u2060\ufeff\ufffe\uffff]")
_HORIZONTAL_SPACE = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def decode(data: bytes, *, complete: bool, declared: str | None = None) -> str | None:
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


def normalise(text: str) -> str:
    """NFC (not NFKC, which would turn full-width 。！？；， into ASCII), one kind of line break,
    one space for any run of spaces, paragraphs separated by exactly one blank line."""
    text = unicodedata.normalize("NFC", text)
    text = LINE_BREAKS.sub("\n", text).replace("\u2029", "\n\n")
    text = _INVISIBLE.sub("", text)
    lines = (_HORIZONTAL_SPACE.sub(" ", line).strip(" ") for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def is_wide(character: str) -> bool:
    """A character written without spaces around it: Chinese, Japanese, full-width forms."""
    return (
        "\u2e80" <= character <= "\u9fff"
        or "\uf900" <= character <= "\ufaff"
        or "\uff00" <= character <= "\uffef"
    )


def one_line(text: str) -> str:
    return normalise(text).replace("\n", " ")


def title_from(text: str | None) -> str | None:
    return one_line(text or "")[:MAX_TITLE_CHARACTERS] or None


class SectionBuilder:
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
        heading = one_line(text)
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
        self._append(Section(text=normalise(text), page=page, heading=None))

    def flush(self) -> None:
        text = normalise("".join(self._parts))
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


def read_text(path: pathlib.Path, kind: str, *, declared_charset: bool = False) -> str:
    data = path.read_bytes()
    declared = None
    if declared_charset:
        match = _DECLARED_CHARSET.search(data[:4096])
        declared = match.group(1).decode("ascii") if match else None
    text = decode(data, complete=True, declared=declared)
    if text is None:
        raise ExtractionError(DAMAGED[kind])
    return text
