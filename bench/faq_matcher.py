"""How well does the curated-answer matcher tell a rephrased question from a different one?
Precision and recall per threshold, on a labelled set built from DRCD dev.

    .venv/bin/python bench/faq_matcher.py              # the table (about a minute on 2 cores)
    .venv/bin/python bench/faq_matcher.py --rebuild    # rebuild bench/data/faq_matcher_set.json

The set (bench/data/faq_matcher_set.json, built deterministically by --rebuild):
- curated questions: the first question of each of 400 DRCD dev paragraphs (one "tenant");
- positives, each labelled with its curated question:
  - paraphrases made by rules a customer's rewording follows: a polite opening (請問, 我想知道,
    想請教一下), question words swapped for their synonyms (什麼/甚麼/啥, 為什麼/為何, 哪裡/何處,
    如何/怎麼, 多少/幾, 何時/什麼時候...), the particle changed or dropped, and a few reorderings
    ("X是什麼" / "什麼是X"); each differs from its curated question once folded;
  - the curated question in Simplified characters (OpenCC's table, as keywords.py folds);
- near-misses, labelled "no answer": another question on the same paragraph (same subject, same
  names, a different thing asked: the hardest negatives there are), each also paraphrased.

A query is answered when its best phrasing scores at or above the threshold; precision counts the
answered queries that got their own curated question (a near-miss answered is an error, so is a
positive answered with another pair), recall the positives answered correctly. Rule-made
paraphrases keep more words than people do: the recall here is an upper bound for free rewording,
the precision a fair test (near-misses share names and subject with their curated question).

Issue 15 asks for a precision of at least 0.98 at the default threshold: that figure, with the
recall there and the cost of matching, is what it hands to bench/run_all.py (`--results`);
`make bench` runs it with `--weights 0.5`, the chosen weight (all five take a few minutes).
"""

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_project.settings")
# One embedding thread: a 2-thread OpenMP team stalls whenever a neighbour holds a core (a
# shared machine took 250 s instead of about 90 to embed the set with 2).
os.environ.setdefault("EMBEDDING_THREADS", "1")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from _environment import Results, add_results_argument, machine  # noqa: E402

from knowledge import faq_matching  # noqa: E402
from knowledge.embedding import get_embedder  # noqa: E402
from knowledge.faq_settings import DEFAULT_THRESHOLD  # noqa: E402
from knowledge.keywords import _TRADITIONAL_TO_SIMPLIFIED  # noqa: E402

SET_PATH = ROOT / "bench" / "data" / "faq_matcher_set.json"
CURATED = 400
SEED = 15
PRECISION_TARGET = 0.98  # issue 15: a wrong verbatim answer is worse than none

_OPENINGS = ["請問", "我想知道", "想請教一下，", "請問一下", "不好意思，請問"]
_SYNONYMS = [
    ("為什麼", ["為何", "怎麼會"]),
    ("什麼時候", ["何時", "哪個時候"]),
    ("什麼", ["甚麼", "啥"]),
    ("哪裡", ["何處", "哪兒"]),
    ("哪一", ["哪個", "哪"]),
    ("如何", ["怎麼", "怎樣"]),
    ("怎麼", ["如何"]),
    ("多少", ["幾", "多少數量的"]),
    ("何時", ["什麼時候", "哪時"]),
    ("是誰", ["是哪位", "是什麼人"]),
    ("為何", ["為什麼"]),
    ("哪些", ["什麼"]),
]
_ENDINGS = ["？", "呢？", "", "?", "嗎？"]


def _drcd_path() -> Path:
    for base in (os.environ.get("EVAL_DIR"), ROOT.parent / "shared" / "eval", Path("/work/shared/eval")):
        if base and (Path(base) / "drcd" / "DRCD_dev.json").exists():
            return Path(base) / "drcd" / "DRCD_dev.json"
    raise SystemExit("DRCD_dev.json not found: set EVAL_DIR")


def paraphrase(question: str, rng: random.Random) -> str:
    body = question.rstrip("？?。 ")
    for word, replacements in _SYNONYMS:
        if word in body and rng.random() < 0.8:
            body = body.replace(word, rng.choice(replacements), 1)
            break
    moved = re.fullmatch(r"(.{2,})是(什麼|甚麼|啥)", body)
    if moved and rng.random() < 0.7:
        body = f"{moved.group(2)}是{moved.group(1)}"
    who = re.fullmatch(r"(誰)(.{3,})", body)
    if who and rng.random() < 0.7:
        body = f"{who.group(2)}的是誰"
    body = body.removesuffix("呢")
    opening = rng.choice(_OPENINGS) if rng.random() < 0.8 else ""
    text = f"{opening}{body}{rng.choice(_ENDINGS)}"
    if faq_matching.question_key(text) == faq_matching.question_key(question):
        text = f"{rng.choice(_OPENINGS[:2])}{body}嗎？"
    return text


def build_set() -> dict:
    rng = random.Random(SEED)
    data = json.loads(_drcd_path().read_text(encoding="utf-8"))["data"]
    paragraphs = [
        paragraph for article in data for paragraph in article["paragraphs"] if len(paragraph["qas"]) >= 2
    ]
    rng.shuffle(paragraphs)
    curated, queries = [], []
    for index, paragraph in enumerate(paragraphs[:CURATED]):
        first, other = paragraph["qas"][0]["question"], paragraph["qas"][1]["question"]
        curated.append({"id": index, "question": first})
        queries.append({"text": paraphrase(first, rng), "expected": index, "kind": "paraphrase"})
        queries.append(
            {"text": first.translate(_TRADITIONAL_TO_SIMPLIFIED), "expected": index, "kind": "simplified"}
        )
        queries.append({"text": other, "expected": None, "kind": "near-miss"})
        queries.append({"text": paraphrase(other, rng), "expected": None, "kind": "near-miss paraphrased"})
    return {"source": "DRCD dev", "seed": SEED, "curated": curated, "queries": queries}


