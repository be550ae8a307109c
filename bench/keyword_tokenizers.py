"""Which tokenizer should keyword (BM25) search use? Measured on the two eval collections.

    .venv/bin/python bench/keyword_tokenizers.py            # everything, a few minutes on 2 cores
    .venv/bin/python bench/keyword_tokenizers.py --quick    # the chosen tokenizer only

Plain BM25 (k1 1.2, b 0.75) through `knowledge.keywords` (`document_weights`, `query_weights`),
scored in memory as a scipy sparse matrix product, so that only the tokenizer changes between rows:

- DRCD dev (Traditional Chinese): the 1,000 paragraphs are the documents, the 3,524 questions the
  queries; answer-hit@k when one of the top k paragraphs contains the question's first answer.
  "simplified queries" asks the same questions converted to Simplified Chinese (OpenCC t2s), as a
  visitor from the mainland or text pasted from a Simplified source would.
- Cranfield (English): title and abstract are the document; nDCG@10 with gain 5 - grade for grades
  1-4 (-1, minimal relevance, gains 0; linear gain, log2 discount, ideal from all judgments) and
  recall@100 over grades 1-3 (queries without such judgments left out).
- Speed: DRCD paragraphs cut into about 200-character chunks by `knowledge.chunking`, all tokenized
  (best of 5, one core); one-off start-up (jieba's dictionary, OpenCC) is timed apart in a fresh
  process. "postings read/query": the (term, paragraph) pairs an inverted index reads per query,
  the cost of a keyword search in Milvus.
- The chosen tokenizer is also run on DRCD articles chunked as the platform chunks them.

The eval data is read in place from ../shared/eval (README there); set EVAL_DIR to read it elsewhere.
Needs, besides the project's own requirements, jieba and opencc-python-reimplemented for the rows
that compare with them (OpenCC also makes the Simplified questions).
"""

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse, stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge import keywords  # noqa: E402
from knowledge.chunking import chunk_sections  # noqa: E402

EVAL_DIR = Path(os.environ.get("EVAL_DIR", ROOT.parent / "shared" / "eval"))
Tokenizer = Callable[[str], list[str]]

# ---------------------------------------------------------------------------------------------
# Candidate tokenizers. All of them NFKC-normalise, lower-case, split CJK runs from other word
# runs and drop punctuation; they differ in what they make of each run.

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_RUNS = re.compile(f"(?P<cjk>[{_HAN}{_KANA}]+)|(?P<word>[^\\W_{_HAN}{_KANA}]+)")

# Lucene's default English stop set (EnglishAnalyzer), 33 words.
LUCENE_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)


def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


def _character_fold() -> dict[int, str]:
    """OpenCC's Traditional-to-Simplified character table (first candidate), for str.translate."""
    import opencc

    table = {}
    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        source, _, targets = line.partition("\t")
        if len(source) == 1 and targets:
            table[ord(source)] = targets.split()[0]
    return table


def _bigrams(run: str, unigrams: bool) -> list[str]:
    if len(run) == 1:
        return [run]
    pairs = [run[index : index + 2] for index in range(len(run) - 1)]
    return [*run, *pairs] if unigrams else pairs


def _harman_s_stem(word: str) -> str:
    """Harman's (1991) S-stemmer: plural endings only."""
    if len(word) > 3 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if len(word) > 2 and word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class Candidate:
    name: str
    tokenize: Tokenizer


