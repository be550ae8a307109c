"""The dashboard's form of a LINE channel: the same rules as the API's input (line_channel.models'
formats and sizes). The secret and the access token are write-only: never rendered back, and on
an existing channel an empty field keeps what is stored."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from line_channel.models import (
    ACCESS_TOKEN_LENGTH,
    CHANNEL_ID_PATTERN,
    CHANNEL_SECRET_PATTERN,
    DEFAULT_HANDOFF_KEYWORDS,
    GREETING_LENGTH,
    HANDOFF_KEYWORD_LENGTH,
    MAX_HANDOFF_KEYWORDS,
    LineChannel,
)

_KEYWORD_SEPARATORS = re.compile(r"[\n,，、]+")


def _secret_input() -> forms.PasswordInput:
    return forms.PasswordInput(
        render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"}
    )


class LineChannelForm(forms.Form):
    name = forms.CharField(label=_("Account name"), max_length=100)
    channel_id = forms.RegexField(
        label=_("Channel ID"),
        regex=CHANNEL_ID_PATTERN,
        max_length=32,
        help_text=_("LINE Developers console → your channel → Basic settings → Channel ID (digits)."),
        error_messages={"invalid": _("The Channel ID is made of digits only.")},
    )
    channel_secret = forms.RegexField(
        label=_("Channel secret"),
        regex=CHANNEL_SECRET_PATTERN,
        max_length=64,
        widget=_secret_input(),
        help_text=_("Basic settings → Channel secret. Stored encrypted and never shown again."),
        error_messages={"invalid": _("The channel secret is 16 to 64 letters and digits.")},
    )
    channel_access_token = forms.CharField(
        label=_("Channel access token"),
        min_length=ACCESS_TOKEN_LENGTH[0],
        max_length=ACCESS_TOKEN_LENGTH[1],
        widget=_secret_input(),
        help_text=_(
            "Messaging API tab → Channel access token (long-lived) → Issue. "
            "Stored encrypted and never shown again."
        ),
    )
    greeting = forms.CharField(
        label=_("Greeting"),
        max_length=GREETING_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Sent when someone adds the account as a friend. Empty: a short default greeting."),
    )
    handoff_keywords = forms.CharField(
        label=_("Handoff keywords"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line. A message containing one is handed to a person in the agent inbox."),
    )
    language = forms.ChoiceField(
        label=_("Language of the fixed replies"), choices=LineChannel.Language.choices
    )
    enabled = forms.BooleanField(label=_("Enabled (answer LINE's webhook)"), required=False)
    allow_groups = forms.BooleanField(label=_("Answer in group chats when mentioned"), required=False)

    def __init__(self, *args, channel: LineChannel | None = None, **kwargs):
        self.channel = channel
        if channel is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": channel.name,
                    "channel_id": channel.channel_id,
                    "greeting": channel.greeting,
                    "handoff_keywords": "\n".join(channel.handoff_keywords),
                    "language": channel.language,
                    "enabled": channel.enabled,
                    "allow_groups": channel.allow_groups,
                },
            )
        else:
            kwargs.setdefault(
                "initial",
                {
                    "handoff_keywords": "\n".join(DEFAULT_HANDOFF_KEYWORDS),
                    "language": LineChannel.Language.ZH_HANT,
                    "enabled": True,
                },
            )
        super().__init__(*args, **kwargs)
        if channel is not None:
            # Stored secrets are kept unless a new one is typed.
            for name in ("channel_secret", "channel_access_token"):
                field = self.fields[name]
                field.required = False
                field.widget.attrs["placeholder"] = _("Stored — leave empty to keep it")

    def clean_handoff_keywords(self) -> list[str]:
        keywords = [
            keyword.strip()
            for keyword in _KEYWORD_SEPARATORS.split(self.cleaned_data.get("handoff_keywords") or "")
            if keyword.strip()
        ]
        keywords = list(dict.fromkeys(keywords))
        if len(keywords) > MAX_HANDOFF_KEYWORDS:
            raise ValidationError(
                _("At most %(count)d keywords.") % {"count": MAX_HANDOFF_KEYWORDS}, code="too_many"
            )
        too_long = [keyword for keyword in keywords if len(keyword) > HANDOFF_KEYWORD_LENGTH]
        if too_long:
            raise ValidationError(
                _("A keyword has at most %(count)d characters: %(keyword)s")
                % {"count": HANDOFF_KEYWORD_LENGTH, "keyword": too_long[0][:60]},
                code="too_long",
            )
        return keywords

    def changes(self) -> dict:
        """The cleaned values as the services take them: empty secrets left out (kept)."""
        data = dict(self.cleaned_data)
        for name in ("channel_secret", "channel_access_token"):
            if not data.get(name):
                data.pop(name, None)
        return data
