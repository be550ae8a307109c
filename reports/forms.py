from django import forms
from django.utils.translation import gettext_lazy as _


class UsagePeriodForm(forms.Form):
    days = forms.TypedChoiceField(
        label=_("Period"),
        coerce=int,
        choices=[(7, _("Last 7 days")), (30, _("Last 30 days")), (90, _("Last 90 days"))],
        required=False,
        empty_value=30,
    )


class AnalyticsFilterForm(forms.Form):
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    channel = forms.ChoiceField(label=_("Channel"), required=False)

    def __init__(self, *args, **kwargs):
        from conversations.models import Conversation

        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", _("All channels")), *Conversation.Channel.choices]


class ExportRequestForm(AnalyticsFilterForm):
    format = forms.ChoiceField(
        label=_("Format"), choices=[("csv", _("CSV (opens in Excel)")), ("jsonl", _("JSON Lines"))]
    )
