"""DOCX: paragraphs, headings and tables in reading order, after the archive's sizes are checked
against decompression bombs."""

import pathlib
import zipfile
from collections.abc import Iterator

import docx
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.ns import qn

from knowledge.extraction.base import DAMAGED, Extracted, ExtractionError, Limits
from knowledge.extraction.decoding import SectionBuilder, one_line, title_from

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


def extract_docx(path: pathlib.Path, limits: Limits) -> Extracted:
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
    sections = SectionBuilder(max_characters=limits.max_characters)
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
    title = (
        title_from(document.core_properties.title) or title_from(title_paragraph) or title_from(first_heading)
    )
    return Extracted(title=title, sections=sections.finish())


def _check_docx_archive(path: pathlib.Path, limits: Limits) -> None:
    """Refuse a decompression bomb on the sizes the zip declares, before anything is inflated.
    Declared sizes are enough: zipfile, which python-docx reads through, stops inflating a
    member at its declared size, so a member cannot expand beyond what it declares."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise ExtractionError(DAMAGED["docx"]) from error
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
            raise ExtractionError(DAMAGED["docx"])
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
    return one_line(" ".join(parts))
