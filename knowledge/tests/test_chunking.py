import random
from dataclasses import dataclass

import pytest

from knowledge.chunking import ChunkDraft, chunk_sections, is_mostly_alphabetic


@dataclass(frozen=True)
class Section:
    text: str
    page: int | None = None
    heading: str | None = None


RETURNS_ZH = (
    "本公司提供七天鑑賞期，商品到貨後七天內皆可申請退貨。"
    "退貨時請保持商品完整，並附上發票正本！"
    "若商品有瑕疵，請於收到後三日內聯絡客服？"
    "客服專線為週一至週五上午九點至下午六點；"
    "例假日暫停服務。"
    "退款將於收到退貨後十四個工作天內完成。"
)
RETURNS_ZH_SENTENCES = [
    "本公司提供七天鑑賞期，商品到貨後七天內皆可申請退貨。",
    "退貨時請保持商品完整，並附上發票正本！",
    "若商品有瑕疵，請於收到後三日內聯絡客服？",
    "客服專線為週一至週五上午九點至下午六點；",
    "例假日暫停服務。",
    "退款將於收到退貨後十四個工作天內完成。",
]
WARRANTY_EN = (
    "The warranty covers manufacturing defects for two years. "
    "It does not cover damage caused by misuse, e.g. dropping the device. "
    "Dr. Chen's team repairs devices within 3.5 working days on average. "
    "Contact support before sending a device! "
    "Is the serial number required? Yes, always."
)
WARRANTY_EN_SENTENCES = [
    "The warranty covers manufacturing defects for two years.",
    "It does not cover damage caused by misuse, e.g. dropping the device.",
    "Dr. Chen's team repairs devices within 3.5 working days on average.",
    "Contact support before sending a device!",
    "Is the serial number required?",
    "Yes, always.",
]


def chunk_texts(text: str, *, size: int, overlap: int = 0) -> list[str]:
    return [chunk.text for chunk in chunk_sections([Section(text)], size=size, overlap=overlap)]


def assert_whole_sentences(chunks: list[str], sentences: list[str], separator: str) -> None:
    """Every chunk is a run of consecutive whole sentences."""
    for chunk in chunks:
        assert any(
            separator.join(sentences[start:end]) == chunk
            for start in range(len(sentences))
            for end in range(start + 1, len(sentences) + 1)
        ), chunk


def test_a_short_text_is_one_chunk_with_its_page_and_heading():
    chunks = chunk_sections([Section("退貨須知。請保留發票。", page=3, heading="退貨")], size=100, overlap=10)

    assert chunks == [ChunkDraft(ordinal=0, text="退貨須知。請保留發票。", page=3, heading="退貨")]


def test_chinese_sentences_are_never_cut_when_they_fit():
    chunks = chunk_texts(RETURNS_ZH, size=50)

    assert len(chunks) > 1
    assert_whole_sentences(chunks, RETURNS_ZH_SENTENCES, separator="")
    assert "".join(chunks) == RETURNS_ZH


def test_english_sentences_are_never_cut_when_they_fit():
    chunks = chunk_texts(WARRANTY_EN, size=120)

    assert len(chunks) > 1
    assert_whole_sentences(chunks, WARRANTY_EN_SENTENCES, separator=" ")
    assert " ".join(chunks) == WARRANTY_EN


def test_english_periods_in_decimals_and_abbreviations_do_not_end_a_sentence():
    chunks = chunk_texts(WARRANTY_EN, size=70)

    assert "It does not cover damage caused by misuse, e.g. dropping the device." in chunks
    assert "Dr. Chen's team repairs devices within 3.5 working days on average." in chunks


def test_an_abbreviation_after_a_line_break_does_not_end_a_sentence():
    chunks = chunk_texts("Ask for help.\nDr. Chen answers.", size=20)

    assert chunks == ["Ask for help.", "Dr. Chen answers."]


def test_closing_quotes_stay_with_their_sentence():
    chunks = chunk_texts("客服說：「請稍候。」我們等了十分鐘。他又說：「好了！」", size=12)

    assert chunks == ["客服說：「請稍候。」", "我們等了十分鐘。", "他又說：「好了！」"]


