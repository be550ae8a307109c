import pytest

from knowledge.retrieval import RetrievalSettings, for_query, fuse, is_chinese


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("滿多少錢免運費？", True),
        ("运费说明", True),
        ("iPhone 保固多久", True),
        ("How long is the warranty?", False),
        ("12345", False),
    ],
)
def test_is_chinese_looks_at_the_letters(text, expected):
    assert is_chinese(text) is expected


def test_chinese_queries_take_the_chinese_weights():
    config = RetrievalSettings(
        dense_weight=0.6, keyword_weight=0.4, chinese_dense_weight=0.2, chinese_keyword_weight=0.8
    )
    assert for_query(config, "退貨政策").dense_weight == 0.2
    assert for_query(config, "return policy").dense_weight == 0.6


def test_weighted_fusion_normalises_each_side_and_weights_them():
    dense = {1: 0.9, 2: 0.8, 3: 0.7}
    keyword = {3: 30.0, 4: 10.0}
    fused = fuse(dense, keyword, RetrievalSettings(dense_weight=0.5, keyword_weight=0.5))
    assert fused[3] == pytest.approx(0.5)  # last on dense (0), first on keywords (1)
    assert fused[1] == pytest.approx(0.5)
    assert fused[4] == pytest.approx(0.0)
    assert max(fused, key=fused.get) in {1, 3}


def test_hybrid_falls_back_to_the_side_that_found_something():
    fused = fuse({}, {7: 3.0, 8: 1.0}, RetrievalSettings())
    assert sorted(fused, key=fused.get, reverse=True) == [7, 8]
    assert fused[7] == pytest.approx(1.0)


def test_rrf_rewards_agreement():
    fused = fuse(
        {1: 0.9, 2: 0.5}, {2: 9.0, 3: 1.0}, RetrievalSettings(fusion="rrf", dense_weight=1, keyword_weight=1)
    )
    assert max(fused, key=fused.get) == 2


def test_tenant_settings_override_the_defaults():
    class Tenant:
        settings = {"retrieval": {"mode": "keyword", "top_k": 8, "unknown": 1}}

    config = RetrievalSettings.for_tenant(Tenant())
    assert (config.mode, config.top_k, config.fusion) == ("keyword", 8, "weighted")
