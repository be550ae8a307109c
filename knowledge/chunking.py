"""Split a document's extracted sections into overlapping chunks of whole sentences.

Sizes are in characters (a Chinese character carries about a word's meaning, so one budget suits
both languages). The rules, in order of precedence:

- a chunk never crosses a page (PDF) and a change of heading starts a new chunk; each chunk keeps
  the page and heading of the text it came from (a PDF page that ends inside a sentence is given
  the rest of it from the next page by the extraction: `ends_sentence`, `first_sentence`);
- text is split into paragraphs at blank lines and paragraphs into sentences at Chinese
  terminators (。！？；…, with any closing quotes 」』” after them) and at English `.`, `!`, `?`
  followed by whitespace, but not inside decimals (3.14), after abbreviations (e.g., Dr.) or
  initials, or before a lower-case word;
- whole sentences are packed into chunks of at most `size` characters (consecutive sections with
  the same page and heading are packed together); a sentence longer than `size` is cut at line
  breaks, then at clause punctuation (，、；：, and `,` `;` `:` before a space), then at spaces,
  and only as a last resort into windows of `size` characters that overlap by `overlap`;
- each chunk after the first of a section starts with the trailing whole sentences of the previous
  chunk that fit in `overlap` characters; when even the last sentence is longer, that one sentence
  is repeated if it is short enough (see `_overlap_units`), otherwise the chunk starts afresh.

Whitespace is normalised as extraction leaves it: one space for any run of spaces, lines
stripped, line breaks kept (a table's rows, a list's items), paragraphs separated by one blank
line, no whitespace at either end.
"""

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby, pairwise
from typing import Protocol


class SectionLike(Protocol):
    """What chunking needs of an extracted section (`knowledge.extraction.Section` fits)."""

    @property
    def text(self) -> str: ...

    @property
    def page(self) -> int | None: ...

    @property
    def heading(self) -> str | None: ...


@dataclass(frozen=True)
class ChunkDraft:
    ordinal: int  # 0-based position in the document
    text: str
    page: int | None
    heading: str | None


# Han ideographs (with extensions and compatibility forms), kana, CJK and full-width punctuation:
# characters written without spaces between them.
_CJK = (
    "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f"
)
_CJK_CHARACTER = re.compile(f"[{_CJK}]")
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_WHITESPACE = re.compile(r"\s+")
_HORIZONTAL_WHITESPACE = re.compile(r"[^\S\n]+")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")