@pytest.mark.parametrize(
    ("text", "size"), [(RETURNS_ZH, 40), (RETURNS_ZH, 70), (WARRANTY_EN, 80), (WARRANTY_EN, 150)]
)
def test_chunks_respect_the_size(text, size):
    chunks = chunk_texts(text, size=size, overlap=size // 4)

    assert chunks
    assert all(0 < len(chunk) <= size for chunk in chunks)


def test_chinese_overlap_repeats_the_previous_chunks_last_sentences():
    first, second, third, fourth, fifth, sixth = RETURNS_ZH_SENTENCES

    chunks = chunk_texts(RETURNS_ZH, size=50, overlap=20)

    assert chunks == [first + second, second + third, third + fourth + fifth, fifth + sixth]


def test_english_overlap_is_the_trailing_whole_sentences_that_fit():
    first, second, third, fourth, fifth, sixth = WARRANTY_EN_SENTENCES

    chunks = chunk_texts(WARRANTY_EN, size=140, overlap=75)

    # The fourth chunk repeats two whole sentences (71 characters), not a part of the third.
    assert chunks == [
        f"{first} {second}",
        f"{second} {third}",
        f"{third} {fourth} {fifth}",
        f"{fourth} {fifth} {sixth}",
    ]


def test_a_single_sentence_longer_than_the_overlap_is_repeated_when_short_enough():
    chunks = chunk_texts(WARRANTY_EN, size=140, overlap=40)

    # 68 characters: more than the overlap, but no more than twice it and half the size.
    assert chunks[0].endswith(WARRANTY_EN_SENTENCES[1])
    assert chunks[1].startswith(WARRANTY_EN_SENTENCES[1])


def test_a_sentence_too_long_to_repeat_is_not_carried_over():
    chunks = chunk_texts(WARRANTY_EN, size=130, overlap=10)  # every sentence is over 2 × 10

    assert_whole_sentences(chunks, WARRANTY_EN_SENTENCES, separator=" ")
    assert " ".join(chunks) == WARRANTY_EN


def test_overlap_never_exceeds_the_setting_when_several_sentences_would():
    sentences = [f"第{number}句話在這裡。" for number in range(1, 30)]  # 7 or 8 characters each
    chunks = chunk_texts("".join(sentences), size=40, overlap=16)

    for previous, following in zip(chunks, chunks[1:], strict=False):
        shared = max(length for length in range(0, 41) if previous.endswith(following[:length]))
        assert 0 < shared <= 16


def test_no_overlap_when_set_to_zero():
    chunks = chunk_texts(RETURNS_ZH, size=50, overlap=0)

    assert "".join(chunks) == RETURNS_ZH


def test_a_page_change_starts_a_new_chunk_and_keeps_each_page():
    sections = [Section("第一頁的內容。", page=1), Section("第二頁的內容。", page=2)]

    chunks = chunk_sections(sections, size=500, overlap=50)

    assert [(chunk.text, chunk.page) for chunk in chunks] == [("第一頁的內容。", 1), ("第二頁的內容。", 2)]
    assert [chunk.ordinal for chunk in chunks] == [0, 1]


def test_overlap_does_not_cross_a_page():
    sections = [Section(RETURNS_ZH, page=1), Section("第二頁。", page=2)]

    chunks = chunk_sections(sections, size=50, overlap=20)

    assert chunks[-1] == ChunkDraft(ordinal=len(chunks) - 1, text="第二頁。", page=2, heading=None)


def test_a_heading_change_starts_a_new_chunk():
    sections = [
        Section("Returns are free.", heading="Returns"),
        Section("Refunds take a week.", heading="Returns"),
        Section("Shipping takes two days.", heading="Shipping"),
    ]

    chunks = chunk_sections(sections, size=500, overlap=50)

    assert [(chunk.text, chunk.heading) for chunk in chunks] == [
        ("Returns are free.\n\nRefunds take a week.", "Returns"),
        ("Shipping takes two days.", "Shipping"),
    ]


def test_paragraphs_are_packed_together_separated_by_a_blank_line():
    chunks = chunk_texts("First paragraph.\n\n\nSecond paragraph.\n \u3000 \nThird.", size=500)

    assert chunks == ["First paragraph.\n\nSecond paragraph.\n\nThird."]


def test_whitespace_is_normalised_and_line_breaks_kept():
    chunks = chunk_texts("  本產品適用於\t\u3000一般家庭。  \r\nUse   it\n  indoors.\u200b  ", size=500)

    assert chunks == ["本產品適用於 一般家庭。\nUse it\nindoors."]


def test_an_english_sentence_ends_before_a_line_break():
    chunks = chunk_texts("Press the reset button.\nThe light turns green.", size=25)

    assert chunks == ["Press the reset button.", "The light turns green."]


def test_a_long_table_is_cut_between_its_rows():
    rows = [
        f"型號 A{number:02d} | 保固 {number} 年，含到府維修" for number in range(1, 13)
    ]  # 21-22 characters

    chunks = chunk_texts("\n".join(rows), size=80, overlap=0)

    assert chunks == ["\n".join(rows[start : start + 3]) for start in range(0, 12, 3)]


def test_mixed_chinese_and_english_sentences_split_on_both():
    text = "請先閱讀 User Guide 第 3.2 節。Then restart the router. 若仍無法連線，請聯絡客服！Thanks."

    chunks = chunk_texts(text, size=30)

    assert chunks == [
        "請先閱讀 User Guide 第 3.2 節。",
        "Then restart the router.",
        "若仍無法連線，請聯絡客服！Thanks.",
    ]


def test_a_long_sentence_is_cut_after_commas_before_anything_else():
    text = "商品到貨後七天內皆可申請退貨，但必須保持商品完整、包裝齊全、配件沒有遺失，並附上發票正本及退貨申請單。"

    chunks = chunk_texts(text, size=30)

    assert chunks == [
        "商品到貨後七天內皆可申請退貨，但必須保持商品完整、包裝齊全、",
        "配件沒有遺失，並附上發票正本及退貨申請單。",
    ]


def test_a_long_english_sentence_is_cut_at_commas_then_spaces_never_inside_a_word():
    text = "When the pressure drops below the configured threshold the valve opens and the pump starts, then it logs."

    chunks = chunk_texts(text, size=40)

    assert all(len(chunk) <= 40 for chunk in chunks)
    assert " ".join(chunks) == text
    words = set(text.replace(",", "").replace(".", "").split())
    assert all(word in words for chunk in chunks for word in chunk.replace(",", "").replace(".", "").split())


def test_a_very_long_sentence_without_punctuation_is_hard_cut_with_overlap():
    text = "".join(chr(0x4E00 + offset) for offset in range(130))  # 130 distinct characters, no boundary

    chunks = chunk_texts(text, size=50, overlap=10)

    assert chunks == [text[0:50], text[40:90], text[80:130]]


def test_a_long_unbroken_run_between_sentences_keeps_the_sentences_whole():
    run = "甲" * 120
    chunks = chunk_texts(f"開始。{run}結束。", size=50, overlap=0)

    assert chunks[0] == "開始。"
    assert chunks[-1].endswith("結束。")
    assert all(len(chunk) <= 50 for chunk in chunks)


def test_no_empty_chunks_from_blank_sections():
    chunks = chunk_sections(
        [Section("   "), Section("\n\n"), Section("內容。"), Section("")], size=50, overlap=10
    )

    assert [chunk.text for chunk in chunks] == ["內容。"]


def test_ordinals_run_through_the_whole_document():
    sections = [Section(RETURNS_ZH, page=1), Section(WARRANTY_EN, page=2)]

    chunks = chunk_sections(sections, size=60, overlap=15)

    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))


