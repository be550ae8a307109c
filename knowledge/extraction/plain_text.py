"""Plain text: decoded and normalised, nothing more."""

import pathlib

from knowledge.extraction.base import Extracted, Limits
from knowledge.extraction.decoding import SectionBuilder, read_text


def extract_plain_text(path: pathlib.Path, limits: Limits) -> Extracted:
    sections = SectionBuilder(max_characters=limits.max_characters)
    sections.add(read_text(path, "txt"))
    return Extracted(title=None, sections=sections.finish())
