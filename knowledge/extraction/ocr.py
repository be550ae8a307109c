"""Text recognition (OCR) of scanned pages and images.

The engine is RapidOCR 3 on ONNX Runtime with the PP-OCRv6 small detection and recognition models
that ship inside the `rapidocr` wheel: nothing is downloaded at run time and no system package is
needed (OpenCV comes as the headless wheel). On generated Traditional Chinese pages it reads
about 1.00 of the characters where rapidocr-onnxruntime 1.4.4 (PP-OCRv4) read about 0.88, and
in about half the time (docs/retrieval.md, "OCR").

The engine is loaded once per process (about 1 s). Extraction runs in a child process per file,
so a worker pays that once per document, not once per page.
"""

import logging
import pathlib
import resource
import time
from dataclasses import dataclass

import numpy as np

from knowledge.extraction.base import TOO_COMPLEX, ExtractionError
from knowledge.extraction.decoding import is_wide

logger = logging.getLogger(__name__)

# A PDF page is rendered at this resolution: 10 pt text becomes ~28 px high, where the
# recogniser is at its best; larger pages are scaled down to MAX_RENDER_SIDE.
RENDER_DPI = 200
MAX_RENDER_SIDE = 3000

_engine = None
_engine_threads: int | None = None


@dataclass(frozen=True)
class Recognised:
    text: str
    confidence: float | None  # mean over recognised characters; None when nothing was read
    characters: int
    standing: bool = False  # most characters in boxes taller than wide: lines on end (a page on its side)