def test_chunking_is_deterministic():
    sections = [Section(RETURNS_ZH, page=1, heading="退貨"), Section(WARRANTY_EN, page=2, heading="Warranty")]

    assert chunk_sections(sections, size=60, overlap=15) == chunk_sections(sections, size=60, overlap=15)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_it_refuses_impossible_sizes(size, overlap):
    with pytest.raises(ValueError):
        chunk_sections([Section("內容。")], size=size, overlap=overlap)


def random_text(generator: random.Random) -> str:
    pieces = ["退貨", "商品", "保固", "客服", "the", "warranty", "Dr.", "e.g.", "3.14", "A320", "「好」"]
    marks = ["。", "！", "？", "；", "，", "、", ". ", "! ", ", ", " ", " ", "", "", "\n", "\n\n", "…"]
    return "".join(
        generator.choice(pieces) + generator.choice(marks) for _ in range(generator.randint(0, 400))
    )


@pytest.mark.parametrize("seed", range(40))
def test_random_texts_keep_every_rule(seed):
    generator = random.Random(seed)
    sections = [Section(random_text(generator), page=generator.choice([1, 2, None])) for _ in range(3)]
    size = generator.randint(10, 120)
    overlap = generator.randint(0, size - 1)

    chunks = chunk_sections(sections, size=size, overlap=overlap)

    def visible(text: str) -> str:
        return "".join(text.split())

    for chunk in chunks:
        assert 0 < len(chunk.text) <= size
        assert chunk.text == chunk.text.strip()
        assert "  " not in chunk.text and "\n\n\n" not in chunk.text
    # Without overlap the chunks hold the text exactly once, in order; with it, each chunk is a
    # piece of its page's text and together they cover all of it.
    unlapped = chunk_sections(sections, size=size, overlap=0)
    assert visible("".join(chunk.text for chunk in unlapped)) == visible("".join(s.text for s in sections))
    for page in {section.page for section in sections}:
        page_text = visible("".join(section.text for section in sections if section.page == page))
        page_chunks = [visible(chunk.text) for chunk in chunks if chunk.page == page]
        assert all(piece in page_text for piece in page_chunks)
        assert sum(map(len, page_chunks)) >= len(page_text)


@pytest.mark.parametrize(
    ("texts", "alphabetic"),
    [
        (["The warranty covers two years.", "Batteries: one year."], True),
        ([RETURNS_ZH], False),
        # Mostly Chinese with English product names is Chinese; the reverse is English.
        ([RETURNS_ZH + " iPhone 15 Pro, MacBook Air."], False),
        (["Returns within 7 days (七天鑑賞期) with the receipt; refunds in 14 working days."], True),
        (["", "   "], False),
        (["12345 67890 — ...!!!"], False),
    ],
)
def test_documents_in_alphabetic_scripts_are_told_from_chinese(texts, alphabetic):
    assert is_mostly_alphabetic([Section(text) for text in texts]) is alphabetic
