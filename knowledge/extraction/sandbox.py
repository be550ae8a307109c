"""The child process that parses an untrusted file under a time and a memory limit.

The parent runs `python -I -c <bootstrap> ROOT PATH KIND LIMITS`: isolated mode (no environment
variables, no user site, no current directory on the path), with only the project root added so
that this package imports; the child writes its result as JSON on stdout.
"""

import json
import logging
import pathlib
import subprocess  # noqa: S404 - runs the project's own module with the current interpreter, no shell
import sys
from dataclasses import asdict

from knowledge.extraction.base import TOO_COMPLEX, Extracted, ExtractionError, Limits, Section
from knowledge.extraction.reader import extract_in_process

logger = logging.getLogger(__name__)

_PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from knowledge.extraction.sandbox import child_main; sys.exit(child_main(sys.argv[2:]))"
)


def extract_in_child(path: pathlib.Path, kind: str, limits: Limits, *, timeout_seconds: float) -> Extracted:
    """`extract_in_process` in a child process; what it raised comes back as the same error."""
    command = [
        sys.executable,
        "-I",
        "-c",
        _BOOTSTRAP,
        str(_PROJECT_ROOT),
        str(path),
        kind,
        json.dumps(asdict(limits)),
    ]
    try:
        completed = subprocess.run(  # noqa: S603 - fixed interpreter and code, arguments are not parsed by a shell
            command, capture_output=True, timeout=timeout_seconds, check=False
        )
    except subprocess.TimeoutExpired:
        logger.warning("extraction of %s (%s) timed out after %ss", path, kind, timeout_seconds)
        allowed = (
            f"{timeout_seconds / 60:g} minutes" if timeout_seconds >= 60 else f"{timeout_seconds:g} seconds"
        )
        raise ExtractionError(
            f"Reading this file took longer than the {allowed} allowed; it may be damaged or unusually "
            "complex. Save it again or split it, and upload the new file."
        ) from None
    except OSError as error:
        logger.exception("could not start the extraction process for %s", path)
        raise ExtractionError(
            "The file could not be processed right now; reindex the document to try again."
        ) from error

    stderr = completed.stderr.decode("utf-8", "replace").strip()
    if stderr:
        logger.warning("extraction of %s (%s) reported: %s", path, kind, stderr[-4000:])
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        result = None
    if completed.returncode != 0 or not isinstance(result, dict):
        # Killed (the kernel's out-of-memory killer) or crashed inside a C extension.
        logger.error("extraction of %s (%s) ended with exit status %s", path, kind, completed.returncode)
        raise ExtractionError(TOO_COMPLEX)
    if "missing" in result:
        raise FileNotFoundError(f"No stored file at {path}")
    if "error" in result:
        raise ExtractionError(result["error"])
    return Extracted(
        title=result["title"],
        sections=[
            Section(text=text, page=page, heading=heading) for text, page, heading in result["sections"]
        ],
        ocr_pages=result.get("ocr_pages", 0),
        ocr_confidence=result.get("ocr_confidence"),
    )


def _limit_memory(limit_bytes: int) -> None:
    try:
        import resource
    except ImportError:  # not on this platform; the time limit still applies
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def child_main(arguments: list[str]) -> int:
    """Extract one file and write the result as JSON on stdout: {"title", "sections"}, or
    {"error": message}, or {"missing": true}. Diagnostics go to stderr. The memory limit set
    here holds while the file is parsed; text recognition raises it to `ocr_memory_bytes` for
    its models once the parsers are done (`ocr.allow_memory`)."""
    path, kind, limits_json = arguments
    limits = Limits(**json.loads(limits_json))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every quirk of real PDFs
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    _limit_memory(limits.memory_bytes)
    result: dict
    try:
        extracted = extract_in_process(pathlib.Path(path), kind, limits)
        result = {
            "title": extracted.title,
            "sections": [[section.text, section.page, section.heading] for section in extracted.sections],
            "ocr_pages": extracted.ocr_pages,
            "ocr_confidence": extracted.ocr_confidence,
        }
    except ExtractionError as error:
        result = {"error": str(error)}
    except FileNotFoundError:
        result = {"missing": True}
    sys.stdout.buffer.write(json.dumps(result, ensure_ascii=False).encode("utf-8"))
    return 0
