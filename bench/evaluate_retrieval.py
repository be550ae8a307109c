"""Retrieval quality of the platform on the two eval collections in ../shared/eval.

Each collection is loaded into a fresh tenant through the platform's own path (the upload
service, then the ingestion service the Celery worker runs), in a throw-away database and
Milvus Lite index, and every question is asked in each mode:

- DRCD dev (Traditional Chinese): answer-hit@1/5/10, a hit when a top-k chunk contains the
  question's first answer;
- Cranfield (English): nDCG@10 (gain 5 - grade for grades 1-4) and recall@100 (grades 1-3),
  each document scored by its best chunk.

Run it with `make eval` (or `.venv/bin/python bench/evaluate_retrieval.py --help`).
"""

import argparse
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from _environment import prepare_environment as _prepare_environment

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or ROOT.parent / "shared" / "eval")


# --- Collections ----------------------------------------------------------------------------


def load_drcd(limit: int | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(documents as (title, text), questions as (question, answer))."""
    data = json.loads((EVAL_DIR / "drcd" / "DRCD_dev.json").read_text(encoding="utf-8"))["data"]
    if limit:
        data = data[:limit]
    documents, questions = [], []
    for article in data:
        paragraphs = [paragraph["context"] for paragraph in article["paragraphs"]]
        documents.append((article["title"], article["title"] + "\n\n" + "\n\n".join(paragraphs)))
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                questions.append((qa["question"], qa["answers"][0]["text"]))
    return documents, questions


def _smart_records(text: str) -> list[dict[str, str]]:
    records, current, field = [], None, None
    for line in text.splitlines():
        match = re.match(r"^\.([ITABW])\b\s*(.*)$", line)
        if match:
            tag, rest = match.groups()
            if tag == "I":
                current = {"I": rest.strip()}
                records.append(current)
                field = None
            else:
                field = tag
                current[field] = ""
            continue
        if current is not None and field:
            current[field] += line + "\n"
    return records


def load_cranfield(limit: int | None):
    documents = _smart_records(
        (EVAL_DIR / "cranfield" / "cran.all.1400").read_text(encoding="utf-8", errors="replace")
    )
    queries = _smart_records(
        (EVAL_DIR / "cranfield" / "cran.qry").read_text(encoding="utf-8", errors="replace")
    )
    judgments: dict[int, dict[str, int]] = defaultdict(dict)
    for line in (EVAL_DIR / "cranfield" / "cranqrel").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            judgments[int(parts[0])][parts[1]] = int(parts[2])
    docs = []
    for record in documents:
        title, body = record.get("T", "").strip(), record.get("W", "").strip()
        text = f"{title}\n\n{body}".strip()
        if text:  # a few records are empty: the platform (rightly) refuses empty files
            docs.append((record["I"], title or record["I"], text))
    if limit:
        docs = docs[:limit]
    numbered = [(number, record.get("W", "").strip()) for number, record in enumerate(queries, start=1)]
    return docs, numbered, judgments


# --- Metrics --------------------------------------------------------------------------------


def ndcg_at_10(ranked_docs: list[str], grades: dict[str, int]) -> float:
    def gain(document: str) -> float:
        grade = grades.get(document)
        return float(5 - grade) if grade in (1, 2, 3, 4) else 0.0

    dcg = sum(gain(document) / math.log2(rank + 2) for rank, document in enumerate(ranked_docs[:10]))
    ideal = sorted((gain(document) for document in grades), reverse=True)[:10]
    idcg = sum(value / math.log2(rank + 2) for rank, value in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_100(ranked_docs: list[str], grades: dict[str, int]) -> float | None:
    relevant = {document for document, grade in grades.items() if grade in (1, 2, 3)}
    if not relevant:
        return None
    return len(relevant & set(ranked_docs[:100])) / len(relevant)


# --- Running --------------------------------------------------------------------------------


def ingest(tenant, documents, *, label: str, scanned: bool = False) -> tuple[dict[int, str], float, int]:
    """Upload and ingest (title, text, key) documents; returns platform id -> key. `scanned`:
    each text is uploaded as an image-only PDF of its pages (testsupport/scans.py), so that the
    platform has to read it back by text recognition (OCR)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge import services
    from testsupport.scans import scanned_pages, scanned_pdf_bytes

    mapping = {}
    started = time.perf_counter()
    chunks = 0
    for index, (key, title, text) in enumerate(documents, start=1):
        if scanned:
            upload = SimpleUploadedFile(
                f"{key}.pdf", scanned_pdf_bytes(scanned_pages(text)), content_type="application/pdf"
            )
        else:
            upload = SimpleUploadedFile(f"{key}.txt", text.encode("utf-8"), content_type="text/plain")
        # With CELERY_TASK_ALWAYS_EAGER the queued ingestion task runs on commit, right here.
        document = services.document_upload(tenant=tenant, uploaded_by=None, upload=upload, title=title)
        document.refresh_from_db()
        if document.status != "ready":
            raise SystemExit(f"{label}: document {key} ended {document.status}: {document.error}")
        chunks += document.chunk_count
        mapping[document.pk] = key
        if index % 100 == 0 or index == len(documents) or scanned:
            print(f"  {label}: ingested {index}/{len(documents)} documents, {chunks} chunks", flush=True)
    return mapping, time.perf_counter() - started, chunks


def candidate_lists(tenant, query: str, limit: int):
    """The dense and keyword candidates hybrid search starts from, keyed by chunk id."""
    from knowledge import retrieval

    vector_hits, _ = retrieval.search(tenant=tenant, query=query, mode="vector", top_k=limit)
    keyword_hits, _ = retrieval.search(tenant=tenant, query=query, mode="keyword", top_k=limit)
    dense = {hit.chunk_id: hit.score for hit in vector_hits}
    keyword = {hit.chunk_id: hit.score for hit in keyword_hits}
    texts = {hit.chunk_id: (hit.text, hit.document_id) for hit in [*vector_hits, *keyword_hits]}
    return dense, keyword, texts


def ranked(scores: dict[int, float]) -> list[int]:
    return sorted(scores, key=scores.get, reverse=True)


def configurations():
    from knowledge.retrieval import RetrievalSettings

    default = RetrievalSettings()
    variants = {"hybrid (default)": default}
    for dense_weight in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        # The same weights whatever the query's language, to measure each language's best.
        variants[f"weighted {dense_weight:.1f}/{1 - dense_weight:.1f}"] = RetrievalSettings(
            fusion="weighted",
            dense_weight=dense_weight,
            keyword_weight=1 - dense_weight,
            chinese_dense_weight=dense_weight,
            chinese_keyword_weight=1 - dense_weight,
        )
    variants["rrf k=60"] = RetrievalSettings(
        fusion="rrf",
        dense_weight=1.0,
        keyword_weight=1.0,
        chinese_dense_weight=1.0,
        chinese_keyword_weight=1.0,
    )
    return variants


def evaluate_drcd(tenant, questions, misses: list | None = None) -> dict[str, dict[str, float]]:
    """Answer-hit@1/5/10 per mode; `misses`, when given, collects the questions the default
    hybrid search misses at 5 (see `explain_miss`)."""
    from knowledge.retrieval import for_query, fuse

    variants = configurations()
    hits = defaultdict(lambda: [0, 0, 0])
    for number, (question, answer) in enumerate(questions, start=1):
        dense, keyword, texts = candidate_lists(tenant, question, 50)
        rankings = {"vector": ranked(dense), "keyword": ranked(keyword)}
        for name, config in variants.items():
            rankings[name] = ranked(fuse(dense, keyword, for_query(config, question)))
        for name, order in rankings.items():
            for slot, k in enumerate((1, 5, 10)):
                if any(answer in texts[chunk_id][0] for chunk_id in order[:k]):
                    hits[name][slot] += 1
        if misses is not None:
            top = rankings["hybrid (default)"][:5]
            if not any(answer in texts[chunk_id][0] for chunk_id in top):
                misses.append(
                    explain_miss(tenant, question, answer, [texts[chunk_id][0] for chunk_id in top])
                )
        if number % 500 == 0:
            print(f"  DRCD: {number}/{len(questions)} questions", flush=True)
    return {
        name: {
            "hit@1": h[0] / len(questions),
            "hit@5": h[1] / len(questions),
            "hit@10": h[2] / len(questions),
        }
        for name, h in hits.items()
    }


def explain_miss(tenant, question: str, answer: str, passages: list[str]) -> dict:
    """Why a question missed: which chunks contain its answer (then ranking is at fault), or,
    when none does, whether the answer runs across two consecutive chunks of a document (a
    page or chunk boundary cuts it) or where the closest text is (a misread character)."""
    from difflib import SequenceMatcher

    from knowledge.models import Chunk

    chunks = list(Chunk.objects.for_tenant_id(tenant.pk).order_by("document_id", "ordinal"))
    miss = {"question": question, "answer": answer, "top5": [passage[:160] for passage in passages]}
    holding = [
        f"document {c.document_id} chunk {c.ordinal} page {c.page}" for c in chunks if answer in c.text
    ]
    if holding:
        miss["cause"] = "ranking: the answer is in " + "; ".join(holding)
        return miss
    for first, second in zip(chunks, chunks[1:], strict=False):
        if first.document_id != second.document_id:
            continue
        for gap in ("", " ", "\n"):
            joined = first.text + gap + second.text
            at = joined.find(answer)
            if at != -1 and at < len(first.text) < at + len(answer):
                miss["cause"] = (
                    f"cut between chunk {first.ordinal} (page {first.page}) and {second.ordinal} "
                    f"(page {second.page}) of document {first.document_id}: "
                    f"...{first.text[-60:]!r} | {second.text[:60]!r}..."
                )
                return miss
    best = (0.0, "", None)
    for chunk in chunks:
        for start in range(0, max(1, len(chunk.text) - len(answer) + 1)):
            window = chunk.text[start : start + len(answer)]
            ratio = SequenceMatcher(None, answer, window).ratio()
            if ratio > best[0]:
                context = chunk.text[max(0, start - 20) : start + len(answer) + 20]
                best = (ratio, context, chunk)
    ratio, context, chunk = best
    miss["cause"] = (
        f"not in any chunk; closest ({ratio:.2f}) in document {chunk.document_id if chunk else '-'} "
        f"chunk {chunk.ordinal if chunk else '-'} page {chunk.page if chunk else '-'}: {context!r}"
    )
    return miss


def evaluate_cranfield(tenant, queries, judgments, mapping) -> dict[str, dict[str, float]]:
    from knowledge.retrieval import for_query, fuse

    variants = configurations()
    totals = defaultdict(lambda: {"ndcg": 0.0, "recall": 0.0, "recall_n": 0})
    for number, query in queries:
        grades = judgments.get(number, {})
        dense, keyword, texts = candidate_lists(tenant, query, 300)
        rankings = {"vector": ranked(dense), "keyword": ranked(keyword)}
        for name, config in variants.items():
            rankings[name] = ranked(fuse(dense, keyword, for_query(config, query)))
        for name, order in rankings.items():
            documents: list[str] = []
            for chunk_id in order:
                key = mapping[texts[chunk_id][1]]
                if key not in documents:
                    documents.append(key)
            totals[name]["ndcg"] += ndcg_at_10(documents, grades)
            recall = recall_at_100(documents, grades)
            if recall is not None:
                totals[name]["recall"] += recall
                totals[name]["recall_n"] += 1
    return {
        name: {"nDCG@10": t["ndcg"] / len(queries), "recall@100": t["recall"] / max(t["recall_n"], 1)}
        for name, t in totals.items()
    }


def table(results: dict[str, dict[str, float]]) -> str:
    metrics = list(next(iter(results.values())))
    lines = ["| mode | " + " | ".join(metrics) + " |", "| --- |" + " --- |" * len(metrics)]
    for name, values in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[metric]:.3f}" for metric in metrics) + " |")
    return "\n".join(lines)


