"""Every write of curated answers (FAQ pairs): create, update, delete, CSV import, the record
of a hit, and the embeddings kept for matching. Each write is audited."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from knowledge import faq_matching, faq_selectors
from knowledge.embedding import EmbeddingError
from knowledge.extraction.decoding import decode
from knowledge.faq_settings import FaqSettings
from knowledge.models import Faq
from tenants.audit import audit_record
from tenants.errors import APIError, Conflict, PayloadTooLarge
from tenants.models import Tenant

logger = logging.getLogger(__name__)

MAX_QUESTION_LENGTH = 500
MAX_ANSWER_LENGTH = 10_000
MAX_ALTERNATIVES = 20
MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 2_000
ALTERNATIVES_SEPARATOR = "|"
# Header names accepted in an imported CSV, by column (English, and what a Taiwanese
# spreadsheet is likely to say).
_HEADERS = {
    "question": {"question", "問題", "问题"},
    "answer": {"answer", "答案", "回答"},
    "alternatives": {"alternatives", "其他問法", "其他问法", "相似問法", "相似问法"},
}


class UnsupportedImport(APIError):
    status_code = 415
    default_code = "unsupported_file_type"
    default_detail = "Upload a CSV file (UTF-8 or Big5)."


def clean_alternatives(values, *, question: str) -> list[str]:
    """Stripped, without blanks, without repeats of the question or of each other (folded)."""
    seen = {faq_matching.question_key(question)}
    cleaned = []
    for value in values:
        text = " ".join(str(value).split())
        key = faq_matching.question_key(text)
        if text and key and key not in seen:
            seen.add(key)
            cleaned.append(text)
    return cleaned


def _embed(faq: Faq) -> None:
    """Keep the embeddings of the pair's phrasings on the row (not saved here). An unavailable
    embedder leaves them empty; the matcher computes them on its next use."""
    try:
        vectors, model = faq_matching.embed_phrasings(faq.phrasings)
    except EmbeddingError as error:
        logger.warning("Curated answer %s saved without embeddings: %s", faq.pk, error)
        faq.embeddings, faq.embedding_model = b"", ""
        return
    faq.embeddings, faq.embedding_model = faq_matching.vectors_to_bytes(vectors), model


def faq_embeddings_refresh(*, faq: Faq) -> Faq:
    """Embed a pair again (missing embeddings, or the embedding model changed)."""
    _embed(faq)
    if faq.embedding_model:
        Faq.objects.for_tenant_id(faq.tenant_id).filter(pk=faq.pk).update(
            embeddings=faq.embeddings, embedding_model=faq.embedding_model
        )
    return faq


def _duplicate(error: IntegrityError) -> Conflict:
    return Conflict(_("A curated answer with this question already exists."), code="duplicate")


def faq_create(
    *, tenant: Tenant, question: str, answer: str, alternatives: list[str] | None = None, enabled: bool = True
) -> Faq:
    question = " ".join(question.split())
    faq = Faq(
        tenant=tenant,
        question=question,
        question_key=faq_matching.question_key(question),
        alternatives=clean_alternatives(alternatives or [], question=question),
        answer=answer.strip(),
        enabled=enabled,
    )
    _embed(faq)
    try:
        with transaction.atomic():
            faq.save()
            audit_record(tenant=tenant, action="faq.create", target=faq, details={"question": faq.question})
    except IntegrityError as error:
        raise _duplicate(error) from error
    return faq


def faq_update(*, faq: Faq, data: dict) -> Faq:
    """Change some of question, alternatives, answer, enabled."""
    changed = []
    if "question" in data:
        faq.question = " ".join(data["question"].split())
        faq.question_key = faq_matching.question_key(faq.question)
        changed.append("question")
    if "answer" in data:
        faq.answer = data["answer"].strip()
        changed.append("answer")
    if "enabled" in data:
        faq.enabled = data["enabled"]
        changed.append("enabled")
    if "alternatives" in data or "question" in data:
        faq.alternatives = clean_alternatives(
            data.get("alternatives", faq.alternatives), question=faq.question
        )
        if "alternatives" in data:
            changed.append("alternatives")
    if "question" in changed or "alternatives" in changed:
        _embed(faq)
    try:
        with transaction.atomic():
            faq.save()
            audit_record(
                tenant=faq.tenant,
                action="faq.update",
                target=faq,
                details={"question": faq.question, "changed": changed},
            )
    except IntegrityError as error:
        raise _duplicate(error) from error
    return faq


@transaction.atomic
def faq_delete(*, faq: Faq) -> None:
    audit_record(tenant=faq.tenant, action="faq.delete", target=faq, details={"question": faq.question})
    faq.delete()


def faq_hit_record(*, tenant: Tenant, faq_id: int) -> None:
    """Count a question answered by the pair (one UPDATE; concurrent hits all count)."""
    Faq.objects.for_tenant(tenant).filter(pk=faq_id).update(
        hit_count=F("hit_count") + 1, last_hit_at=timezone.now()
    )


# --- CSV import ----------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    refused: int = 0
    rows: list[dict] = field(default_factory=list)

    def add(self, *, row: int, status: str, question: str, faq_id: int | None = None, error: str = ""):
        setattr(self, status, getattr(self, status) + 1)
        entry = {"row": row, "status": status, "question": question[:200], "id": faq_id}
        if error:
            entry["error"] = error
        self.rows.append(entry)

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "refused": self.refused, "rows": self.rows}


def decode_import(data: bytes) -> str:
    """The text of an imported CSV: UTF-8 with or without a BOM, Big5 (cp950) as Excel in
    Taiwan saves it, or what the extraction package recognises; 415 for anything else."""
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(
            _("The file is too large (at most %(size)d MB).") % {"size": MAX_IMPORT_BYTES // (1024 * 1024)}
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = None
    for encoding in ("utf-8", "cp950"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        text = decode(data, complete=True)
    if text is None or "\x00" in text:
        raise UnsupportedImport(_("Upload a CSV file (UTF-8 or Big5)."))
    return text


def _columns(header: list[str]) -> dict[str, int]:
    names = [cell.strip().lstrip("\ufeff").lower() for cell in header]
    columns = {}
    for column, accepted in _HEADERS.items():
        for index, name in enumerate(names):
            if name in accepted:
                columns[column] = index
                break
    return columns


def faq_import(*, tenant: Tenant, text: str) -> ImportReport:
    """Create or update pairs from CSV text (columns question, answer and optionally
    alternatives separated by `|`; a header row names them). A row whose question is already a
    pair (folded) updates it; a row without a question or an answer, or too long, is refused.
    Each row stands alone: one refused row does not stop the others."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise APIError(_("The file is empty."), code="validation_error")
    columns = _columns(rows[0])
    if "question" not in columns or "answer" not in columns:
        raise APIError(
            _("The first row must name the columns: question, answer and optionally alternatives."),
            code="validation_error",
        )
    if len(rows) - 1 > MAX_IMPORT_ROWS:
        raise PayloadTooLarge(_("Import at most %(count)d rows at a time.") % {"count": MAX_IMPORT_ROWS})
    existing = {faq.question_key: faq for faq in Faq.objects.for_tenant(tenant)}
    report = ImportReport()
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row=row) -> str:
            index = columns.get(name)
            return row[index].strip() if index is not None and index < len(row) else ""

        question, answer = " ".join(cell("question").split()), cell("answer")
        alternatives = [part for part in cell("alternatives").split(ALTERNATIVES_SEPARATOR) if part.strip()]
        error = _row_error(question=question, answer=answer, alternatives=alternatives)
        if error:
            report.add(row=number, status="refused", question=question, error=error)
            continue
        faq = existing.get(faq_matching.question_key(question))
        if faq is None:
            faq = faq_create(tenant=tenant, question=question, answer=answer, alternatives=alternatives)
            existing[faq.question_key] = faq
            report.add(row=number, status="created", question=question, faq_id=faq.pk)
        else:
            faq_update(faq=faq, data={"answer": answer, "alternatives": alternatives})
            report.add(row=number, status="updated", question=question, faq_id=faq.pk)
    audit_record(
        tenant=tenant,
        action="faq.import",
        details={"created": report.created, "updated": report.updated, "refused": report.refused},
    )
    return report


