import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tenants.models import TenantOwnedModel


class Export(TenantOwnedModel):
    """A tenant's conversation log written to a file by a Celery task (one row a message), kept
    for EXPORT_RETENTION_DAYS and then deleted; the download link dies with it."""

    class Format(models.TextChoices):
        CSV = "csv", _("CSV (UTF-8 with BOM)")
        JSONL = "jsonl", _("JSON Lines")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a worker")
        RUNNING = "running", _("Being written")
        READY = "ready", _("Ready to download")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired and deleted")

    # Not guessable: the id is part of the download link.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    since = models.DateField()
    until = models.DateField()
    format = models.CharField(max_length=8, choices=Format.choices)
    channel = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Relative to MEDIA_ROOT, always under tenants/<tenant id>/exports/.
    file_path = models.CharField(max_length=300, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            models.Index(fields=["status", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_format_display()} export {self.since} to {self.until}"
