"""Bulk upload: many files in one request, and ZIP archives opened entry by entry. Each file is
checked as a single upload is (`services.document_upload`: type, size, duplicate, quota) and
gets an outcome of its own: `created`, `duplicate` or `refused` with the error's code.

An archive is refused whole when it is not a readable ZIP, holds more than ZIP_MAX_ENTRIES
entries or declares more than ZIP_MAX_UNCOMPRESSED_BYTES uncompressed; an entry is refused
alone when its name could escape a folder (`unsafe_path`), it is itself an archive
(`nested_archive`), encrypted (`encrypted_entry`), compressed more than ZIP_MAX_COMPRESSION_RATIO
times (`compression_ratio`), or larger than the plan's file size. Nothing is extracted before
these checks, and an entry is never read past the size it declares. Folders and the metadata
operating systems add to archives (`__MACOSX/`, `.DS_Store`, `Thumbs.db`) are passed over.

The request's files (an archive's entries counted one by one) and bytes (an archive's
uncompressed size) count against the tenant's hourly upload budget before any is stored.
"""

import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import filetype
from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile

from knowledge import services
from knowledge.extraction.detection import ARCHIVE_TYPES
from knowledge.models import Document
from tenants.errors import APIError, PayloadTooLarge, TooManyRequests
from tenants.models import Tenant
from tenants.throttling import upload_budget_charge

CREATED, DUPLICATE, REFUSED = "created", "duplicate", "refused"
_ARCHIVE_SUFFIXES = frozenset(
    {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".lz", ".lz4", ".z", ".cab", ".jar"}
)
_SKIPPED_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
# Below this size an entry's compression ratio does not matter: it cannot fill a disk.
_RATIO_FLOOR_BYTES = 64 * 1024
_COPY_BLOCK = 1024 * 1024


@dataclass
class Outcome:
    filename: str
    outcome: str
    document: Document | None = None
    code: str = ""
    message: str = ""
    details: dict = field(default_factory=dict)

    @classmethod
    def refused(cls, filename: str, error: APIError) -> "Outcome":
        outcome = DUPLICATE if error.error_code == "duplicate" else REFUSED
        return cls(filename, outcome, code=error.error_code, message=str(error.detail), details=error.details)

    @property
    def error(self) -> dict | None:
        if self.outcome == CREATED:
            return None
        return {"code": self.code, "message": self.message, "details": self.details}


class ArchiveRefused(APIError):
    default_code = "archive_invalid"
    default_detail = "This archive cannot be read; send a ZIP file."


class ArchiveTooLarge(ArchiveRefused):
    status_code = 413


class EntryRefused(APIError):
    """One entry of an archive that is not extracted."""


def _error(code: str, message: str, **details) -> EntryRefused:
    return EntryRefused(message, code=code, details=details)


# --- What a part of the request is ----------------------------------------------------------


def _is_zip_archive(upload: UploadedFile) -> bool:
    """A ZIP archive to open, as opposed to a document packaged as a ZIP or any other file."""
    head = upload.read(4)
    upload.seek(0)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        return False
    try:
        with zipfile.ZipFile(upload) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return (upload.name or "").lower().endswith(".zip")  # a broken archive: refused as one
    finally:
        upload.seek(0)
    # An Office Open XML or OpenDocument file (DOCX, XLSX, ODT, EPUB...) is a ZIP too: a file,
    # which the upload takes (DOCX) or refuses with a sentence naming what it is.
    return not ({"[Content_Types].xml", "mimetype"} & names)


def _unsafe_name(name: str) -> bool:
    """A name that could escape the folder an archive is opened in: absolute, a drive, `..`."""
    if "\x00" in name:
        return True
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return True
    return any(part == ".." for part in normalised.split("/"))