def print_misses(label: str, misses: list | None, report: dict) -> None:
    if misses is None:
        return
    report["misses"] = misses
    print(f"{label}: {len(misses)} questions missed at 5 (hybrid default)")
    for miss in misses:
        print(f"- Q: {miss['question']}\n  A: {miss['answer']}\n  {miss['cause']}")
        for rank, passage in enumerate(miss["top5"], start=1):
            print(f"    {rank}. {passage!r}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--drcd-articles", type=int, default=None, help="only the first N DRCD articles")
    parser.add_argument(
        "--cranfield-documents", type=int, default=None, help="only the first N Cranfield documents"
    )
    parser.add_argument(
        "--drcd-scanned",
        action="store_true",
        help="also ingest the DRCD articles as image-only PDFs (read back by OCR) and compare",
    )
    parser.add_argument("--skip-drcd", action="store_true")
    parser.add_argument("--skip-cranfield", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--misses",
        action="store_true",
        help="print the DRCD questions the default hybrid search misses at 5, with the answer, the "
        "top passages and where the answer is (or is cut, or misread) in the indexed chunks",
    )
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="platform-eval-") as workdir:
        server = _prepare_environment(Path(workdir))
        try:
            sys.path.insert(0, str(ROOT))
            import django

            django.setup()
            from django.conf import settings
            from django.core.management import call_command

            from knowledge.embedding import get_embedder
            from tenants.services import plan_resolve, tenant_create

            call_command("migrate", verbosity=0)
            embedder = get_embedder()
            report = {
                "date": datetime.now(UTC).date().isoformat(),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                "embedding": embedder.name,
                "chunk_size": settings.CHUNK_SIZE,
                "chunk_overlap": settings.CHUNK_OVERLAP,
                "chunk_size_alphabetic": settings.CHUNK_SIZE_ALPHABETIC,
                "chunk_overlap_alphabetic": settings.CHUNK_OVERLAP_ALPHABETIC,
            }
            print(
                f"Embedding model: {embedder.name}; chunks of {settings.CHUNK_SIZE} characters, overlap "
                f"{settings.CHUNK_OVERLAP} (alphabetic scripts: {settings.CHUNK_SIZE_ALPHABETIC}, "
                f"{settings.CHUNK_OVERLAP_ALPHABETIC})"
            )
            if not arguments.skip_drcd:
                documents, questions = load_drcd(arguments.drcd_articles)
                tenant = tenant_create(name="DRCD", plan=plan_resolve(name="enterprise"))
                _, seconds, chunks = ingest(
                    tenant, [(str(i), title, text) for i, (title, text) in enumerate(documents)], label="DRCD"
                )
                print(
                    f"DRCD: {len(documents)} documents, {chunks} chunks in {seconds:.0f} s; {len(questions)} questions"
                )
                misses = [] if arguments.misses else None
                report["drcd"] = {
                    "documents": len(documents),
                    "chunks": chunks,
                    "ingest_seconds": seconds,
                    "questions": len(questions),
                    "results": evaluate_drcd(tenant, questions, misses),
                }
                print(table(report["drcd"]["results"]))
                print_misses("DRCD", misses, report["drcd"])
                if arguments.drcd_scanned:
                    tenant = tenant_create(name="DRCD scanned", plan=plan_resolve(name="enterprise"))
                    _, seconds, chunks = ingest(
                        tenant,
                        [(str(i), title, text) for i, (title, text) in enumerate(documents)],
                        label="DRCD scanned",
                        scanned=True,
                    )
                    print(f"DRCD as scanned PDFs: {chunks} chunks in {seconds:.0f} s (OCR included)")
                    misses = [] if arguments.misses else None
                    report["drcd_scanned"] = {
                        "documents": len(documents),
                        "chunks": chunks,
                        "ingest_seconds": seconds,
                        "results": evaluate_drcd(tenant, questions, misses),
                    }
                    print(table(report["drcd_scanned"]["results"]))
                    print_misses("DRCD as scanned PDFs", misses, report["drcd_scanned"])
            if not arguments.skip_cranfield:
                documents, queries, judgments = load_cranfield(arguments.cranfield_documents)
                tenant = tenant_create(name="Cranfield", plan=plan_resolve(name="enterprise"))
                mapping, seconds, chunks = ingest(tenant, documents, label="Cranfield")
                print(
                    f"Cranfield: {len(documents)} documents, {chunks} chunks in {seconds:.0f} s; {len(queries)} queries"
                )
                report["cranfield"] = {
                    "documents": len(documents),
                    "chunks": chunks,
                    "queries": len(queries),
                    "results": evaluate_cranfield(tenant, queries, judgments, mapping),
                }
                print(table(report["cranfield"]["results"]))
            if arguments.json:
                arguments.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