def _row_error(*, question: str, answer: str, alternatives: list[str]) -> str:
    if not faq_matching.question_key(question):
        return _("The question is empty.")
    if not answer:
        return _("The answer is empty.")
    if len(question) > MAX_QUESTION_LENGTH:
        return _("The question is longer than %(count)d characters.") % {"count": MAX_QUESTION_LENGTH}
    if len(answer) > MAX_ANSWER_LENGTH:
        return _("The answer is longer than %(count)d characters.") % {"count": MAX_ANSWER_LENGTH}
    if len(alternatives) > MAX_ALTERNATIVES or any(len(a) > MAX_QUESTION_LENGTH for a in alternatives):
        return _("At most %(count)d alternatives, each at most %(length)d characters.") % {
            "count": MAX_ALTERNATIVES,
            "length": MAX_QUESTION_LENGTH,
        }
    return ""


# --- CSV export ----------------------------------------------------------------------------

EXPORT_COLUMNS = ["question", "answer", "alternatives", "enabled", "hit_count", "last_hit_at"]


def faq_export_csv(faqs) -> str:
    """The pairs as CSV text with a BOM (so that Excel opens the Chinese intact), in the
    columns the import reads, and the figures after them."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for faq in faqs:
        writer.writerow(
            [
                faq.question,
                faq.answer,
                ALTERNATIVES_SEPARATOR.join(faq.alternatives),
                "true" if faq.enabled else "false",
                faq.hit_count,
                faq.last_hit_at.isoformat() if faq.last_hit_at else "",
            ]
        )
    return buffer.getvalue()


# --- Matching at chat time ------------------------------------------------------------------


@dataclass(frozen=True)
class FaqAnswer:
    faq_id: int
    question: str
    answer: str
    score: float


def faq_match(*, tenant: Tenant, question: str) -> FaqAnswer | None:
    """The tenant's enabled curated answer whose question matches `question` at or above the
    tenant's threshold, or None. Pairs whose embeddings are missing or stale are embedded
    again on the way (the only write); the hit is not recorded here (`faq_hit_record`)."""
    config = FaqSettings.for_tenant(tenant)
    if not config.enabled:
        return None
    faqs = list(faq_selectors.faq_enabled_for_matching(tenant=tenant))
    if not faqs:
        return None
    query_vector, model = faq_matching.embed_question(question)
    candidates = []
    for faq in faqs:
        vectors = None
        if query_vector is not None:
            if faq.embedding_model != model:
                faq_embeddings_refresh(faq=faq)
            vectors = faq_matching.vectors_from_bytes(faq.embeddings, len(faq.phrasings))
            if vectors is not None and vectors.shape[1] != query_vector.shape[0]:
                vectors = None
        candidates.append(faq_matching.Candidate(faq_id=faq.pk, phrasings=faq.phrasings, vectors=vectors))
    match = faq_matching.best_match(question, candidates, query_vector=query_vector)
    if match is None or match.score < config.threshold:
        return None
    chosen = next(faq for faq in faqs if faq.pk == match.faq_id)
    return FaqAnswer(faq_id=chosen.pk, question=chosen.question, answer=chosen.answer, score=match.score)
