"""The website widget: a tenant's chat on its own site, and the visitors it serves.

A `Widget` holds what the enterprise configured (allowed origins, greeting, language, identity
verification, a daily cap) and its publishable key; a `Visitor` is how a widget recognises a
person (a server-made id kept by the browser with a resume token, or the enterprise's own
customer id, verified by HMAC) and points at the `conversations.Contact` the chat services serve.
"""

from django.db import models

from conversations.models import Contact
from tenants.models import TenantOwnedModel

# The highest daily message cap a widget may have (the API and the dashboard's form alike).
MAX_DAILY_MESSAGE_CAP = 1_000_000


class Widget(TenantOwnedModel):
    class Locale(models.TextChoices):
        AUTO = "auto", "The visitor's browser"
        ZH_HANT = "zh-Hant", "Traditional Chinese"
        EN = "en", "English"

    name = models.CharField(max_length=100)
    # Safe in a web page: it names the widget, it proves nothing (the Origin check and the
    # visitor session do the rest).
    public_key = models.CharField(max_length=64, unique=True)
    # Exact origins, normalised: scheme://host[:port] with the default port left out.
    allowed_origins = models.JSONField(default=list)
    greeting = models.CharField(max_length=500, blank=True)
    locale = models.CharField(max_length=8, choices=Locale.choices, default=Locale.AUTO)
    identity_verification = models.BooleanField(default=False)
    # Fernet-encrypted (llm.crypto): verifying a visitor_hash needs the secret itself.
    identity_secret_encrypted = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    # Visitor messages a day across the widget; 0 is unlimited.
    daily_message_cap = models.PositiveIntegerField(default=1000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Visitor(TenantOwnedModel):
    widget = models.ForeignKey(Widget, on_delete=models.CASCADE, related_name="visitors")
    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="widget_visitor")
    # Server-made (`v_…`) for an anonymous visitor; the enterprise's customer id when identified.
    visitor_id = models.CharField(max_length=200)
    identified = models.BooleanField(default=False)
    # SHA-256 of the resume token an anonymous visitor's browser keeps; empty when identified.
    resume_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    last_page_url = models.URLField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_seen_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["widget", "identified", "visitor_id"], name="one_visitor_per_id_and_widget"
            )
        ]

    def __str__(self) -> str:
        return self.visitor_id
