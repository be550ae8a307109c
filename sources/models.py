"""Web sources: a tenant's website (or a sitemap of it) crawled into documents of kind `web`,
one document per page, re-synced on a schedule. A crawl run records what it did to each page."""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from knowledge.models import Document
from tenants.models import TenantOwnedModel

MAX_PATTERNS = 20
PATTERN_LENGTH = 200


class WebSource(TenantOwnedModel):
    class Schedule(models.TextChoices):
        OFF = "off", _("Off")
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, blank=True)
    # Where the crawl starts, following same-scope links; or, with a sitemap, the sitemap's
    # pages only (and a page left out of the sitemap is removed).
    url = models.URLField(max_length=2000)
    sitemap_url = models.URLField(max_length=2000, blank=True)
    # The scope: pages on this host (scheme and port as the start URL's), under this path.
    scope_host = models.CharField(max_length=255)
    scope_path = models.CharField(max_length=500, default="/")
    # Shell-style patterns (fnmatch) on a page's path and query: a page must match one of
    # `include` (when any is given) and none of `exclude`.
    include = models.JSONField(default=list, blank=True)
    exclude = models.JSONField(default=list, blank=True)
    selector = models.CharField(max_length=300, blank=True, help_text="CSS selector of the content")
    max_pages = models.PositiveIntegerField(default=100)
    schedule = models.CharField(max_length=8, choices=Schedule.choices, default=Schedule.OFF)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return self.name or self.url


class CrawlRun(TenantOwnedModel):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("Manual")
        SCHEDULE = "schedule", _("Schedule")

    source = models.ForeignKey(WebSource, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.MANUAL)
    error = models.TextField(blank=True)
    # Counts of the pages' outcomes so far (`PageFetch.Outcome` values), for the progress.
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "source", "-created_at"], name="crawl_run_source_newest")]

    @property
    def outcome_counts(self) -> list[tuple[str, str, int]]:
        """(outcome, its label, count) of the pages so far, in the outcomes' order."""
        return [
            (outcome.value, outcome.label, self.counts[outcome.value])
            for outcome in PageFetch.Outcome
            if self.counts.get(outcome.value)
        ]


class WebPage(TenantOwnedModel):
    """A page of a source as last seen: its document, its content's hash (an unchanged page
    costs nothing at the next sync) and how many syncs in a row found it gone."""

    source = models.ForeignKey(WebSource, on_delete=models.CASCADE, related_name="pages")
    url = models.URLField(max_length=2000)
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=300, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    gone_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["url"]
        constraints = [models.UniqueConstraint(fields=["source", "url"], name="one_page_per_url")]


class PageFetch(TenantOwnedModel):
    """What one crawl run did with one page, and why when it failed or skipped it."""

    class Outcome(models.TextChoices):
        ADDED = "added", _("Added")
        UPDATED = "updated", _("Updated")
        UNCHANGED = "unchanged", _("Unchanged")
        REMOVED = "removed", _("Removed")
        GONE = "gone", _("Gone (removed if gone again)")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(CrawlRun, on_delete=models.CASCADE, related_name="fetches")
    url = models.URLField(max_length=2000)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