def allow_memory(limit_bytes: int) -> None:
    """Raise this process's address-space limit to `limit_bytes` for the models (ONNX Runtime
    maps ~1 GiB more than the parsers need). Only the soft limit moves, never above the hard
    one; a process without a limit (tests, the benchmark) is left alone."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft >= limit_bytes:
        return
    target = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (target, hard))


def engine(threads: int = 0):
    """The process's RapidOCR engine, built on first use with the models of the wheel."""
    global _engine, _engine_threads
    if _engine is not None and _engine_threads == threads:
        return _engine
    import rapidocr  # noqa: PLC0415 - heavy (OpenCV, ONNX Runtime); only documents that need OCR load it

    models = pathlib.Path(rapidocr.__file__).resolve().parent / "models"
    paths = {
        "Det.model_path": models / "PP-OCRv6_det_small.onnx",
        "Rec.model_path": models / "PP-OCRv6_rec_small.onnx",
        "Cls.model_path": models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    }
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        # Never let the library fetch them: the platform works offline.
        raise RuntimeError(f"the OCR models are missing from the rapidocr package: {missing}")
    params = {key: str(path) for key, path in paths.items()}
    params.update(
        {
            "Global.log_level": "warning",
            # The line-orientation classifier turned whole upright English lines upside down
            # (one line in 40 on the generated pages: accuracy 0.93 instead of 1.00 on that
            # page); scans come upright, so it is off, which is also faster.
            "Global.use_cls": False,
            "Global.max_side_len": MAX_RENDER_SIDE,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads if threads > 0 else -1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    started = time.monotonic()
    _engine = rapidocr.RapidOCR(params=params)
    _engine_threads = threads
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    logger.info("OCR engine loaded in %.1fs", time.monotonic() - started)
    return _engine


# An upright page reads at a mean confidence of 0.99 (0.988 skewed, noisy and at 75 dpi at
# once); upside down or on its side, 0.67 to 0.76 (generated pages, 2026-11-30).
UPRIGHT_CONFIDENCE = 0.85


def recognise(image: np.ndarray, *, threads: int = 0) -> Recognised:
    """The text of an RGB image (height × width × 3, uint8), in reading order: boxes grouped
    into lines from top to bottom, each line's boxes from left to right.

    A page scanned upside down or on its side reads as a few low-confidence fragments (the line
    classifier is off, see `engine`): then it is read again turned, until a reading is confident
    with its lines lying flat. A reading that is confident but whose lines stand on end (taller
    than wide: the recogniser turns such a line upright by itself, but the page is on its side
    and its lines come in the wrong order) says which way: a quarter turn further. So an upright
    page is read once, one upside down or turned 90° clockwise twice, one turned 90° the other
    way three times; when no turn reads well, the page is kept as it came."""
    readings: dict[int, Recognised] = {}
    turns = 0  # counter-clockwise quarter turns
    while turns not in readings:
        reading = readings[turns] = _recognise_as_is(np.rot90(image, turns), threads=threads)
        if not reading.characters and turns == 0:
            return reading  # nothing on the page
        if reading.characters and reading.confidence >= UPRIGHT_CONFIDENCE:
            if not reading.standing:
                return reading
            turns = (turns + 1) % 4
        else:
            turns = next((turn for turn in (2, 1, 3) if turn not in readings), 0)
    return readings[0]


def _recognise_as_is(image: np.ndarray, *, threads: int) -> Recognised:
    try:
        result = engine(threads)(np.ascontiguousarray(image[:, :, ::-1]))  # the engine takes BGR
    except Exception as error:
        # ONNX Runtime reports running out of address space as its own error (std::bad_alloc).
        logger.warning("text recognition failed: %s", str(error)[-500:])
        raise ExtractionError(TOO_COMPLEX) from error
    if result.boxes is None or not result.txts:
        return Recognised(text="", confidence=None, characters=0)
    items = []
    for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
        text = text.strip()
        if not text:
            continue
        ys = [point[1] for point in box]
        xs = [point[0] for point in box]
        items.append((min(ys), max(ys), min(xs), text, float(score), max(xs)))
    lines: list[list[tuple]] = []
    for item in sorted(items, key=lambda item: (item[0], item[2])):
        top, bottom = item[0], item[1]
        if lines:
            last = lines[-1]
            last_top = min(entry[0] for entry in last)
            last_bottom = max(entry[1] for entry in last)
            overlap = min(bottom, last_bottom) - max(top, last_top)
            if overlap > 0.5 * min(bottom - top, last_bottom - last_top):
                last.append(item)
                continue
        lines.append([item])
    text = _join_lines(lines)
    characters = sum(len(entry[3]) for entry in items)
    confidence = sum(len(entry[3]) * entry[4] for entry in items) / characters if characters else None
    on_end = sum(len(entry[3]) for entry in items if entry[1] - entry[0] > 1.5 * (entry[5] - entry[2]))
    return Recognised(
        text=text, confidence=confidence, characters=characters, standing=on_end > characters / 2
    )


def _space(before: str, after: str) -> str:
    """What joins two pieces of one paragraph (two boxes of a line, or a line and the next): no
    space beside a Chinese character, nor inside a number a Chinese line cut ("2,0" then
    "52平方公里": a Chinese line breaks anywhere); one between two words of a Latin phrase."""
    if is_wide(before[-1]) or is_wide(after[0]):
        return ""
    wide = sum(1 for character in before if is_wide(character)) > len(before) / 2
    if wide and not (before[-1].isalpha() and after[0].isalpha()):
        return ""
    return " "


def _join_lines(lines: list[list[tuple]]) -> str:
    """The lines of a page as paragraphs: a line that reaches the right margin continues on the
    next one (joined as `_space` says), a line that ends short closes its paragraph. Breaking a
    wrapped Chinese sentence at every line, or putting a space where the detector split a line
    into boxes, would split its words for search and the answer a passage has to contain."""
    texts = []
    for line in lines:
        text, right = "", None
        for top, bottom, left, piece, _, piece_right in sorted(line, key=lambda entry: entry[2]):
            if text:
                # Boxes far apart are columns (a table's cells): a space whatever the script.
                far = left - right > 0.75 * (bottom - top)
                text += " " if far else _space(text, piece)
            text, right = text + piece, piece_right
        texts.append(text)
    rights = [max(entry[5] for entry in line) for line in lines]
    lefts = [min(entry[2] for entry in line) for line in lines]
    full_width = max(rights) - min(lefts) if lines else 0
    parts: list[str] = []
    for index, text in enumerate(texts):
        if index:
            previous = texts[index - 1]
            ends_short = rights[index - 1] - min(lefts) < 0.85 * full_width
            parts.append("\n" if ends_short else _space(previous, text))
        parts.append(text)
    return "".join(parts)


def render_pdf_page(document, index: int) -> np.ndarray:
    """Page `index` (0-based) of an open pypdfium2 document as an RGB array."""
    page = document[index]
    try:
        width, height = page.get_size()  # points
        scale = RENDER_DPI / 72
        longest = max(width, height) * scale
        if longest > MAX_RENDER_SIDE:
            scale *= MAX_RENDER_SIDE / longest
        bitmap = page.render(scale=scale, grayscale=False)
        try:
            return np.asarray(bitmap.to_pil().convert("RGB"))
        finally:
            bitmap.close()
    finally:
        page.close()
