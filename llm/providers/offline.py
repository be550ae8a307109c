"""The offline provider: answers by quoting the retrieved passages, with no model, network or key.

It is the default when a tenant has configured no provider, and every answer says so in its first
line: it quotes, it does not generate. It picks the sentences of the references that share the
most terms with the question (English words; Chinese character bigrams, since Chinese has no
spaces), weighted by how rare each term is among the candidate sentences, and quotes the best one
to three with their citation markers.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

from llm.base import Delta, LLMRequest, Provider, Reference, StreamEvent
from llm.providers._common import estimated_usage
from llm.tokens import CJK_CHARACTERS

LABELS = {
    "en": "Offline answer — quoted from the knowledge base, not generated:",
    "zh-Hant": "離線回答——以下內容直接引用自知識庫，並非由語言模型生成：",
}
NOTHING_FOUND = {
    "en": "Offline answer — the knowledge base has nothing on this question.",
    "zh-Hant": "離線回答——知識庫中沒有與這個問題相關的資料。",
}
MAX_QUOTES = 3
MAX_SENTENCE_CHARACTERS = 300

# A sentence ends at Chinese 。！？；, at ! and ?, at a full stop before a space, and at a line end;
# closing quotes and brackets stay with the sentence they close.
_SENTENCE_END = re.compile(r"([。！？；!?]+[」』”’)）]*|\.(?=\s|$)[」』”’)）]*)")
_WORD = re.compile(rf"[^\W{CJK_CHARACTERS}]+")
_CJK_RUN = re.compile(rf"[{CJK_CHARACTERS}]+")
# Small deltas: up to three Chinese characters, or one word with its following space.
_DELTA = re.compile(rf"[{CJK_CHARACTERS}]{{1,3}}|[^\s{CJK_CHARACTERS}]+\s*|\s+")

_ENGLISH_STOPWORDS = frozenset(
    "a an the is are was were be been am do does did how what when where why which who whom can "
    "could would should will shall may might must i me my we our you your it its they them their "
    "he she his her to of in on at by for from with about into and or not no if then than that "
    "this these those there here any some get got have has had please tell know want need".split()
)
# Question words carry no subject, so they should not pick a passage.
_CHINESE_STOPWORDS = frozenset(
    "什麼 甚麼 怎麼 怎樣 如何 為何 為什 請問 是否 可以 能否 多少 哪裡 哪些 我的 我們 你們 嗎？ 呢？ 一下".split()
)


@dataclass(frozen=True)
class _Sentence:
    reference: Reference
    position: int
    text: str


def split_sentences(text: str) -> list[str]:
    marked = _SENTENCE_END.sub(lambda match: match.group(0) + "\n", text)
    sentences = []
    for line in marked.splitlines():
        sentence = " ".join(line.split())
        if len(sentence) >= 2:
            sentences.append(sentence)
    return sentences


def _normalise_word(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def terms(text: str) -> set[str]:
    """English words (lowercased, plural s dropped, stopwords out) and Chinese character bigrams."""
    found = {
        _normalise_word(word)
        for word in _WORD.findall(text.lower())
        if word not in _ENGLISH_STOPWORDS and (len(word) > 1 or word.isdigit())
    }
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            found.add(run)
        found.update(
            bigram
            for bigram in (run[i : i + 2] for i in range(len(run) - 1))
            if bigram not in _CHINESE_STOPWORDS
        )
    return found


def _quote(sentence: str) -> str:
    if len(sentence) <= MAX_SENTENCE_CHARACTERS:
        return sentence
    return sentence[: MAX_SENTENCE_CHARACTERS - 1] + "…"


def choose_quotes(question: str, references: list[Reference]) -> list[_Sentence]:
    """The one to three sentences that answer best, best first."""
    sentences = [
        _Sentence(reference, position, text)
        for reference in references
        for position, text in enumerate(split_sentences(reference.text))
    ]
    if not sentences:
        return []
    sentence_terms = [terms(sentence.text) for sentence in sentences]
    frequency = Counter(term for found in sentence_terms for term in found)
    wanted = terms(question)
    scores = [
        sum(1.0 + math.log(len(sentences) / frequency[term]) for term in wanted & found)
        for found in sentence_terms
    ]
    best = max(scores)
    if best <= 0:
        # No shared term (a paraphrase retrieval still found): the top passage's opening.
        return [sentences[0]]
    order = sorted(range(len(sentences)), key=lambda index: -scores[index])
    return [sentences[index] for index in order[:MAX_QUOTES] if scores[index] >= best / 2]


def _cited(sentence: str, number: int) -> str:
    # Chinese text takes its marker without a space: 「……更換。[1]」.
    separator = " " if sentence[-1].isascii() else ""
    return f"{sentence}{separator}[{number}]"


def offline_answer(request: LLMRequest) -> str:
    language = "zh-Hant" if request.language == "zh-Hant" else "en"
    quotes = choose_quotes(request.question, request.references)
    if not quotes:
        return NOTHING_FOUND[language]
    lines = [_cited(_quote(quote.text), quote.reference.number) for quote in quotes]
    return LABELS[language] + "\n\n" + "\n".join(lines)


class OfflineProvider(Provider):
    name = "offline"
    model = "extractive"

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        answer = offline_answer(request)
        for piece in _DELTA.findall(answer):
            yield Delta(piece)
            await asyncio.sleep(0)  # let other streams of this event loop run between deltas
        yield estimated_usage(request, answer, provider=self.name, model=self.model)
