"""PNG and JPEG: a photographed or scanned page, read by text recognition (`ocr`)."""

import pathlib
import time

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from knowledge.extraction import ocr
from knowledge.extraction.base import (
    DAMAGED,
    NO_TEXT_IN_IMAGE,
    TOO_COMPLEX,
    Extracted,
    ExtractionError,
    Limits,
    ocr_too_slow,
)
from knowledge.extraction.decoding import SectionBuilder


def extract_image(path: pathlib.Path, kind: str, limits: Limits) -> Extracted:
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels  # larger raises DecompressionBombError
    try:
        with Image.open(path, formats=["PNG" if kind == "png" else "JPEG"]) as image:
            if image.width * image.height > limits.max_image_pixels:  # from the header, before decoding
                raise ExtractionError(TOO_COMPLEX)
            image.load()
            image = ImageOps.exif_transpose(image).convert("RGB")  # phones store the rotation apart
    except Image.DecompressionBombError as error:
        raise ExtractionError(TOO_COMPLEX) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ExtractionError(DAMAGED[kind]) from error
    ocr.allow_memory(limits.ocr_memory_bytes)
    started = time.monotonic()
    recognised = ocr.recognise(_fit(image), threads=limits.ocr_threads)
    if time.monotonic() - started > limits.ocr_seconds_per_page:
        raise ExtractionError(ocr_too_slow(limits.ocr_seconds_per_page))
    sections = SectionBuilder(max_characters=limits.max_characters)
    sections.add_page(recognised.text, 1)
    if not sections.sections:
        raise ExtractionError(NO_TEXT_IN_IMAGE)
    return Extracted(
        title=None,
        sections=sections.sections,
        ocr_pages=1,
        ocr_confidence=recognised.confidence,
    )


def _fit(image: Image.Image) -> np.ndarray:
    """The image scaled down so that its longest side is at most what the recogniser reads."""
    longest = max(image.size)
    if longest > ocr.MAX_RENDER_SIDE:
        scale = ocr.MAX_RENDER_SIDE / longest
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    return np.asarray(image)