def evaluate(labelled: dict, weights: list[float], thresholds: list[float]) -> dict:
    embedder = get_embedder()
    started = time.perf_counter()
    curated_vectors = embedder.embed_queries([item["question"] for item in labelled["curated"]])
    query_vectors = embedder.embed_queries([query["text"] for query in labelled["queries"]])
    embedding_s = time.perf_counter() - started
    candidates = [
        faq_matching.Candidate(
            faq_id=item["id"], phrasings=[item["question"]], vectors=curated_vectors[i : i + 1]
        )
        for i, item in enumerate(labelled["curated"])
    ]
    results = {}
    for weight in weights:
        started = time.perf_counter()
        best = [
            faq_matching.best_match(query["text"], candidates, query_vector=vector, dense_weight=weight)
            for query, vector in zip(labelled["queries"], query_vectors, strict=True)
        ]
        match_ms = (time.perf_counter() - started) * 1000 / len(best)
        rows = []
        for threshold in thresholds:
            answered = correct = positives = found = 0
            by_kind: dict[str, list[int]] = {}
            for query, match in zip(labelled["queries"], best, strict=True):
                hit = match is not None and match.score >= threshold
                right = hit and match.faq_id == query["expected"]
                answered += hit
                correct += right
                counts = by_kind.setdefault(query["kind"], [0, 0])
                counts[0] += 1
                counts[1] += right if query["expected"] is not None else hit
                if query["expected"] is not None:
                    positives += 1
                    found += right
            rows.append(
                {
                    "threshold": threshold,
                    "precision": correct / answered if answered else 1.0,
                    "recall": found / positives,
                    "answered": answered,
                    "by_kind": {kind: counts[1] / counts[0] for kind, counts in by_kind.items()},
                }
            )
        results[weight] = {"rows": rows, "match_ms_per_query_400_pairs": match_ms}
    return {"embedding_s": embedding_s, "model": embedder.name, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the labelled set from DRCD dev")
    parser.add_argument("--weights", default="0,0.3,0.5,0.7,1", help="dense weights to compare")
    add_results_argument(parser)
    arguments = parser.parse_args()
    results = Results(arguments.results)
    if arguments.rebuild or not SET_PATH.exists():
        SET_PATH.parent.mkdir(parents=True, exist_ok=True)
        SET_PATH.write_text(json.dumps(build_set(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    labelled = json.loads(SET_PATH.read_text(encoding="utf-8"))
    weights = [float(value) for value in arguments.weights.split(",")]
    thresholds = sorted({round(value, 2) for value in np.arange(0.6, 1.001, 0.02)} | {DEFAULT_THRESHOLD})
    print(f"Machine: {machine()}")
    report = evaluate(labelled, weights, thresholds)
    kinds = sorted({query["kind"] for query in labelled["queries"]})
    with results.section():
        print(
            f"{len(labelled['curated'])} curated questions, {len(labelled['queries'])} queries "
            f"(`{SET_PATH.relative_to(ROOT)}`); model {report['model']}; embedding all: "
            f"{report['embedding_s']:.1f} s. The default: dense weight {faq_matching.DENSE_WEIGHT}, "
            f"threshold {DEFAULT_THRESHOLD:.2f} (in bold)."
        )
    for weight, result in report["results"].items():
        with results.section():
            print(
                f"## Dense weight {weight}: {result['match_ms_per_query_400_pairs']:.2f} ms a query "
                "against 400 pairs\n"
            )
            print("| threshold | precision | recall | answered | " + " | ".join(kinds) + " |")
            print("| --- " * (4 + len(kinds)) + "|")
            for row in result["rows"]:
                shares = " | ".join(f"{row['by_kind'].get(kind, 0):.3f}" for kind in kinds)
                cells = f"{row['threshold']:.2f} | {row['precision']:.3f} | {row['recall']:.3f}"
                if weight == faq_matching.DENSE_WEIGHT and row["threshold"] == DEFAULT_THRESHOLD:
                    cells = " | ".join(f"**{cell}**" for cell in cells.split(" | "))
                print(f"| {cells} | {row['answered']} | {shares} |")
        if weight != faq_matching.DENSE_WEIGHT:
            continue
        default = next(row for row in result["rows"] if row["threshold"] == DEFAULT_THRESHOLD)
        results.figure(
            f"curated-answer matcher: precision at the default threshold {DEFAULT_THRESHOLD:.2f} (target ≥ 98%)",
            default["precision"] * 100,
            "%",
            floor=PRECISION_TARGET * 100,
            floor_name="issue 15's target",
            note=f"{default['answered']} of {len(labelled['queries'])} queries answered",
        )
        results.figure(
            f"curated-answer matcher: recall at the default threshold {DEFAULT_THRESHOLD:.2f}",
            default["recall"] * 100,
            "%",
            note="rule-made paraphrases and Simplified copies: an upper bound for free rewording",
        )
        results.figure(
            "curated-answer matcher: matching one question against 400 pairs",
            result["match_ms_per_query_400_pairs"],
            "ms",
            note="its query embedding not included",
        )


if __name__ == "__main__":
    main()
