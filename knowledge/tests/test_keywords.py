import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from knowledge.keywords import _TRADITIONAL_TO_SIMPLIFIED, document_weights, query_weights, term_id, tokenize

ROOT = Path(__file__).resolve().parents[2]


def test_chinese_is_split_into_characters_and_bigrams():
    assert tokenize("客服中心") == ["客", "服", "中", "心", "客服", "服中", "中心"]


def test_traditional_and_simplified_forms_of_a_word_share_their_terms():
    assert tokenize("臺灣的退貨頭髮") == tokenize("台湾的退货头发")
    assert tokenize("後來發現") == tokenize("后来发现")


def test_the_traditional_fold_is_idempotent():
    folded = "臺灣的後來乾燥頭髮薴麵".translate(_TRADITIONAL_TO_SIMPLIFIED)

    assert folded.translate(_TRADITIONAL_TO_SIMPLIFIED) == folded


def test_english_is_case_insensitive():
    assert tokenize("Refund POLICY") == tokenize("refund policy") == ["refund", "polici"]


def test_english_words_are_stemmed_so_inflections_match():
    assert tokenize("shipping shipped ships") == ["ship", "ship", "ship"]
    assert tokenize("refunds") == tokenize("refund")


def test_full_width_letters_and_digits_match_their_ascii_forms():
    assert tokenize("ＡＢＣ１２３ 型號") == tokenize("abc123 型號")


def test_punctuation_and_symbols_are_dropped():
    assert tokenize("退貨，請洽客服！") == tokenize("退貨 請洽客服")
    assert tokenize("Hello, world!!! (see: §3.2) -- $5_000") == [
        "hello",
        "world",
        "see",
        "3",
        "2",
        "5",
        "000",
    ]
    assert tokenize("。，！？「」…") == []


def test_mixed_scripts_are_split_into_chinese_and_latin_runs():
    assert tokenize("iPhone15手機Pro") == [*tokenize("iphone15"), *tokenize("手機"), *tokenize("pro")]


def test_a_single_character_query_finds_the_character_inside_a_word():
    assert set(tokenize("貨")) <= set(tokenize("退貨須知"))


def test_term_id_is_stable_across_runs_and_processes():
    assert term_id("客服") == 3568367799
    assert term_id("refund") == 4280724012
    other_process = subprocess.run(
        [sys.executable, "-c", "from knowledge.keywords import term_id; print(term_id('客服'))"],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},  # hash() would differ
        capture_output=True,
        text=True,
        check=True,
    )
    assert other_process.stdout.strip() == "3568367799"


def test_term_ids_fit_a_milvus_sparse_index():
    terms = {
        term
        for text in ("臺灣的退貨頭髮", "refund policy for damaged goods", "0123456789")
        for term in tokenize(text)
    }

    assert all(0 <= term_id(term) <= 2**32 - 2 for term in terms)
    assert len({term_id(term) for term in terms}) == len(terms)


CORPUS = [
    "退貨須知：商品到貨七天內可申請退貨。",
    "運費說明：訂單滿一千元免運費，退貨運費由買家負擔。",
    "Refund policy: refunds are issued within 14 days.",
    "保固說明：產品保固一年，人為損壞不在保固範圍。",
]


def textbook_bm25(query: str, corpus: list[str], *, k1: float = 1.2, b: float = 0.75) -> list[float]:
    """BM25 as in the textbook (Robertson & Zaragoza, with Lucene's non-negative IDF), on terms."""
    documents = [Counter(tokenize(text)) for text in corpus]
    lengths = [sum(document.values()) for document in documents]
    average = sum(lengths) / len(documents)
    scores = []
    for document, length in zip(documents, lengths, strict=True):
        score = 0.0
        for term in tokenize(query):  # a repeated query term counts again
            frequency = sum(1 for other in documents if term in other)
            if not frequency:
                continue
            idf = math.log(1 + (len(documents) - frequency + 0.5) / (frequency + 0.5))
            tf = document[term]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))
        scores.append(score)
    return scores


def platform_bm25(query: str, corpus: list[str]) -> list[float]:
    terms = [tokenize(text) for text in corpus]
    average = sum(map(len, terms)) / len(terms)
    vectors = [document_weights(document, avg_length=average) for document in terms]
    frequency = Counter(identifier for vector in vectors for identifier in vector)
    query_vector = query_weights(tokenize(query), document_frequency=frequency, document_count=len(corpus))
    return [
        sum(weight * vector.get(identifier, 0.0) for identifier, weight in query_vector.items())
        for vector in vectors
    ]


@pytest.mark.parametrize(
    "query", ["退貨運費怎麼算？", "退货运费", "refund within 14 days", "保固 保固 一年", "退"]
)
def test_scores_through_the_sparse_weights_equal_textbook_bm25(query):
    expected = textbook_bm25(query, CORPUS)

    assert platform_bm25(query, CORPUS) == pytest.approx(expected, rel=1e-12)
    assert max(expected) > 0


def test_document_weights_saturate_term_frequency_and_normalise_length():
    short = document_weights(["退"], avg_length=2.0)
    repeated = document_weights(["退", "退", "退", "退"], avg_length=2.0)

    assert short == {term_id("退"): pytest.approx(2.2 / (1 + 1.2 * (0.25 + 0.75 * 0.5)))}
    assert repeated[term_id("退")] < 2.2  # tf * (k1 + 1) / (tf + ...) never reaches k1 + 1
    assert document_weights([], avg_length=2.0) == {}


def test_query_weights_drop_terms_no_document_contains():
    known, unknown = "退貨", "量子"
    frequency = {term_id(known): 2}

    weights = query_weights([known, unknown, unknown], document_frequency=frequency, document_count=10)

    assert set(weights) == {term_id(known)}
    assert weights[term_id(known)] == pytest.approx(math.log(1 + 8.5 / 2.5))
    assert query_weights([unknown], document_frequency={term_id(unknown): 0}, document_count=10) == {}


def test_query_weights_count_a_repeated_term_again():
    frequency = {term_id("退"): 3}

    once = query_weights(["退"], document_frequency=frequency, document_count=10)
    twice = query_weights(["退", "退"], document_frequency=frequency, document_count=10)

    assert twice[term_id("退")] == pytest.approx(2 * once[term_id("退")])
