from llm.tokens import estimate_tokens


def test_each_chinese_character_counts_one():
    assert estimate_tokens("退貨政策") == 4


def test_words_count_one_per_four_characters_at_least_one():
    assert estimate_tokens("a") == 1
    assert estimate_tokens("word") == 1
    assert estimate_tokens("words") == 2
    assert estimate_tokens("internationalization") == 5


def test_punctuation_counts_one_and_spaces_nothing():
    assert estimate_tokens("Hi, you!") == 4
    assert estimate_tokens("。，") == 2
    assert estimate_tokens("   \n") == 0
    assert estimate_tokens("") == 0


def test_mixed_text():
    assert estimate_tokens("iPhone 15 的保固") == 2 + 1 + 3
