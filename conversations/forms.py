"""Dashboard forms of conversations. Validation only."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

STATUS_LABELS = {"active": _("Active"), "handoff": _("Handed off"), "closed": _("Closed")}
STATUS_CHOICES = [("", _("Any status")), *STATUS_LABELS.items()]
ROLE_LABELS = {"user": _("Customer"), "assistant": _("Assistant"), "agent": _("Agent"), "system": _("System")}


class ConversationFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=STATUS_CHOICES, required=False)
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    user = forms.EmailField(label=_("Customer email"), required=False)

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("The end date is before the start date."))
        return data


class ReplyForm(forms.Form):
    content = forms.CharField(
        label=_("Reply"),
        max_length=settings.CHAT_MAX_MESSAGE_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
