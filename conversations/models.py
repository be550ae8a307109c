import uuid

from django.conf import settings
from django.db import models

from tenants.models import TenantOwnedModel


class Contact(TenantOwnedModel):
    """A customer who reaches the tenant without an account: a visitor of the website widget, a
    LINE user. The channel's own app keeps how it recognises them (a widget's visitor id, a LINE
    user id) and points here; conversations only know the contact."""

    class Channel(models.TextChoices):
        WIDGET = "widget", "Website widget"
        LINE = "line", "LINE"

    channel = models.CharField(max_length=16, choices=Channel.choices)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    # What the channel knows and agents may see: the page a visitor was on, a LINE picture URL...
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_seen_at", "id"]

    def __str__(self) -> str:
        return self.name or f"{self.get_channel_display()} contact {self.pk}"


class Conversation(TenantOwnedModel):
    """One chat between a customer (a member, usually an end user, or a contact from a channel
    such as the website widget or LINE) and the tenant's bot, or a human agent once it has been
    handed off."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        HANDOFF = "handoff", "Waiting for or held by a human"
        CLOSED = "closed", "Closed"

    class Resolution(models.TextChoices):
        BOT = "bot", "Resolved by the assistant"
        AFTER_HANDOFF = "after_handoff", "Resolved by a person after a handoff"
        ABANDONED = "abandoned", "Abandoned"

    class Channel(models.TextChoices):
        API = "api", "REST API"
        STREAM = "stream", "Server-sent events"
        WEBSOCKET = "websocket", "WebSocket"
        DASHBOARD = "dashboard", "Dashboard live chat"
        WIDGET = "widget", "Website widget"
        LINE = "line", "LINE"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="conversations"
    )
    # The customer when it is not a member (exactly one of user and contact is set).
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.API)
    # The human who took the conversation over; empty while it waits in the queue.
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    handoff_reason = models.CharField(max_length=300, blank=True)
    handoff_at = models.DateTimeField(null=True, blank=True)
    # An agent's first answer after the handoff: the agents' response time is measured to it.
    first_agent_reply_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # How the customer's question ended: answered by the bot alone, by a person after a handoff,
    # or left without an end (set by whoever closes or expires the conversation).
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The time of the last message: the lists sort on it.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "status", "-updated_at"]),
            models.Index(fields=["tenant", "user", "-updated_at"]),
            models.Index(fields=["tenant", "contact", "-updated_at"]),
        ]

    def __str__(self) -> str:
        return self.title or str(self.pk)


class Message(TenantOwnedModel):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"
        AGENT = "agent", "Human agent"
        SYSTEM = "system", "System"

    class Grounding(models.TextChoices):
        """What an answer stands on (assistant and agent messages; empty for the others)."""

        FAQ = "faq", "A curated answer"
        KNOWLEDGE = "knowledge", "The knowledge base"
        NO_KNOWLEDGE = "no_knowledge", "Nothing in the knowledge base"
        AGENT = "agent", "A person"
        ERROR = "error", "Broken off by an error"

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        # The client went away or the provider broke off: the text is what was generated.
        INTERRUPTED = "interrupted", "Interrupted"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    content = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    grounding = models.CharField(max_length=16, choices=Grounding.choices, blank=True)
    # [{document_id, document_title, chunk_id, text}] for assistant messages.
    citations = models.JSONField(default=list, blank=True)
    # The curated answer (knowledge.Faq) given word for word, for grounding "faq". A plain id,
    # not a foreign key: deleting the pair later keeps the record of what was answered.
    faq_id = models.PositiveBigIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=200, blank=True)
    # From the question to the last token, and to the first token, in milliseconds.
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            # Analytics and exports read a tenant's messages of a period: with the tenant alone
            # PostgreSQL reads all of the tenant's messages and filters by time (EXPLAIN at
            # 50,000 rows: 5,000 read for 1,415 kept, 94 buffers; with this index 34).
            models.Index(fields=["tenant", "created_at"], name="message_tenant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"

    @property
    def grounding_or_none(self) -> str | None:
        return self.grounding or None

    @property
    def usage(self) -> dict | None:
        if not self.provider:
            return None
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "provider": self.provider,
            "model": self.model,
        }


class Feedback(TenantOwnedModel):
    class Rating(models.TextChoices):
        UP = "up", "Helpful"
        DOWN = "down", "Not helpful"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    # Who rated: a member, or the contact whose conversation it is.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    rating = models.CharField(max_length=8, choices=Rating.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "user"], name="one_feedback_per_user"),
            models.UniqueConstraint(fields=["message", "contact"], name="one_feedback_per_contact"),
        ]
