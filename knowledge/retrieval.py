"""Search over a tenant's knowledge: dense vectors, BM25 keywords, or both fused.

The fusion defaults were chosen by measurement on the two eval collections (docs/retrieval.md,
`make eval`). Every search goes through `vector_index`, which always filters by tenant, and the
hits are loaded from the database through the tenant's scope once more.
"""

import math
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace

from knowledge import selectors, vector_index
from knowledge.embedding import get_embedder
from knowledge.keywords import BM25_K1, query_weights, term_id, tokenize
from knowledge.retrieval_settings import (  # noqa: F401 - re-exported: callers find the settings here too
    FUSIONS,
    MODES,
    RetrievalSettings,
    RetrievalSettingsSchema,
)
from tenants import metrics
from tenants.models import Tenant


@dataclass(frozen=True)
class SearchResult:
    chunk_id: int
    document_id: int
    document_title: str
    text: str
    score: float
    page: int | None
    heading: str
    ordinal: int
    scores: dict = field(default_factory=dict)
    # The page a web document was crawled from (its citations link there); "" for uploads.
    source_url: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _keyword_query(tenant: Tenant, query: str) -> tuple[dict[int, float], float]:
    """The query's BM25 weights, and the highest score a chunk could reach with them: every
    query term at full saturation (k1 + 1), terms that no chunk contains at their highest IDF.
    A hit's score over that ceiling is its keyword coverage, in 0..1 whatever the corpus."""
    terms = tokenize(query)
    if not terms:
        return {}, 0.0
    ids = [term_id(term) for term in terms]
    corpus = selectors.keyword_corpus(tenant=tenant)
    frequencies = selectors.term_frequencies(tenant=tenant, term_ids=set(ids))
    weights = query_weights(terms, document_frequency=frequencies, document_count=corpus.chunk_count)
    unseen_idf = math.log(1 + (corpus.chunk_count + 0.5) / 0.5)
    counts = Counter(ids)
    ceiling = sum(weights.get(identifier, unseen_idf * count) for identifier, count in counts.items())
    return weights, ceiling * (BM25_K1 + 1)


def _min_max(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high - low < 1e-12:
        return dict.fromkeys(scores, 1.0)
    return {key: (value - low) / (high - low) for key, value in scores.items()}


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[^\W\d_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def is_chinese(text: str) -> bool:
    """Whether a text is mostly Chinese, counting two Han characters as one word against the
    words of other scripts ("iPhone 保固多久" is Chinese)."""
    han = len(_HAN.findall(text))
    return han > 0 and han / 2 >= len(_WORD.findall(text))


def for_query(config: RetrievalSettings, query: str) -> RetrievalSettings:
    """The settings with the fusion weights for this query's language."""
    if is_chinese(query):
        return replace(
            config, dense_weight=config.chinese_dense_weight, keyword_weight=config.chinese_keyword_weight
        )
    return config


def fuse(dense: dict[int, float], keyword: dict[int, float], config: RetrievalSettings) -> dict[int, float]:
    """Fuse two ranked score maps. `weighted`: per-query min-max normalised scores, weighted
    (a side with no candidates drops out, so hybrid falls back to its other half). `rrf`:
    reciprocal rank fusion."""
    if config.fusion == "rrf":
        fused: Counter = Counter()
        for weight, scores in ((config.dense_weight, dense), (config.keyword_weight, keyword)):
            ranked = sorted(scores, key=scores.get, reverse=True)
            for rank, chunk_id in enumerate(ranked, start=1):
                fused[chunk_id] += weight / (config.rrf_k + rank)
        return dict(fused)
    normalised_dense, normalised_keyword = _min_max(dense), _min_max(keyword)
    dense_weight = config.dense_weight if dense else 0.0
    keyword_weight = config.keyword_weight if keyword else 0.0
    total = (dense_weight + keyword_weight) or 1.0
    return {
        chunk_id: (
            dense_weight * normalised_dense.get(chunk_id, 0.0)
            + keyword_weight * normalised_keyword.get(chunk_id, 0.0)
        )
        / total
        for chunk_id in set(dense) | set(keyword)
    }


def search(
    *, tenant: Tenant, query: str, mode: str | None = None, top_k: int | None = None
) -> tuple[list[SearchResult], dict]:
    """The tenant's best chunks for a query, and timings in milliseconds."""
    config = RetrievalSettings.for_tenant(tenant)
    mode = mode or config.mode
    top_k = top_k or config.top_k
    embedder = get_embedder()
    collection = vector_index.collection_name(embedder_name=embedder.name, dimension=embedder.dimension)
    vector_index.ensure_collection(name=collection, dimension=embedder.dimension)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    limit = top_k if mode != "hybrid" else max(config.candidates, top_k)

    dense: dict[int, float] = {}
    keyword: dict[int, float] = {}
    ceiling = 0.0
    if mode in ("vector", "hybrid"):
        vector = embedder.embed_query(query)
        timings["embed_ms"] = (time.perf_counter() - started) * 1000
        hits = vector_index.search_dense(
            collection=collection, tenant_id=tenant.pk, vector=vector, limit=limit
        )
        dense = {hit.chunk_id: hit.score for hit in hits}
    if mode in ("keyword", "hybrid"):
        weights, ceiling = _keyword_query(tenant, query)
        hits = vector_index.search_sparse(
            collection=collection, tenant_id=tenant.pk, weights=weights, limit=limit
        )
        keyword = {hit.chunk_id: hit.score for hit in hits}

    scores = fuse(dense, keyword, for_query(config, query)) if mode == "hybrid" else (dense or keyword)
    ranked = sorted(scores, key=scores.get, reverse=True)
    if config.score_threshold is not None:
        ranked = [chunk_id for chunk_id in ranked if scores[chunk_id] >= config.score_threshold]
    ranked = ranked[:top_k]
    chunks = selectors.chunks_by_id(tenant=tenant, chunk_ids=ranked)
    results = [
        SearchResult(
            chunk_id=chunk_id,
            document_id=chunks[chunk_id].document_id,
            document_title=chunks[chunk_id].document.title,
            text=chunks[chunk_id].text,
            score=round(float(scores[chunk_id]), 6),
            page=chunks[chunk_id].page,
            heading=chunks[chunk_id].heading,
            ordinal=chunks[chunk_id].ordinal,
            source_url=chunks[chunk_id].document.source_url,
            scores={
                "vector": dense.get(chunk_id),
                "keyword": keyword.get(chunk_id),
                "keyword_coverage": round(keyword[chunk_id] / ceiling, 4) if chunk_id in keyword else None,
            },
        )
        for chunk_id in ranked
        if chunk_id in chunks  # a vector whose chunk is gone (a failed rerun) is never shown
    ]
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    metrics.retrieval_observe(mode=mode, seconds=timings["total_ms"] / 1000)
    return results, timings
