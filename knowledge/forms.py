"""Dashboard forms of the knowledge base. Validation only."""

from django import forms
from django.utils.translation import gettext_lazy as _

from knowledge import retrieval
from knowledge.faq_services import MAX_ALTERNATIVES, MAX_ANSWER_LENGTH, MAX_QUESTION_LENGTH
from knowledge.retrieval_settings import MAX_CANDIDATES, MAX_RRF_K, MAX_SCORE_THRESHOLD, MAX_TOP_K
from tenants.forms import LinesField

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
    top_k = forms.IntegerField(label=_("Passages per answer"), min_value=1, max_value=MAX_TOP_K)
    fusion = forms.ChoiceField(label=_("Fusion"), choices=FUSION_CHOICES)
    dense_weight = forms.FloatField(label=_("Vector weight"), min_value=0, max_value=1)
    keyword_weight = forms.FloatField(label=_("Keyword weight"), min_value=0, max_value=1)
    chinese_dense_weight = forms.FloatField(
        label=_("Vector weight (Chinese questions)"), min_value=0, max_value=1
    )
    chinese_keyword_weight = forms.FloatField(
        label=_("Keyword weight (Chinese questions)"), min_value=0, max_value=1
    )
    rrf_k = forms.IntegerField(label=_("RRF constant k"), min_value=1, max_value=MAX_RRF_K)
    score_threshold = forms.FloatField(
        label=_("Score threshold"),
        required=False,
        min_value=-MAX_SCORE_THRESHOLD,
        max_value=MAX_SCORE_THRESHOLD,
        help_text=_("Leave empty to keep every result."),
    )
    candidates = forms.IntegerField(label=_("Candidates per side"), min_value=1, max_value=MAX_CANDIDATES)

    def clean(self):
        """The form's fields, then the section's schema (what the tenant API checks too), so
        that the page can store nothing the API would refuse."""
        data = super().clean()
        if self.errors:
            return data
        schema = retrieval.RetrievalSettingsSchema(data=self.as_settings())
        if not schema.is_valid():
            for name, messages in schema.errors.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
        return data

    def as_settings(self) -> dict:
        return {name: self.cleaned_data[name] for name in retrieval.RetrievalSettings.__dataclass_fields__}


# --- Curated answers -------------------------------------------------------------------------


class FaqForm(forms.Form):
    """A curated answer: the alternatives one per line. The limits are the API's."""

    question = forms.CharField(label=_("Question"), max_length=MAX_QUESTION_LENGTH)
    alternatives = LinesField(
        label=_("Other ways to ask it"),
        rows=4,
        help_text=_("One per line. A customer's question that matches any of them gets the same answer."),
    )
    answer = forms.CharField(
        label=_("Answer"),
        max_length=MAX_ANSWER_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Given word for word, exactly as written here."),
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)

    def clean_answer(self) -> str:
        # A browser sends a textarea's line breaks as CRLF; the answer is given as typed.
        return self.cleaned_data["answer"].replace("\r\n", "\n").replace("\r", "\n")

    def clean_alternatives(self) -> list[str]:
        lines = [" ".join(line.split()) for line in self.cleaned_data["alternatives"]]
        if len(lines) > MAX_ALTERNATIVES:
            raise forms.ValidationError(
                _("At most %(count)d other ways to ask it.") % {"count": MAX_ALTERNATIVES}
            )
        too_long = [line for line in lines if len(line) > MAX_QUESTION_LENGTH]
        if too_long:
            raise forms.ValidationError(
                _("Each line is at most %(length)d characters.") % {"length": MAX_QUESTION_LENGTH}
            )
        return lines

    @classmethod
    def initial_for(cls, faq) -> dict:
        return {
            "question": faq.question,
            "alternatives": faq.alternatives,
            "answer": faq.answer,
            "enabled": faq.enabled,
        }


class FaqImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "A header row naming the columns question, answer and optionally alternatives "
            "(separated by |). UTF-8 with or without BOM, or Big5 as Excel in Taiwan saves it."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )


class FaqFilterForm(forms.Form):
    search = forms.CharField(label=_("Search"), required=False, max_length=200)
    enabled = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Enabled or not")), ("true", _("Enabled")), ("false", _("Disabled"))],
    )

    def filters(self) -> dict:
        if not self.is_valid():
            return {"search": None, "enabled": None}
        enabled = {"true": True, "false": False}.get(self.cleaned_data["enabled"])
        return {"search": self.cleaned_data["search"].strip() or None, "enabled": enabled}
