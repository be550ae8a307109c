"""Dashboard forms of the knowledge base. Validation only."""

from django import forms
from django.utils.translation import gettext_lazy as _

from knowledge import retrieval

STATUS_LABELS = {
    "pending": _("Pending"),
    "processing": _("Processing"),
    "ready": _("Ready"),
    "failed": _("Failed"),
}
STAGE_LABELS = {
    "waiting": _("Waiting for its turn"),
    "queued": _("Queued"),
    "extracting": _("Extracting text"),
    "chunking": _("Chunking"),
    "embedding": _("Embedding"),
    "indexing": _("Indexing"),
    "done": _("Done"),
}
MODE_CHOICES = [("hybrid", _("Hybrid")), ("vector", _("Vector")), ("keyword", _("Keyword"))]
FUSION_CHOICES = [("weighted", _("Weighted scores")), ("rrf", _("Reciprocal rank fusion"))]


class SearchTesterForm(forms.Form):
    query = forms.CharField(label=_("Question"), max_length=2000)
    top_k = forms.IntegerField(
        label=_("Results per mode"), min_value=1, max_value=20, initial=5, required=False
    )

    def clean_top_k(self):
        return self.cleaned_data.get("top_k") or 5


class RetrievalSettingsForm(forms.Form):
    mode = forms.ChoiceField(label=_("Mode"), choices=MODE_CHOICES)
    top_k = forms.IntegerField(label=_("Passages per answer"), min_value=1, max_value=50)
    fusion = forms.ChoiceField(label=_("Fusion"), choices=FUSION_CHOICES)
    dense_weight = forms.FloatField(label=_("Vector weight"), min_value=0, max_value=1)
    keyword_weight = forms.FloatField(label=_("Keyword weight"), min_value=0, max_value=1)
    chinese_dense_weight = forms.FloatField(
        label=_("Vector weight (Chinese questions)"), min_value=0, max_value=1
    )
    chinese_keyword_weight = forms.FloatField(
        label=_("Keyword weight (Chinese questions)"), min_value=0, max_value=1
    )
    rrf_k = forms.IntegerField(label=_("RRF constant k"), min_value=1, max_value=1000)
    score_threshold = forms.FloatField(
        label=_("Score threshold"), required=False, help_text=_("Leave empty to keep every result.")
    )
    candidates = forms.IntegerField(label=_("Candidates per side"), min_value=1, max_value=500)

    def clean(self):
        data = super().clean()
        if data.get("mode") and data["mode"] not in retrieval.MODES:
            self.add_error("mode", _("Unknown mode."))
        if data.get("fusion") == "weighted":
            for dense, keyword in (
                ("dense_weight", "keyword_weight"),
                ("chinese_dense_weight", "chinese_keyword_weight"),
            ):
                if data.get(dense) == 0 and data.get(keyword) == 0:
                    self.add_error(keyword, _("The two weights cannot both be zero."))
        return data

    def as_settings(self) -> dict:
        return {name: self.cleaned_data[name] for name in retrieval.RetrievalSettings.__dataclass_fields__}
