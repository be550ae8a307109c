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
