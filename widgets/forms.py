"""Dashboard form of the widget app. It accepts what the API's `WidgetInput` accepts, with the same
limits and the same origin rule (`widgets.origins.origins_normalize`); only the shape differs:
the origins come one a line from a text area."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from tenants.forms import LinesField
from widgets.models import MAX_DAILY_MESSAGE_CAP, Widget
from widgets.origins import MAX_ORIGINS, origins_normalize

LOCALE_CHOICES = [
    (Widget.Locale.AUTO.value, _("The visitor's browser")),
    (Widget.Locale.ZH_HANT.value, _("Traditional Chinese")),
    (Widget.Locale.EN.value, _("English")),
]


class WidgetForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    allowed_origins = LinesField(
        label=_("Allowed origins"),
        required=True,
        attrs={"spellcheck": "false", "autocapitalize": "off"},
        help_text=_(
            "One a line: scheme, host and port of the sites that may show the widget, "
            "for example https://shop.example.com.tw or http://localhost:8080. Nothing after the port."
        ),
    )
    greeting = forms.CharField(
        label=_("Greeting"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("The first message a visitor sees."),
    )
    locale = forms.ChoiceField(label=_("Language"), choices=LOCALE_CHOICES, initial=Widget.Locale.AUTO)
    identity_verification = forms.BooleanField(
        label=_("Identity verification"),
        required=False,
        help_text=_("Your site signs its customers' ids; unsigned ids are refused."),
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    daily_message_cap = forms.IntegerField(
        label=_("Daily message cap"),
        min_value=0,
        max_value=MAX_DAILY_MESSAGE_CAP,
        initial=1000,
        help_text=_("Visitor messages a day across the widget; 0 is unlimited."),
    )

    @classmethod
    def for_widget(cls, widget: Widget) -> "WidgetForm":
        return cls(
            initial={
                "name": widget.name,
                "allowed_origins": widget.allowed_origins,
                "greeting": widget.greeting,
                "locale": widget.locale,
                "identity_verification": widget.identity_verification,
                "enabled": widget.enabled,
                "daily_message_cap": widget.daily_message_cap,
            }
        )

    def clean_allowed_origins(self) -> list[str]:
        values = self.cleaned_data["allowed_origins"]
        if not values:
            raise forms.ValidationError(_("Give at least one origin."))
        if len(values) > MAX_ORIGINS:
            raise forms.ValidationError(
                ngettext("Give at most %(count)d origin.", "Give at most %(count)d origins.", MAX_ORIGINS)
                % {"count": MAX_ORIGINS}
            )
        normalized, errors = origins_normalize(values)
        if errors:
            raise forms.ValidationError(errors)
        return normalized


class PreviewForm(forms.Form):
    """What the preview page shows: the greeting and language being edited (not yet saved)."""

    greeting = forms.CharField(max_length=500, required=False)
    locale = forms.ChoiceField(choices=LOCALE_CHOICES, required=False)