def make_candidate(name: str, *, chinese: str, english: str = "words", stopwords=frozenset()) -> Candidate:
    convert = lambda text: text  # noqa: E731
    if chinese.startswith("opencc-t2s"):
        converter = _opencc("t2s")
        convert = converter.convert
    elif chinese.startswith("fold"):
        fold = _character_fold()
        convert = lambda text: text.translate(fold)  # noqa: E731

    if "jieba" in chinese:
        import jieba

        jieba.setLogLevel(60)
        cut = jieba.lcut_for_search if "search" in chinese else jieba.lcut

        def cjk(run: str) -> list[str]:
            terms = cut(run)
            if chinese.endswith("+bigrams"):
                terms = terms + _bigrams(run, unigrams=False)
            return terms

    elif chinese.endswith("bigrams") or chinese.endswith("bigrams+unigrams"):
        with_unigrams = chinese.endswith("bigrams+unigrams")
        cjk = lambda run: _bigrams(run, with_unigrams)  # noqa: E731
    else:
        cjk = list  # unigrams

    stem = lambda word: word  # noqa: E731
    if english in ("porter", "english"):
        import snowballstemmer

        # Words repeat: a cache makes the pure-Python stemmer about as fast as the rest.
        stem = functools.lru_cache(maxsize=65536)(snowballstemmer.stemmer(english).stemWord)
    elif english == "s-stem":
        stem = _harman_s_stem

    def tokenize(text: str) -> list[str]:
        terms: list[str] = []
        text = convert(unicodedata.normalize("NFKC", text).lower())
        for match in _RUNS.finditer(text):
            run = match.group()
            if match.lastgroup == "cjk":
                terms.extend(cjk(run))
            elif run not in stopwords:
                terms.append(stem(run))
        return terms

    return Candidate(name, tokenize)


FOLD_BIGRAMS = "t2s character fold, then bigrams"
FOLD_BIGRAMS_UNIGRAMS = "t2s character fold, then bigrams + unigrams"
PAIRED_COMPARISONS = [
    (FOLD_BIGRAMS, FOLD_BIGRAMS_UNIGRAMS),
    ("OpenCC t2s, then jieba search mode", FOLD_BIGRAMS_UNIGRAMS),
]

# ---------------------------------------------------------------------------------------------
# BM25 in memory, through the platform's own weighting functions.


class Index:
    def __init__(self, documents: list[list[str]]):
        self.count = len(documents)
        average_length = sum(map(len, documents)) / max(self.count, 1)
        self.columns: dict[int, int] = {}
        rows, columns, values = [], [], []
        for row, terms in enumerate(documents):
            for identifier, weight in keywords.document_weights(terms, avg_length=average_length).items():
                rows.append(row)
                columns.append(self.columns.setdefault(identifier, len(self.columns)))
                values.append(weight)
        self.matrix = sparse.csr_matrix((values, (rows, columns)), shape=(self.count, len(self.columns)))
        frequencies = np.bincount(columns, minlength=len(self.columns))
        self.document_frequency = {
            identifier: int(frequencies[column]) for identifier, column in self.columns.items()
        }
        self.nonzeros_per_document = self.matrix.nnz / max(self.count, 1)

    def postings_read(self, terms: list[str]) -> int:
        """How many (term, document) postings an inverted index reads to answer the query."""
        weights = keywords.query_weights(
            terms, document_frequency=self.document_frequency, document_count=self.count
        )
        return sum(self.document_frequency[identifier] for identifier in weights)

    def search(self, terms: list[str], k: int) -> list[int]:
        weights = keywords.query_weights(
            terms, document_frequency=self.document_frequency, document_count=self.count
        )
        if not weights:
            return []
        query = np.zeros(len(self.columns))
        for identifier, weight in weights.items():
            query[self.columns[identifier]] = weight
        scores = self.matrix @ query
        ranked = np.argsort(-scores, kind="stable")[:k]
        return [int(row) for row in ranked if scores[row] > 0]


# ---------------------------------------------------------------------------------------------
# Collections and metrics.


@dataclass
class Drcd:
    paragraphs: list[str]
    articles: list[str]  # title, then its paragraphs separated by blank lines
    questions: list[str]
    answers: list[str]
    answer_paragraphs: list[set[int]]  # paragraphs that contain each question's first answer