def _passed_over(info: zipfile.ZipInfo) -> bool:
    if info.is_dir():
        return True
    normalised = info.filename.replace("\\", "/")
    base = normalised.rsplit("/", 1)[-1]
    return normalised.startswith("__MACOSX/") or base.lower() in _SKIPPED_NAMES or base.startswith("._")


def _is_archive(path_name: str, head: bytes) -> bool:
    if PurePosixPath(path_name.replace("\\", "/").lower()).suffix in _ARCHIVE_SUFFIXES:
        return True
    guess = filetype.guess(head)
    return guess is not None and guess.mime in ARCHIVE_TYPES


# --- Archives --------------------------------------------------------------------------------


@dataclass
class _Archive:
    upload: UploadedFile
    archive: zipfile.ZipFile
    entries: list[zipfile.ZipInfo]

    @property
    def uncompressed_bytes(self) -> int:
        return sum(info.file_size for info in self.entries)


def _open_archive(upload: UploadedFile) -> _Archive:
    """Open an archive and check it as a whole; raises ArchiveRefused."""
    try:
        archive = zipfile.ZipFile(upload)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ArchiveRefused(details={"filename": upload.name}) from error
    limit = settings.ZIP_MAX_ENTRIES
    if len(infos) > limit:
        archive.close()
        raise ArchiveTooLarge(
            f"The archive holds {len(infos):,} entries; at most {limit:,} are accepted.",
            code="archive_too_many_entries",
            details={"filename": upload.name, "limit": limit, "entries": len(infos)},
        )
    total = sum(info.file_size for info in infos)
    limit = settings.ZIP_MAX_UNCOMPRESSED_BYTES
    if total > limit:
        archive.close()
        raise ArchiveTooLarge(
            f"The archive expands to {total:,} bytes; at most {limit:,} are accepted.",
            code="archive_too_large",
            details={"filename": upload.name, "limit_bytes": limit, "uncompressed_bytes": total},
        )
    entries = [info for info in infos if not _passed_over(info)]
    return _Archive(upload=upload, archive=archive, entries=entries)


def _check_entry(tenant: Tenant, info: zipfile.ZipInfo) -> None:
    """What can be known of an entry before reading a byte of it; raises EntryRefused."""
    name = info.filename
    if _unsafe_name(name):
        raise _error("unsafe_path", "This name points outside the archive's folder; it was not extracted.")
    if PurePosixPath(name.replace("\\", "/").lower()).suffix in _ARCHIVE_SUFFIXES:
        raise _error("nested_archive", "Archives inside an archive are not opened; add their files instead.")
    if info.flag_bits & 0x1:
        raise _error("encrypted_entry", "This entry is encrypted; send it without a password.")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > _RATIO_FLOOR_BYTES and ratio > settings.ZIP_MAX_COMPRESSION_RATIO:
        raise _error(
            "compression_ratio",
            f"This entry expands {ratio:,.0f} times, more than the {settings.ZIP_MAX_COMPRESSION_RATIO} "
            "accepted (a ZIP bomb?); it was not extracted.",
            ratio=round(ratio),
            limit=settings.ZIP_MAX_COMPRESSION_RATIO,
        )
    services.check_upload_size(tenant=tenant, size=info.file_size)


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> TemporaryUploadedFile:
    """The entry in a temporary file, never more bytes than it declares (zipfile stops there
    and checks the CRC)."""
    name = PurePosixPath(info.filename.replace("\\", "/")).name
    extracted = TemporaryUploadedFile(name, "application/octet-stream", info.file_size, None)
    written = 0
    try:
        with archive.open(info) as source:
            while block := source.read(_COPY_BLOCK):
                written += len(block)
                if written > info.file_size:
                    raise _error("archive_invalid", "This entry is larger than it declares.")
                extracted.write(block)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as error:
        extracted.close()
        raise _error("archive_invalid", "This entry cannot be read from the archive.") from error
    extracted.size = written
    extracted.seek(0)
    head = extracted.read(4096)
    extracted.seek(0)
    if _is_archive(name, head) or (head.startswith(b"PK\x03\x04") and _is_zip_archive(extracted)):
        extracted.close()
        raise _error("nested_archive", "Archives inside an archive are not opened; add their files instead.")
    return extracted


