"""A tenant's LINE Official Account, its users, the events LINE sent and what went back.

The channel keeps LINE's credentials (encrypted at rest like the providers' API keys); a LINE
user points at a `conversations.Contact`, the customer the conversation services know; every
webhook event is stored once (its `webhookEventId` is unique per channel, so a redelivery is
answered once) and every outgoing message records how its delivery went.
"""

import uuid

from django.db import models

from conversations.models import Contact, Message
from tenants.models import TenantOwnedModel

DEFAULT_HANDOFF_KEYWORDS = ["真人客服", "人工客服", "客服人員", "agent", "human"]

# What the API and the dashboard accept for a channel (LINE's formats, and sane sizes).
CHANNEL_ID_PATTERN = r"^\d{1,32}$"  # the console's Channel ID: digits
CHANNEL_SECRET_PATTERN = r"^[0-9A-Za-z]{16,64}$"  # noqa: S105 - a format, not a secret
ACCESS_TOKEN_LENGTH = (20, 500)
MAX_HANDOFF_KEYWORDS = 20
HANDOFF_KEYWORD_LENGTH = 50
GREETING_LENGTH = 1000


def default_handoff_keywords() -> list[str]:
    return list(DEFAULT_HANDOFF_KEYWORDS)


class LineChannel(TenantOwnedModel):
    class Language(models.TextChoices):
        ZH_HANT = "zh-Hant", "繁體中文"
        EN = "en", "English"

    # The webhook URL carries this id: random, so that channels cannot be enumerated.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    # LINE's own id of the Messaging API channel (the console's "Channel ID").
    channel_id = models.CharField(max_length=32)
    channel_secret_encrypted = models.TextField()
    access_token_encrypted = models.TextField()
    greeting = models.TextField(blank=True)
    handoff_keywords = models.JSONField(default=default_handoff_keywords)
    # The language of the fixed replies (stickers, handoff, quota).
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.ZH_HANT)
    enabled = models.BooleanField(default=True)
    allow_groups = models.BooleanField(default=False)
    # Set when LINE refuses the access token: the dashboard asks an admin to enter it again.
    needs_attention = models.BooleanField(default=False)
    attention_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


class LineUser(TenantOwnedModel):
    """A LINE user (or, when the channel allows them, a group or room) of one channel."""

    channel = models.ForeignKey(LineChannel, on_delete=models.CASCADE, related_name="users")
    # LINE's userId (or groupId / roomId): where pushes go.
    line_user_id = models.CharField(max_length=64)
    source_type = models.CharField(max_length=8, default="user")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    display_name = models.CharField(max_length=200, blank=True)
    profile_fetched = models.BooleanField(default=False)
    following = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "line_user_id"], name="one_line_user_per_channel")
        ]

    def __str__(self) -> str:
        return self.display_name or self.line_user_id


class LineEvent(TenantOwnedModel):
    """One webhook event as LINE sent it, stored before it is answered."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(LineChannel, on_delete=models.CASCADE, related_name="events")
    webhook_event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=32)
    payload = models.JSONField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "webhook_event_id"], name="one_line_event_per_webhook_event_id"
            )
        ]


class LineDelivery(TenantOwnedModel):
    """One outgoing message (a reply or a push, up to five LINE text messages) and its fate."""

    class Kind(models.TextChoices):
        REPLY = "reply", "Reply"
        PUSH = "push", "Push"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Not delivered"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.ForeignKey(LineChannel, on_delete=models.CASCADE, related_name="deliveries")
    line_user = models.ForeignKey(LineUser, on_delete=models.CASCADE, related_name="deliveries")
    # The platform message delivered (the bot's answer, an agent's reply); empty for fixed texts.
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    texts = models.JSONField(default=list)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
