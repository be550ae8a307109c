"""Scanned pages made in the test: text drawn with the Noto CJK font into images (what a scanner
or a phone camera hands over), as PNG, JPEG or an image-only PDF. Debian's fonts-noto-cjk
provides the font (.ci/run installs it)."""

import io
import pathlib
import textwrap

from PIL import Image, ImageDraw, ImageFont

NOTO_CJK = pathlib.Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
_TRADITIONAL_CHINESE_FACE = 2  # the collection's faces: JP, KR, SC, TC, HK, ...; 2 is TC


def font(size: int = 28) -> ImageFont.FreeTypeFont:
    if not NOTO_CJK.is_file():
        raise FileNotFoundError(f"{NOTO_CJK} is missing: install Debian's fonts-noto-cjk")
    return ImageFont.truetype(str(NOTO_CJK), size, index=_TRADITIONAL_CHINESE_FACE)


def page_image(
    text: str, *, width: int = 1000, size: int = 28, per_line: int | None = None, margin: int = 60
) -> Image.Image:
    """White page with `text` wrapped in black, as RGB. `per_line`: characters a line (default:
    what fits, counting a CJK character as two Latin ones)."""
    if per_line is None:
        wide = sum(1 for character in text if ord(character) > 0x2E80) > len(text) / 3
        per_line = (width - 2 * margin) // (size if wide else size // 2)
    lines = [line for paragraph in text.split("\n") for line in (textwrap.wrap(paragraph, per_line) or [""])]
    spacing = int(size * 1.6)
    image = Image.new("RGB", (width, 2 * margin + spacing * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    face = font(size)
    for index, line in enumerate(lines):
        draw.text((margin, margin + index * spacing), line, font=face, fill="black")
    return image


def image_bytes(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **({"quality": 90} if format == "JPEG" else {}))
    return buffer.getvalue()


def scanned_pdf_bytes(images: list[Image.Image], *, resolution: float = 150.0) -> bytes:
    """An image-only PDF, one page per image (no text layer at all)."""
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=resolution)
    return buffer.getvalue()


def scanned_pages(
    text: str, *, width: int = 1240, size: int = 28, lines_per_page: int = 36
) -> list[Image.Image]:
    """A long text as A4-like page images (1240 px wide is A4 at 150 dpi), `lines_per_page` each."""
    margin = 80
    wide = sum(1 for character in text if ord(character) > 0x2E80) > len(text) / 3
    per_line = (width - 2 * margin) // (size if wide else size // 2)
    lines = [line for paragraph in text.split("\n") for line in (textwrap.wrap(paragraph, per_line) or [""])]
    return [
        page_image(
            "\n".join(lines[start : start + lines_per_page]),
            width=width,
            size=size,
            per_line=per_line + 1,
            margin=margin,
        )
        for start in range(0, len(lines), lines_per_page)
    ]