# --- The request -----------------------------------------------------------------------------


@dataclass
class _Plan:
    """The request's parts in order: a file, an opened archive, or an archive refused whole."""

    parts: list = field(default_factory=list)
    files: int = 0
    size: int = 0


def _plan(uploads: Iterable[UploadedFile]) -> _Plan:
    plan = _Plan()
    for upload in uploads:
        if _is_zip_archive(upload):
            try:
                archive = _open_archive(upload)
            except ArchiveRefused as error:
                plan.parts.append(error)
                continue
            plan.parts.append(archive)
            plan.files += len(archive.entries)
            plan.size += archive.uncompressed_bytes
        else:
            plan.parts.append(upload)
            plan.files += 1
            plan.size += upload.size or 0
    return plan


def _upload_one(*, tenant, uploaded_by, upload: UploadedFile, filename: str) -> Outcome:
    try:
        document = services.document_upload(tenant=tenant, uploaded_by=uploaded_by, upload=upload)
    except APIError as error:
        return Outcome.refused(filename, error)
    return Outcome(filename, CREATED, document=document)


def _archive_outcomes(*, tenant, uploaded_by, archive: _Archive) -> Iterator[Outcome]:
    prefix = archive.upload.name or "archive.zip"
    with archive.archive:
        for info in archive.entries:
            filename = f"{prefix}/{info.filename}"[:500]
            try:
                _check_entry(tenant, info)
                extracted = _extract(archive.archive, info)
            except APIError as error:
                yield Outcome.refused(filename, error)
                continue
            try:
                yield _upload_one(tenant=tenant, uploaded_by=uploaded_by, upload=extracted, filename=filename)
            finally:
                extracted.close()


def bulk_upload(*, tenant: Tenant, uploaded_by, uploads: list[UploadedFile]) -> list[Outcome]:
    """Upload every file, opening ZIP archives, and answer an outcome per file in order.

    Raises, with nothing stored, when the request as a whole is refused: no file (400), more
    files than BULK_UPLOAD_MAX_FILES (413), a request made of one archive refused whole (its
    400 or 413), more files or bytes than the plan's hourly budget allows now (429) or ever
    (413)."""
    if not uploads:
        raise APIError("Send one or more files in the `files` field.", code="validation_error")
    plan = _plan(uploads)
    try:
        if len(plan.parts) == 1 and isinstance(plan.parts[0], ArchiveRefused):
            raise plan.parts[0]
        limit = settings.BULK_UPLOAD_MAX_FILES
        if plan.files > limit:
            raise PayloadTooLarge(
                f"This request carries {plan.files:,} files; send at most {limit:,} at a time.",
                code="too_many_files",
                details={"limit": limit, "files": plan.files},
            )
        wait = upload_budget_charge(tenant=tenant, files=plan.files, size=plan.size)
        if wait is not None:
            raise TooManyRequests(
                "The plan's hourly budget of uploaded files and bytes is spent for now.",
                wait=wait,
                details={"files": plan.files, "bytes": plan.size},
            )
    except APIError:
        for part in plan.parts:
            if isinstance(part, _Archive):
                part.archive.close()
        raise

    outcomes: list[Outcome] = []
    for part in plan.parts:
        if isinstance(part, ArchiveRefused):
            outcomes.append(Outcome.refused(part.details.get("filename") or "archive.zip", part))
        elif isinstance(part, _Archive):
            outcomes.extend(_archive_outcomes(tenant=tenant, uploaded_by=uploaded_by, archive=part))
        else:
            outcomes.append(
                _upload_one(tenant=tenant, uploaded_by=uploaded_by, upload=part, filename=part.name or "")
            )
    return outcomes
