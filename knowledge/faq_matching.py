"""Matching a customer's question to a tenant's curated answers (FAQ pairs).

A pair matches through any of its phrasings (the question and its alternatives). A phrasing's
score is 1.0 when the two questions are the same once folded (`question_key`: NFKC, lower case,
Traditional folded to Simplified as keywords.py does for documents, punctuation and spaces
dropped), else a blend of two similarities:

- dense: the cosine of the two questions' embeddings, both embedded as queries (e5's symmetric
  use), from the embedder the documents use;
- keyword: the Dice overlap of their keyword terms (keywords.tokenize: Chinese bigrams and
  unigrams after the Traditional-to-Simplified fold, stemmed English words).

The blend and the default threshold were chosen on a labelled set built from DRCD dev
(bench/faq_matcher.py, docs/retrieval.md "Curated answers"): a wrong word-for-word answer is
worse than none, so the default keeps precision at or above 0.98.

Embeddings of the phrasings are kept on the row (`Faq.embeddings`); a row whose embeddings are
missing or from another model is embedded again when it is next matched. With the embedder
unavailable only exact (folded) matches are answered.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from knowledge.embedding import EmbeddingError, get_embedder
from knowledge.keywords import _TRADITIONAL_TO_SIMPLIFIED, tokenize

logger = logging.getLogger(__name__)

# Score = DENSE_WEIGHT * cosine + (1 - DENSE_WEIGHT) * keyword Dice (measured: docs/retrieval.md).
DENSE_WEIGHT = 0.5

_NOT_WORD = re.compile(r"[\W_]+")


def question_key(text: str) -> str:
    """A question folded for comparison: the same key for the same question written in
    Traditional or Simplified characters, full- or half-width, with or without punctuation."""
    folded = unicodedata.normalize("NFKC", text).lower().translate(_TRADITIONAL_TO_SIMPLIFIED)
    return _NOT_WORD.sub("", folded)


def keyword_similarity(left: set[str], right: set[str]) -> float:
    if not left or not right:
        return 0.0
    return 2 * len(left & right) / (len(left) + len(right))


def blend(*, cosine: float, keyword: float, dense_weight: float = DENSE_WEIGHT) -> float:
    return dense_weight * cosine + (1 - dense_weight) * keyword


def vectors_to_bytes(vectors: np.ndarray) -> bytes:
    return np.ascontiguousarray(vectors, dtype=np.float32).tobytes()


def vectors_from_bytes(data: bytes | memoryview, count: int) -> np.ndarray | None:
    """The stored (count, dimension) matrix, or None when the bytes do not hold one."""
    raw = bytes(data or b"")
    if count <= 0 or not raw or len(raw) % (4 * count):
        return None
    return np.frombuffer(raw, dtype=np.float32).reshape(count, -1)


@dataclass(frozen=True)
class Candidate:
    """One pair as the matcher sees it."""

    faq_id: int
    phrasings: list[str]
    vectors: np.ndarray | None  # (len(phrasings), dimension), or None when not embedded


@dataclass(frozen=True)
class Match:
    faq_id: int
    score: float
    phrasing: str


def best_match(
    question: str,
    candidates: list[Candidate],
    *,
    query_vector: np.ndarray | None,
    dense_weight: float = DENSE_WEIGHT,
) -> Match | None:
    """The candidate phrasing closest to `question` (exact folded matches score 1.0), or None
    when there is no candidate. Without `query_vector` only exact matches score above 0."""
    key = question_key(question)
    terms = set(tokenize(question))
    best: Match | None = None
    for candidate in candidates:
        for index, phrasing in enumerate(candidate.phrasings):
            if key and question_key(phrasing) == key:
                score = 1.0
            elif query_vector is None or candidate.vectors is None:
                score = 0.0
            else:
                cosine = float(np.dot(candidate.vectors[index], query_vector))
                score = blend(
                    cosine=cosine,
                    keyword=keyword_similarity(terms, set(tokenize(phrasing))),
                    dense_weight=dense_weight,
                )
            if best is None or score > best.score:
                best = Match(faq_id=candidate.faq_id, score=score, phrasing=phrasing)
    return best


def embed_phrasings(phrasings: list[str]) -> tuple[np.ndarray, str]:
    """The phrasings' embeddings and the model's name; raises EmbeddingError."""
    embedder = get_embedder()
    return embedder.embed_queries(phrasings), embedder.name


def embed_question(question: str) -> tuple[np.ndarray | None, str]:
    """The question's embedding and the model's name; (None, "") when the embedder fails."""
    try:
        embedder = get_embedder()
        return embedder.embed_query(question), embedder.name
    except EmbeddingError as error:
        logger.warning("Curated answers match exact questions only: %s", error)
        return None, ""
