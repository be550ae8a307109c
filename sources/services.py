"""The writes of web sources: a source's create, update and delete, queueing a sync (by hand or
when its schedule is due), and the crawl a sync runs (`crawl_run_execute`, called by the task).

A crawl re-reads every page it knows as well as those it finds, so that a sync sees what
changed and what went away: an unchanged page (same content hash) costs one fetch and nothing
more; a changed page is re-ingested in place (one document per URL, its id kept); a page that
answers 404 or 410 at two syncs in a row, or that a sitemap no longer lists, is removed with its
vectors (knowledge's `document_delete`). Documents are made and removed only through knowledge's
services, within the plan's quotas.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from knowledge.models import Document
from knowledge.services import QuotaExceeded, document_delete, web_document_save
from sources import crawling
from sources.models import CrawlRun, PageFetch, WebPage, WebSource
from tenants import rls
from tenants.audit import audit_record
from tenants.errors import APIError, Conflict
from tenants.models import Tenant

logger = logging.getLogger(__name__)

CRAWL_TASK = "sources.tasks.crawl_source"
SCHEDULE_INTERVALS = {
    WebSource.Schedule.DAILY: timedelta(days=1),
    WebSource.Schedule.WEEKLY: timedelta(days=7),
}
# A scheduled sync starts a little early rather than a whole beat period late.
SCHEDULE_SLACK = timedelta(minutes=30)
GONE_STATUSES = (404, 410)
GONE_SYNCS_BEFORE_REMOVAL = 2
# Why a redirect is not followed to a page this sync has already read (no outcome is recorded).
ALREADY_READ = "already read in this sync"


# --- Sources --------------------------------------------------------------------------------


def web_source_create(*, tenant: Tenant, **fields) -> WebSource:
    """Create a source (fields validated by the caller) and queue its first sync."""
    with transaction.atomic():
        source = WebSource.objects.create(tenant=tenant, **fields)
        audit_record(tenant=tenant, action="web_source.create", target=source, details={"url": source.url})
        web_source_sync(source=source)
    return source


def web_source_update(*, source: WebSource, **changes) -> WebSource:
    """Change a source; pages it now leaves out of its scope are removed at its next sync."""
    for name, value in changes.items():
        setattr(source, name, value)
    source.save()
    return source


def web_source_delete(*, source: WebSource) -> None:
    """Delete a source with the documents of its pages (their vectors first: with the index
    down this fails with a 503 and the source stays, with whatever pages were not yet removed)."""
    for page in (
        WebPage.objects.for_tenant_id(source.tenant_id).filter(source=source).select_related("document")
    ):
        if page.document is not None:
            document_delete(document=page.document)
    with transaction.atomic():
        audit_record(
            tenant=source.tenant, action="web_source.delete", target=source, details={"url": source.url}
        )
        source.delete()


def _in_progress(source: WebSource):
    """The source's run that is queued or running, if any (a run untouched for longer than a
    crawl may last is taken as lost: its worker died)."""
    cutoff = timezone.now() - timedelta(seconds=settings.WEB_CRAWL_MAX_RUN_SECONDS * 2)
    runs = CrawlRun.objects.for_tenant_id(source.tenant_id).filter(
        source=source, status__in=(CrawlRun.Status.QUEUED, CrawlRun.Status.RUNNING)
    )
    runs.filter(created_at__lt=cutoff).update(
        status=CrawlRun.Status.FAILED,
        error="The crawl was lost (its worker stopped).",
        finished_at=timezone.now(),
    )
    return runs.filter(created_at__gte=cutoff).first()


def web_source_sync(*, source: WebSource, trigger: str = CrawlRun.Trigger.MANUAL) -> CrawlRun:
    """Queue a crawl of the source (sent once the transaction commits). 409 while one is
    queued or running."""
    with transaction.atomic():
        WebSource.objects.for_tenant_id(source.tenant_id).select_for_update().filter(pk=source.pk).first()
        running = _in_progress(source)
        if running is not None:
            raise Conflict(
                "A sync of this source is already queued or running.", details={"run_id": running.pk}
            )
        run = CrawlRun.objects.create(tenant_id=source.tenant_id, source=source, trigger=trigger)
    tenant_id, run_id = str(source.tenant_id), run.pk
    transaction.on_commit(lambda: current_app.tasks[CRAWL_TASK].delay(tenant_id, run_id))
    return run


def web_sources_sync_due(*, now=None) -> int:
    """Queue a sync of every source whose daily or weekly schedule is due (Celery beat runs
    this hourly). Returns how many were queued."""
    now = now or timezone.now()
    queued = 0
    for source in WebSource.objects.exclude(schedule=WebSource.Schedule.OFF).order_by("created_at"):
        with rls.scope(source.tenant_id):
            last = (
                CrawlRun.objects.for_tenant_id(source.tenant_id)
                .filter(source=source)
                .order_by("-created_at")
                .first()
            )
            if (
                last is not None
                and last.created_at > now - SCHEDULE_INTERVALS[source.schedule] + SCHEDULE_SLACK
            ):
                continue
            try:
                web_source_sync(source=source, trigger=CrawlRun.Trigger.SCHEDULE)
            except Conflict:
                continue
            queued += 1
    return queued


# --- The crawl ------------------------------------------------------------------------------


class _Crawl:
    """One run of a source's crawl: the queue of pages, the pages known from earlier syncs, and
    the outcome of each page, recorded as it goes (the dashboard shows the progress)."""

    def __init__(self, run: CrawlRun) -> None:
        self.run = run
        self.source = source = run.source
        self.tenant = source.tenant
        self.scope = crawling.Scope.of(
            source.url, path_prefix=source.scope_path, include=source.include, exclude=source.exclude
        )
        self.known = {
            page.url: page
            for page in WebPage.objects.for_tenant(self.tenant)
            .filter(source=source)
            .select_related("document")
        }
        self.counts: dict[str, int] = {}
        self.seen: set[str] = set()
        self.hashes: dict[str, str] = {}
        self.deadline = time.monotonic() + settings.WEB_CRAWL_MAX_RUN_SECONDS

    # Recording.
    def record(self, url: str, outcome: str, *, reason: str = "", status=None, document=None) -> None:
        PageFetch.objects.create(
            tenant=self.tenant,
            run=self.run,
            url=url[:2000],
            outcome=outcome,
            reason=reason[:500],
            http_status=status,
            document=document,
        )
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        CrawlRun.objects.filter(pk=self.run.pk).update(counts=self.counts)

    def remove(self, page: WebPage, *, reason: str, status=None) -> None:
        if page.document is not None:
            document_delete(document=page.document)
        page.delete()
        self.known.pop(page.url, None)
        self.record(page.url, PageFetch.Outcome.REMOVED, reason=reason, status=status)

    def follow(self, url: str) -> str | None:
        return self.scope.outside(url)

    # The crawl.
    def execute(self, fetcher: crawling.Fetcher) -> None:
        source = self.source
        start = crawling.normalized_url(source.url)
        if source.sitemap_url:
            listed = [
                url
                for url in fetcher.sitemap_urls(source.sitemap_url, follow=self.follow)
                if not self.scope.outside(url)
            ]
            queue = deque(listed)
            follow_links = False
        else:
            listed = None
            queue = deque([start, *sorted(self.known)])
            follow_links = True
        fetched = 0
        while queue:
            url = queue.popleft()
            if url in self.seen:
                continue
            if time.monotonic() > self.deadline:
                self.run.error = "The crawl reached its time limit; the pages left wait for the next sync."
                break
            if fetched >= source.max_pages:
                self.run.error = (
                    f"The page limit ({source.max_pages}) was reached; further pages were left out."
                )
                break
            self.seen.add(url)
            outside = self.scope.outside(url)
            if outside:
                continue  # a known page the scope no longer covers: removed below
            refusal = fetcher.robots_refusal(url)
            if refusal:
                # Disallowed is a choice of the site; an unreadable robots.txt is a failure.
                unreadable = refusal.startswith("robots.txt")
                self.record(
                    url, PageFetch.Outcome.FAILED if unreadable else PageFetch.Outcome.SKIPPED, reason=refusal
                )
                continue
            fetched += 1
            links = self.fetch_one(fetcher, url)
            if follow_links:
                queue.extend(link for link in links if link not in self.seen and not self.scope.outside(link))
        # Pages no longer in the scope, or (with a sitemap) no longer listed, go.
        for url, page in list(self.known.items()):
            if self.scope.outside(url):
                self.remove(page, reason=f"no longer in the source's scope ({self.scope.outside(url)})")
            elif listed is not None and url not in listed and url not in self.seen:
                self.remove(page, reason="left out of the sitemap")

    def fetch_one(self, fetcher: crawling.Fetcher, url: str) -> list[str]:
        """Fetch one page and do what its answer asks; the links it holds."""
        known = self.known.get(url)

        def follow(next_url: str) -> str | None:
            if next_url in self.seen:
                return ALREADY_READ
            return self.scope.outside(next_url) or fetcher.robots_refusal(next_url)

        result = fetcher.get(url, follow=follow)
        if result.error.endswith(ALREADY_READ):
            if known is not None:
                self.remove(known, reason=f"now redirects to a page already read ({result.error})")
            return []
        if result.error:
            self.record(url, PageFetch.Outcome.FAILED, reason=result.error, status=result.status)
            return []
        if result.url != url:
            # Moved within the scope: the page is kept under the address it now answers at.
            if known is not None:
                self.remove(known, reason=f"now redirects to {result.url}", status=result.status)
            self.seen.add(result.url)
            url, known = result.url, self.known.get(result.url)
        if result.status in GONE_STATUSES:
            if known is None:
                self.record(
                    url, PageFetch.Outcome.FAILED, reason=f"HTTP {result.status}", status=result.status
                )
            elif known.gone_count + 1 >= GONE_SYNCS_BEFORE_REMOVAL:
                self.remove(known, reason=f"HTTP {result.status} at two syncs in a row", status=result.status)
            else:
                WebPage.objects.filter(pk=known.pk).update(gone_count=known.gone_count + 1)
                self.record(
                    url,
                    PageFetch.Outcome.GONE,
                    reason=f"HTTP {result.status}; removed if still gone at the next sync",
                    status=result.status,
                    document=known.document,
                )
            return []
        if result.status != 200:
            self.record(url, PageFetch.Outcome.FAILED, reason=f"HTTP {result.status}", status=result.status)
            return []
        if result.content_type not in crawling.HTML_TYPES:
            self.record(
                url,
                PageFetch.Outcome.SKIPPED,
                reason=f"not an HTML page ({result.content_type or 'no type'})",
                status=result.status,
            )
            return []
        page = crawling.read_page(result.body, url=url, charset=result.charset, selector=self.source.selector)
        if page.noindex:
            self.record(
                url, PageFetch.Outcome.SKIPPED, reason="the page asks not to be indexed (noindex)", status=200
            )
            return page.links
        if not page.text:
            reason = (
                "the CSS selector matched no content" if self.source.selector else "no main content was found"
            )
            self.record(url, PageFetch.Outcome.FAILED, reason=reason, status=200)
            return page.links
        content_hash = hashlib.sha256(f"{page.title}\n{page.text}".encode()).hexdigest()
        twin = self.hashes.get(content_hash)
        if twin is not None:
            self.record(url, PageFetch.Outcome.SKIPPED, reason=f"the same content as {twin}", status=200)
            return page.links
        self.hashes[content_hash] = url
        now = timezone.now()
        if known is not None and known.document is not None and known.content_hash == content_hash:
            WebPage.objects.filter(pk=known.pk).update(gone_count=0, fetched_at=now)
            self.record(url, PageFetch.Outcome.UNCHANGED, status=200, document=known.document)
            return page.links
        try:
            document = web_document_save(
                tenant=self.tenant,
                document=known.document if known is not None else None,
                url=url,
                title=page.title,
                text=page.text,
                fetched_at=now,
            )
        except (QuotaExceeded, Document.DoesNotExist) as error:
            self.record(
                url, PageFetch.Outcome.FAILED, reason=str(getattr(error, "detail", error)), status=200
            )
            return page.links
        WebPage.objects.update_or_create(
            tenant=self.tenant,
            source=self.source,
            url=url,
            defaults={
                "document": document,
                "title": page.title[:300],
                "content_hash": content_hash,
                "fetched_at": now,
                "gone_count": 0,
            },
        )
        outcome = (
            PageFetch.Outcome.ADDED if known is None or known.document is None else PageFetch.Outcome.UPDATED
        )
        self.record(url, outcome, status=200, document=document)
        return page.links


def crawl_run_execute(*, tenant_id, run_id: int) -> CrawlRun | None:
    """Run one queued crawl to its end; a failure ends the run `failed` with the reason. Pages
    already done stay done: a later sync starts over, costing nothing for unchanged pages."""
    run = CrawlRun.objects.for_tenant_id(tenant_id).filter(pk=run_id).select_related("source__tenant").first()
    if run is None or run.status not in (CrawlRun.Status.QUEUED, CrawlRun.Status.RUNNING):
        return run
    CrawlRun.objects.filter(pk=run.pk).update(status=CrawlRun.Status.RUNNING, started_at=timezone.now())
    crawl = _Crawl(run)
    status, error = CrawlRun.Status.DONE, ""
    try:
        with crawling.Fetcher(
            user_agent=settings.WEB_CRAWL_USER_AGENT,
            timeout=settings.WEB_CRAWL_TIMEOUT_SECONDS,
            max_bytes=settings.WEB_CRAWL_MAX_PAGE_BYTES,
            delay=settings.WEB_CRAWL_DELAY_SECONDS,
            max_delay=settings.WEB_CRAWL_MAX_DELAY_SECONDS,
            allow_private=settings.WEB_SOURCES_ALLOW_PRIVATE_ADDRESSES,
            allowed_networks=settings.WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS,
        ) as fetcher:
            crawl.execute(fetcher)
        error = run.error
    except crawling.FetchError as failure:
        status, error = CrawlRun.Status.FAILED, f"The crawl could not start: {failure}."
    except APIError as failure:  # the index or the queue unavailable, say
        status, error = CrawlRun.Status.FAILED, str(failure.detail)
    except Exception:
        logger.exception("crawl run %s failed", run_id)
        status, error = CrawlRun.Status.FAILED, "The crawl stopped on an unexpected error; try again later."
    CrawlRun.objects.filter(pk=run.pk).update(
        status=status, error=error[:2000], counts=crawl.counts, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run