# Chinese sentence terminators end a sentence wherever they stand.
_CHINESE_TERMINATORS = frozenset("。！？；…‥｡")
_LATIN_TERMINATORS = frozenset(".!?")
# Closing quotes and brackets that belong to the sentence they follow.
_CLOSERS = frozenset("」』”’）)】》〉］]\"'")
# A period after these (lower-cased, without the final period) does not end a sentence.
_ABBREVIATIONS = frozenset(
    {
        "e.g", "i.e", "cf", "vs", "etc", "al", "approx", "ca", "mr", "mrs", "ms", "dr", "prof",
        "sr", "jr", "st", "mt", "no", "nos", "vol", "pp", "fig", "figs", "eq", "ref", "sec",
        "ch", "dept", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
        "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m",
    }
)  # fmt: skip
# Clause punctuation for cutting a sentence that is longer than a chunk. The ASCII marks count
# only before whitespace, so "3,000" and "10:30" stay whole.
_CHINESE_CLAUSE_MARKS = frozenset("，、；：,﹐﹑")
_LATIN_CLAUSE_MARKS = frozenset(",;:")


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long one) and the separator that precedes it."""

    text: str
    gap: str  # "" (Chinese), " " or "\n" (same paragraph), "\n\n" (new paragraph)


def chunk_sections(sections: Sequence[SectionLike], *, size: int, overlap: int) -> list[ChunkDraft]:
    """Chunks of whole sentences, at most `size` characters each, in document order."""
    if size < 1:
        raise ValueError("size must be at least 1")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be at least 0 and smaller than size")
    drafts: list[ChunkDraft] = []
    keyed = ((section.page, _clean_heading(section.heading), section.text) for section in sections)
    for (page, heading), group in groupby(keyed, key=lambda item: (item[0], item[1])):
        units = [unit for _, _, text in group for unit in _units(text, size=size, overlap=overlap)]
        for text in _pack(units, size=size, overlap=overlap):
            drafts.append(ChunkDraft(ordinal=len(drafts), text=text, page=page, heading=heading))
    return drafts


def _clean_heading(heading: str | None) -> str | None:
    cleaned = _WHITESPACE.sub(" ", _INVISIBLE.sub("", heading or "")).strip()
    return cleaned or None


def _normalise_paragraph(text: str) -> str:
    """One space for any run of spaces, lines stripped. Line breaks stay: in tables, lists and
    PDF pages they are structure (a row, an item, a line), and a chunk cuts at them first."""
    lines = (_HORIZONTAL_WHITESPACE.sub(" ", line).strip() for line in _INVISIBLE.sub("", text).splitlines())
    return "\n".join(line for line in lines if line)


def _is_cjk(character: str) -> bool:
    return _CJK_CHARACTER.match(character) is not None


def is_mostly_alphabetic(sections: Sequence[SectionLike], *, sample: int = 20_000) -> bool:
    """Whether a document's letters are mostly of alphabetic scripts (English...) rather than
    Chinese or Japanese: a character carries about a word's meaning in the one, a sixth of a word
    in the other, so the two want different chunk sizes in characters."""
    letters = cjk = 0
    for section in sections:
        for character in section.text[: sample - letters]:
            if character.isalpha():
                letters += 1
                cjk += _is_cjk(character)
        if letters >= sample:
            break
    return letters > 0 and cjk / letters < 0.3


def ends_sentence(text: str) -> bool:
    """Whether `text` ends with a sentence's end (a terminator, perhaps followed by closing quotes
    or brackets), by the rules the chunks are cut by."""
    text = text.rstrip()
    return bool(text) and (
        text[-1] in _CHINESE_TERMINATORS or text[-1] in _LATIN_TERMINATORS or text[-1] in _CLOSERS
    )


def first_sentence(text: str, *, limit: int) -> str:
    """The first sentence of `text` (all its first paragraph when that has no sentence end), or
    "" when that is longer than `limit` characters."""
    paragraph = _normalise_paragraph(_PARAGRAPH_BREAK.split(text, maxsplit=1)[0])
    spans = _sentence_spans(paragraph)
    if not spans or spans[0][1] - spans[0][0] > limit:
        return ""
    return paragraph[spans[0][0] : spans[0][1]]


def _units(text: str, *, size: int, overlap: int) -> Iterator[_Unit]:
    """The sentences of a section's text, over-long ones cut to at most `size` characters."""
    for raw in _PARAGRAPH_BREAK.split(text):
        paragraph = _normalise_paragraph(raw)
        previous_end = None
        for start, end in _sentence_spans(paragraph):
            for piece_start, piece_end in _cut_long(paragraph, start, end, size=size, overlap=overlap):
                # A chunk drops its first unit's gap, so a paragraph's first unit can always
                # carry the blank line.
                gap = "\n\n" if previous_end is None else paragraph[previous_end:piece_start]
                previous_end = piece_end
                yield _Unit(paragraph[piece_start:piece_end], gap)


def _sentence_spans(paragraph: str) -> list[tuple[int, int]]:
    spans = []
    start = 0
    position = 0
    length = len(paragraph)
    while position < length:
        character = paragraph[position]
        if character not in _CHINESE_TERMINATORS and character not in _LATIN_TERMINATORS:
            position += 1
            continue
        end = position + 1
        while end < length and (
            paragraph[end] in _CHINESE_TERMINATORS
            or paragraph[end] in _LATIN_TERMINATORS
            or paragraph[end] in _CLOSERS
        ):
            end += 1
        if _ends_sentence(paragraph, start, position, end):
            spans.append((start, end))
            start = end
        position = end
    spans.append((start, length))
    return [stripped for span in spans if (stripped := _strip(paragraph, *span))]


