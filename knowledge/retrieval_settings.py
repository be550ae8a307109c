"""A tenant's retrieval settings (`tenant.settings["retrieval"]`): the defaults measured on the
eval collections (docs/retrieval.md) and the schema every write is checked by. Kept apart from
`knowledge.retrieval` so that registering the schema at start-up imports no index client."""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from tenants.models import Tenant
from tenants.tenant_settings import tenant_settings_section

MODES = ("vector", "keyword", "hybrid")
FUSIONS = ("weighted", "rrf")
SETTINGS_KEY = "retrieval"
MAX_TOP_K = 50
# Each side's candidates before fusion: far below Milvus's limit of 16384 per search, and what a
# search of one tenant's knowledge can afford to rank.
MAX_CANDIDATES = 500
MAX_RRF_K = 1000
# Scores live on the mode's scale (cosine, BM25, fused 0..1); beyond this a threshold means nothing.
MAX_SCORE_THRESHOLD = 1_000_000.0


@dataclass(frozen=True)
class RetrievalSettings:
    mode: str = "hybrid"
    top_k: int = 5
    fusion: str = "weighted"
    # Weights for queries in other languages than Chinese...
    dense_weight: float = 0.5
    keyword_weight: float = 0.5
    # ...and for queries mostly in Chinese characters, where keywords carry more (docs/retrieval.md).
    chinese_dense_weight: float = 0.3
    chinese_keyword_weight: float = 0.7
    rrf_k: int = 60
    # Results scoring below this are dropped (in the mode's own score scale); None keeps all.
    score_threshold: float | None = None
    # How many candidates each side contributes before fusion.
    candidates: int = 50

    @classmethod
    def for_tenant(cls, tenant: Tenant) -> "RetrievalSettings":
        """The platform defaults, overridden by the tenant's `settings["retrieval"]` where its
        values pass `RetrievalSettingsSchema` (a bad stored value keeps the default)."""
        return cls(**tenant_settings_section(tenant.settings, SETTINGS_KEY))


def _weight(label):
    return serializers.FloatField(required=False, min_value=0.0, max_value=1.0, help_text=label)


class RetrievalSettingsSchema(serializers.Serializer):
    """`settings["retrieval"]`: every key optional (the defaults of `RetrievalSettings`), each
    typed and bounded. The tenant API, the dashboard form and the reader use it."""

    mode = serializers.ChoiceField(choices=MODES, required=False)
    top_k = serializers.IntegerField(required=False, min_value=1, max_value=MAX_TOP_K)
    fusion = serializers.ChoiceField(choices=FUSIONS, required=False)
    dense_weight = _weight("Weight of vector scores (0..1).")
    keyword_weight = _weight("Weight of keyword scores (0..1).")
    chinese_dense_weight = _weight("Weight of vector scores for Chinese questions (0..1).")
    chinese_keyword_weight = _weight("Weight of keyword scores for Chinese questions (0..1).")
    rrf_k = serializers.IntegerField(required=False, min_value=1, max_value=MAX_RRF_K)
    score_threshold = serializers.FloatField(
        required=False, allow_null=True, min_value=-MAX_SCORE_THRESHOLD, max_value=MAX_SCORE_THRESHOLD
    )
    candidates = serializers.IntegerField(required=False, min_value=1, max_value=MAX_CANDIDATES)

    def validate(self, data):
        defaults = RetrievalSettings()
        errors = {}
        for dense, keyword in (
            ("dense_weight", "keyword_weight"),
            ("chinese_dense_weight", "chinese_keyword_weight"),
        ):
            if (
                data.get("fusion", defaults.fusion) == "weighted"
                and data.get(dense, getattr(defaults, dense)) == 0
                and data.get(keyword, getattr(defaults, keyword)) == 0
            ):
                errors[keyword] = [_("The two weights cannot both be zero.")]
        if errors:
            raise serializers.ValidationError(errors)
        return data
