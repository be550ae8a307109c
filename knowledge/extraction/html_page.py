"""HTML: visible text in blocks, headings as sections, scripts and styles left out."""

import html.parser
import pathlib
import re

from knowledge.extraction.base import Extracted, Limits
from knowledge.extraction.decoding import SectionBuilder, read_text, title_from

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

    def __init__(self, sections: SectionBuilder) -> None:
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
            self.first_h1 = title_from(heading)
        self._heading_tag, self._heading_parts = None, []
        self.sections.start_heading(heading)


def extract_html(path: pathlib.Path, limits: Limits) -> Extracted:
    sections = SectionBuilder(max_characters=limits.max_characters)
    parser = _HTMLText(sections)
    parser.feed(read_text(path, "html", declared_charset=True))
    parser.close()
    return Extracted(
        title=title_from("".join(parser.title_parts)) or parser.first_h1, sections=sections.finish()
    )