def _ends_sentence(paragraph: str, start: int, position: int, end: int) -> bool:
    """Whether the punctuation run paragraph[position:end] ends the sentence begun at `start`."""
    run = paragraph[position:end]
    if any(mark in _CHINESE_TERMINATORS for mark in run):
        return True
    if end == len(paragraph):
        return True
    following = paragraph[end]
    if _is_cjk(following):
        # "謝謝!請問": half-width ! and ? are common in Chinese text; a period here is more
        # likely a version or section number.
        return "!" in run or "?" in run
    if not following.isspace():
        return False  # 3.14, e.g, example.com
    if "!" in run or "?" in run:
        return True
    next_word = paragraph[end + 1 : end + 2]
    if next_word.isalpha() and next_word.islower():
        return False  # "etc. and", "Inc. is": a sentence starts with a capital
    word_start = position
    while word_start > start and not paragraph[word_start - 1].isspace():
        word_start -= 1
    word = paragraph[word_start:position].lstrip("([{\"'“‘")
    if word.lower() in _ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isupper():
        return False  # an initial: "J. R. Smith"
    if word.isdigit() and paragraph[start:position].strip() == word:
        return False  # a list number: "1. Open the lid"
    return True


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


# How an over-long sentence is cut, gentlest first. Line breaks come first because a "sentence"
# longer than a chunk is nearly always a table, a list or code, where a line is the unit; prose
# sentences that long are rare.
_LINE_BREAKS, _CLAUSES, _SPACES, _HARD = range(4)


def _cut_points(text: str, start: int, end: int, level: int) -> list[int]:
    """Where text[start:end] may be cut at the given level (after the mark or the space)."""
    points = []
    for position in range(start, end - 1):
        character = text[position]
        if level == _LINE_BREAKS:
            cut = character == "\n"
        elif level == _CLAUSES:
            cut = character in _CHINESE_CLAUSE_MARKS or (
                character in _LATIN_CLAUSE_MARKS and text[position + 1].isspace()
            )
        else:
            cut = character == " "
        if cut:
            points.append(position + 1)
    return points


def _cut_long(
    text: str, start: int, end: int, *, size: int, overlap: int, level: int = _LINE_BREAKS
) -> list[tuple[int, int]]:
    """Spans of text[start:end], each at most `size` characters, cut as gently as possible."""
    if end - start <= size:
        return [(start, end)]
    if level == _HARD:
        # No boundary at all (a run of Chinese without punctuation, a long URL): windows of
        # `size` that overlap by `overlap`, so that a word cut at one edge is whole in a neighbour.
        step = size - overlap
        windows = range(start, end - overlap, step)
        return [stripped for offset in windows if (stripped := _strip(text, offset, min(offset + size, end)))]
    bounds = [start, *_cut_points(text, start, end, level), end]
    spans: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for piece in pairwise(bounds):
        stripped = _strip(text, *piece)
        if stripped is None:
            continue
        piece_start, piece_end = stripped
        if piece_end - piece_start > size:
            if current:
                spans.append(current)
                current = None
            spans.extend(_cut_long(text, piece_start, piece_end, size=size, overlap=overlap, level=level + 1))
        elif current and piece_end - current[0] <= size:
            current = (current[0], piece_end)
        else:
            if current:
                spans.append(current)
            current = (piece_start, piece_end)
    if current:
        spans.append(current)
    return spans


def _length(units: Sequence[_Unit]) -> int:
    return sum(len(unit.text) + len(unit.gap) for unit in units) - (len(units[0].gap) if units else 0)


def _join(units: Sequence[_Unit]) -> str:
    return "".join(unit.gap + unit.text if index else unit.text for index, unit in enumerate(units))


def _overlap_units(units: Sequence[_Unit], *, size: int, overlap: int) -> list[_Unit]:
    """The trailing whole sentences of a chunk to repeat at the start of the next one: as many as
    fit in `overlap` characters. When the last sentence alone is longer, it is repeated only if it
    is at most twice the overlap and half the chunk size, so that a chunk is never mostly a copy
    of the previous one."""
    if overlap == 0 or not units:
        return []
    carried: list[_Unit] = []
    for unit in reversed(units):
        if _length([unit, *carried]) > overlap:
            break
        carried.insert(0, unit)
    if not carried and len(units[-1].text) <= min(2 * overlap, size // 2):
        carried = [units[-1]]
    return carried


def _pack(units: Sequence[_Unit], *, size: int, overlap: int) -> list[str]:
    chunks: list[str] = []
    current: list[_Unit] = []
    for unit in units:
        if current and _length([*current, unit]) > size:
            chunks.append(_join(current))
            current = _overlap_units(current, size=size, overlap=overlap)
            # The carried sentences give way (oldest first) until the new sentence fits.
            while current and _length([*current, unit]) > size:
                current.pop(0)
        current.append(unit)
    if current:
        chunks.append(_join(current))
    return chunks
