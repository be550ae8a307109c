"""The offline provider: quotes the best sentences of the references, labelled as quotes."""

import re

from llm.base import Delta, LLMRequest, Message, Reference, Usage
from llm.providers.offline import LABELS, NOTHING_FOUND, OfflineProvider, split_sentences, terms
from llm.tokens import estimate_tokens
from testsupport.llm import collect, text_of

WARRANTY = Reference(
    1,
    "Warranty",
    "Every laptop carries a two-year limited warranty covering defects in materials. "
    "Batteries are covered for one year. Accidental damage such as drops is not covered.",
)
SHIPPING = Reference(2, "Shipping", "Orders ship within two business days. Express delivery costs extra.")
RETURNS_ZH = Reference(
    1,
    "退貨政策",
    "商品到貨後七天內，未拆封且包裝完整者，可申請全額退款。已拆封的商品，若有瑕疵，請於三十天內聯絡客服更換。",
)
SHIPPING_ZH = Reference(
    2, "運費說明", "單筆訂單滿一千元免運費；未滿一千元者，本島運費為八十元，離島運費為一百五十元。"
)


def ask(question: str, references: list[Reference], language: str = "en") -> list:
    request = LLMRequest(
        system="System prompt.",
        messages=[Message("user", question)],
        references=references,
        question=question,
        language=language,
    )
    return collect(OfflineProvider().stream(request))


def cited_numbers(text: str) -> set[int]:
    return {int(number) for number in re.findall(r"\[(\d+)\]", text)}


def test_it_quotes_the_relevant_english_sentence_with_its_marker():
    events = ask("How long are batteries covered?", [WARRANTY, SHIPPING])
    answer = text_of(events)

    first_line, _, body = answer.partition("\n\n")
    assert first_line == LABELS["en"]
    assert "quoted from the knowledge base, not generated" in first_line
    assert body.splitlines()[0] == "Batteries are covered for one year. [1]"
    assert cited_numbers(answer) <= {1, 2}


def test_each_quote_cites_the_reference_it_comes_from():
    answer = text_of(ask("When do orders ship, and is express delivery extra?", [WARRANTY, SHIPPING]))

    for line in answer.split("\n\n", 1)[1].splitlines():
        sentence, number = re.fullmatch(r"(.*) \[(\d+)\]", line).groups()
        reference = {1: WARRANTY, 2: SHIPPING}[int(number)]
        assert sentence in reference.text
    assert cited_numbers(answer) == {2}


def test_it_answers_in_traditional_chinese_with_the_chinese_label():
    answer = text_of(ask("運費怎麼算？離島運費多少？", [RETURNS_ZH, SHIPPING_ZH], language="zh-Hant"))

    assert answer.startswith("離線回答——以下內容直接引用自知識庫，並非由語言模型生成：")
    assert "離島運費為一百五十元。[2]" in answer
    assert cited_numbers(answer) == {2}


def test_chinese_returns_question_finds_the_returns_passage():
    answer = text_of(ask("已拆封的商品可以退貨嗎？", [RETURNS_ZH, SHIPPING_ZH], language="zh-Hant"))
    assert "已拆封的商品，若有瑕疵，請於三十天內聯絡客服更換。[1]" in answer


def test_it_quotes_at_most_three_sentences():
    long_reference = Reference(1, "FAQ", " ".join(f"Battery fact number {n}." for n in range(10)))
    answer = text_of(ask("battery fact", [long_reference]))
    assert len(answer.split("\n\n", 1)[1].splitlines()) == 3


def test_without_references_it_says_the_knowledge_base_has_nothing():
    assert text_of(ask("What is the meaning of life?", [])) == NOTHING_FOUND["en"]
    chinese = text_of(ask("營業時間？", [], language="zh-Hant"))
    assert chinese == NOTHING_FOUND["zh-Hant"]
    assert "知識庫" in chinese and "離線" in chinese


def test_without_shared_terms_it_quotes_the_top_passage_opening():
    answer = text_of(ask("zzz qqq", [SHIPPING, WARRANTY]))
    assert answer.endswith("Orders ship within two business days. [2]")


def test_it_streams_small_deltas_then_an_estimated_usage():
    request_question = "How long are batteries covered?"
    events = ask(request_question, [WARRANTY])

    deltas = [event for event in events if isinstance(event, Delta)]
    assert len(deltas) > 10
    assert all(len(delta.text.strip()) <= 20 for delta in deltas)
    usage = events[-1]
    assert isinstance(usage, Usage)
    assert usage.provider == "offline" and usage.model == "extractive"
    assert usage.prompt_tokens == estimate_tokens("System prompt.") + estimate_tokens(request_question)
    assert usage.completion_tokens == estimate_tokens(text_of(events))


def test_chinese_deltas_are_a_few_characters():
    events = ask("離島運費", [SHIPPING_ZH], language="zh-Hant")
    assert all(
        len(event.text.strip()) <= 3 for event in events if isinstance(event, Delta) and "[" not in event.text
    )


def test_sentences_split_on_chinese_and_english_punctuation():
    assert split_sentences("第一句。第二句！第三句？第四句；Fifth one. Sixth! Version 1.5 works") == [
        "第一句。",
        "第二句！",
        "第三句？",
        "第四句；",
        "Fifth one.",
        "Sixth!",
        "Version 1.5 works",
    ]


def test_terms_use_bigrams_for_chinese_and_drop_stopwords():
    assert terms("What is the warranty?") == {"warranty"}
    assert {"運費", "離島"} <= terms("離島運費")