def load_drcd() -> Drcd:
    data = json.loads((EVAL_DIR / "drcd" / "DRCD_dev.json").read_text(encoding="utf-8"))["data"]
    paragraphs = [paragraph["context"] for article in data for paragraph in article["paragraphs"]]
    questions, answers = [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                answers.append(qa["answers"][0]["text"])
    answer_paragraphs = [containing(answer, paragraphs) for answer in answers]
    articles = [
        "\n\n".join([article["title"], *(paragraph["context"] for paragraph in article["paragraphs"])])
        for article in data
    ]
    return Drcd(paragraphs, articles, questions, answers, answer_paragraphs)


def containing(answer: str, passages: list[str]) -> set[int]:
    return {index for index, passage in enumerate(passages) if answer in passage}


def drcd_hits(index: Index, queries: list[list[str]], relevant_sets: list[set[int]]) -> dict[int, np.ndarray]:
    """Per question, whether a top-k passage holds the answer, for k 1, 5 and 10."""
    hits = {k: np.zeros(len(queries), dtype=bool) for k in (1, 5, 10)}
    for number, (terms, relevant) in enumerate(zip(queries, relevant_sets, strict=True)):
        ranked = index.search(terms, 10)
        for k, found in hits.items():
            found[number] = any(row in relevant for row in ranked[:k])
    return hits


def evaluate_drcd(index: Index, queries: list[list[str]], relevant_sets: list[set[int]]) -> dict[str, float]:
    return {f"hit@{k}": float(found.mean()) for k, found in drcd_hits(index, queries, relevant_sets).items()}


def paired_comparison(baseline: np.ndarray, candidate: np.ndarray) -> str:
    """Questions the candidate gets and the baseline misses, the reverse, and a two-sided sign test."""
    wins, losses = int((candidate & ~baseline).sum()), int((baseline & ~candidate).sum())
    p_value = stats.binomtest(wins, wins + losses).pvalue if wins + losses else 1.0
    return f"better on {wins} questions, worse on {losses} (sign test p = {p_value:.3f})"


@dataclass
class Cranfield:
    documents: list[str]
    queries: list[str]
    grades: dict[int, dict[int, int]]  # query number (1-based) -> document row -> grade


def _smart_records(path: Path) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    field = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(".I"):
            records.append({})
            field = None
        elif re.fullmatch(r"\.[A-Z]", line.strip()):
            field = line.strip()[1]
            records[-1][field] = ""
        elif field:
            records[-1][field] += line + "\n"
    return records


def load_cranfield() -> Cranfield:
    folder = EVAL_DIR / "cranfield"
    documents = [
        f"{record.get('T', '')}\n{record.get('W', '')}" for record in _smart_records(folder / "cran.all.1400")
    ]
    queries = [record.get("W", "") for record in _smart_records(folder / "cran.qry")]
    grades: dict[int, dict[int, int]] = {}
    for line in (folder / "cranqrel").read_text().split("\n"):
        if line.strip():
            query, document, grade = (int(value) for value in line.split())
            grades.setdefault(query, {})[document - 1] = grade
    return Cranfield(documents, queries, grades)


def _gain(grade: int) -> int:
    return 5 - grade if 1 <= grade <= 4 else 0


def evaluate_cranfield(index: Index, queries: list[list[str]], cranfield: Cranfield) -> dict[str, float]:
    ndcg, recalls = [], []
    for number, terms in enumerate(queries, start=1):
        judged = cranfield.grades.get(number, {})
        ranked = index.search(terms, 100)
        dcg = sum(_gain(judged.get(row, 0)) / np.log2(rank + 2) for rank, row in enumerate(ranked[:10]))
        ideal_gains = sorted((_gain(grade) for grade in judged.values()), reverse=True)[:10]
        ideal = sum(gain / np.log2(rank + 2) for rank, gain in enumerate(ideal_gains))
        ndcg.append(dcg / ideal if ideal else 0.0)
        relevant = {row for row, grade in judged.items() if 1 <= grade <= 3}
        if relevant:
            recalls.append(len(relevant & set(ranked)) / len(relevant))
    return {"nDCG@10": float(np.mean(ndcg)), "recall@100": float(np.mean(recalls))}


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    text: str
    page: int | None = None
    heading: str | None = None


def speed(candidate: Candidate, texts: list[str]) -> float:
    """Texts tokenized per second, best of 5, after a warm-up (one-off start-up excluded)."""
    candidate.tokenize(texts[0])
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for text in texts:
            candidate.tokenize(text)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


_STARTUP_PROBES = {
    "jieba dictionary": "import jieba; jieba.setLogLevel(60); jieba.initialize()",
    "OpenCC t2s converter": "import opencc; opencc.OpenCC('t2s').convert('臺灣')",
    "import knowledge.keywords": "from knowledge.keywords import tokenize; tokenize('臺灣 flows')",
}


def startup_costs() -> str:
    """Seconds each one-off start-up takes in a fresh interpreter (beyond starting Python)."""

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, check=True)  # noqa: S603
        return time.perf_counter() - started

    baseline = min(run("pass") for _ in range(3))
    costs = {name: min(run(code) for _ in range(3)) - baseline for name, code in _STARTUP_PROBES.items()}
    return ", ".join(f"{name} {seconds:.2f}" for name, seconds in costs.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="measure only knowledge.keywords.tokenize")
    arguments = parser.parse_args()

    drcd = load_drcd()
    cranfield = load_cranfield()
    simplified_questions = [_opencc("t2s").convert(question) for question in drcd.questions]
    speed_chunks = [
        chunk.text
        for chunk in chunk_sections([_Section(text) for text in drcd.paragraphs], size=200, overlap=0)
    ]
    speed_chunks = [text for text in speed_chunks if len(text) >= 150]
    print(
        f"DRCD: {len(drcd.paragraphs)} paragraphs, {len(drcd.questions)} questions; Cranfield: "
        f"{len(cranfield.documents)} documents, {len(cranfield.queries)} queries; speed: {len(speed_chunks)} "
        f"chunks of {np.mean([len(text) for text in speed_chunks]):.0f} characters on average\n"
    )

    chosen = Candidate("knowledge.keywords.tokenize (chosen)", keywords.tokenize)
    if arguments.quick:
        chinese_rows, english_rows, chunked_rows = [chosen], [chosen], [chosen]
    else:
        chinese_rows = [
            make_candidate("CJK unigrams", chinese="unigrams"),
            make_candidate("jieba (precise) on the Traditional text", chinese="jieba"),
            make_candidate("OpenCC t2s, then jieba search mode", chinese="opencc-t2s+jieba-search"),
            make_candidate(
                "OpenCC t2s, jieba search mode + bigrams", chinese="opencc-t2s+jieba-search+bigrams"
            ),
            make_candidate("bigrams", chinese="bigrams"),
            make_candidate("bigrams + unigrams", chinese="bigrams+unigrams"),
            make_candidate("OpenCC t2s, then bigrams", chinese="opencc-t2s+bigrams"),
            make_candidate(FOLD_BIGRAMS, chinese="fold+bigrams"),
            make_candidate(FOLD_BIGRAMS_UNIGRAMS, chinese="fold+bigrams+unigrams"),
            chosen,
        ]
        chunked_rows = [chinese_rows[2], chinese_rows[4], chosen]
        english_rows = [
            make_candidate("lower-case words", chinese="bigrams"),
            make_candidate("words, Lucene stop words (33)", chinese="bigrams", stopwords=LUCENE_STOPWORDS),
            make_candidate("words, S-stemmer (plurals)", chinese="bigrams", english="s-stem"),
            make_candidate(
                "words, Lucene stop words, S-stemmer",
                chinese="bigrams",
                english="s-stem",
                stopwords=LUCENE_STOPWORDS,
            ),
            make_candidate("words, Porter", chinese="bigrams", english="porter"),
            make_candidate("words, Snowball English (Porter2)", chinese="bigrams", english="english"),
            make_candidate(
                "words, Lucene stop words, Porter",
                chinese="bigrams",
                english="porter",
                stopwords=LUCENE_STOPWORDS,
            ),
            make_candidate(
                "words, Lucene stop words, Porter2",
                chinese="bigrams",
                english="english",
                stopwords=LUCENE_STOPWORDS,
            ),
            chosen,
        ]

    print("One-off start-up in a fresh process (seconds):", startup_costs(), "\n")

    print("DRCD dev, BM25 over the 1,000 paragraphs")
    print(
        "| tokenizer | hit@1 | hit@5 | hit@10 | Simplified queries hit@1 | hit@5 | terms/paragraph "
        "| postings read/query | 200-char chunks/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    first_hits: dict[str, np.ndarray] = {}
    for candidate in chinese_rows:
        index = Index([candidate.tokenize(text) for text in drcd.paragraphs])
        queries = [candidate.tokenize(question) for question in drcd.questions]
        hits = drcd_hits(index, queries, drcd.answer_paragraphs)
        first_hits[candidate.name] = hits[1]
        traditional = {f"hit@{k}": float(found.mean()) for k, found in hits.items()}
        simplified = evaluate_drcd(
            index, [candidate.tokenize(question) for question in simplified_questions], drcd.answer_paragraphs
        )
        postings = np.mean([index.postings_read(terms) for terms in queries])
        rate = speed(candidate, speed_chunks)
        print(
            f"| {candidate.name} | {traditional['hit@1']:.3f} | {traditional['hit@5']:.3f} | "
            f"{traditional['hit@10']:.3f} | {simplified['hit@1']:.3f} | {simplified['hit@5']:.3f} | "
            f"{index.nonzeros_per_document:.0f} | {postings:,.0f} | {rate:,.0f} |",
            flush=True,
        )

    for baseline, better in PAIRED_COMPARISONS:
        if baseline in first_hits and better in first_hits:
            print(
                f"hit@1, {better} against {baseline}: {paired_comparison(first_hits[baseline], first_hits[better])}"
            )

    size, overlap = 500, 80  # the platform's CHUNK_SIZE and CHUNK_OVERLAP defaults
    chunks = [
        chunk.text
        for article in drcd.articles
        for chunk in chunk_sections([_Section(article)], size=size, overlap=overlap)
    ]
    answer_chunks = [containing(answer, chunks) for answer in drcd.answers]
    print(f"\nDRCD dev, articles through knowledge.chunking ({size}/{overlap}): {len(chunks)} chunks")
    print("| tokenizer | hit@1 | hit@5 | hit@10 |")
    print("| --- | --- | --- | --- |")
    for candidate in chunked_rows:
        index = Index([candidate.tokenize(text) for text in chunks])
        scores = evaluate_drcd(index, [candidate.tokenize(q) for q in drcd.questions], answer_chunks)
        print(
            f"| {candidate.name} | {scores['hit@1']:.3f} | {scores['hit@5']:.3f} | {scores['hit@10']:.3f} |"
        )

    print("\nCranfield, BM25 over title + abstract")
    print("| tokenizer | nDCG@10 | recall@100 | terms/document | documents/s |")
    print("| --- | --- | --- | --- | --- |")
    for candidate in english_rows:
        documents = cranfield.documents
        index = Index([candidate.tokenize(text) for text in documents])
        scores = evaluate_cranfield(index, [candidate.tokenize(q) for q in cranfield.queries], cranfield)
        rate = speed(candidate, documents)
        print(
            f"| {candidate.name} | {scores['nDCG@10']:.3f} | {scores['recall@100']:.3f} | "
            f"{index.nonzeros_per_document:.0f} | {rate:,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
