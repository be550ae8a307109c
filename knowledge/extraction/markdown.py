"""Markdown: headings become sections; markup is stripped from the text."""

import pathlib
import re

from knowledge.extraction.base import Extracted, Limits
from knowledge.extraction.decoding import LINE_BREAKS, SectionBuilder, read_text, title_from

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


def extract_markdown(path: pathlib.Path, limits: Limits) -> Extracted:
    lines = normalise_line_breaks(read_text(path, "markdown")).split("\n")
    title, lines = _split_front_matter(lines)
    sections = SectionBuilder(max_characters=limits.max_characters)
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
            first_heading = first_heading or title_from(heading)
            sections.start_heading(heading)
            previous = ""
            continue
        if previous.strip() and _SETEXT_UNDERLINE.fullmatch(line):
            # "Title" over "=====": the line already added becomes the heading.
            sections.remove_last()
            first_heading = first_heading or title_from(previous)
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


def normalise_line_breaks(text: str) -> str:
    return LINE_BREAKS.sub("\n", text)


def _split_front_matter(lines: list[str]) -> tuple[str | None, list[str]]:
    """YAML front matter ("---" ... "---" at the top) is metadata, not text; its title is the title."""
    if not lines or lines[0].strip() != "---":
        return None, lines
    for index, line in enumerate(lines[1:101], start=1):
        if line.strip() in ("---", "..."):
            title = None
            for entry in lines[1:index]:
                if match := _FRONT_MATTER_TITLE.match(entry.strip()):
                    title = title_from(match.group(1).strip().strip("\"'"))
            return title, lines[index + 1 :]
    return None, lines
