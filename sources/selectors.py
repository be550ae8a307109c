"""The reads of web sources; each takes the tenant."""

from django.db.models import Count, OuterRef, Subquery

from sources.models import CrawlRun, PageFetch, WebPage, WebSource
from tenants.errors import NotFound
from tenants.models import Tenant


def web_source_list(*, tenant: Tenant):
    """The tenant's sources, each with its page count and its latest run's status."""
    latest = CrawlRun.objects.for_tenant(tenant).filter(source=OuterRef("pk")).order_by("-created_at", "-id")
    return (
        WebSource.objects.for_tenant(tenant)
        .annotate(
            page_count=Count("pages", distinct=True),
            last_status=Subquery(latest.values("status")[:1]),
            last_run_at=Subquery(latest.values("created_at")[:1]),
        )
        .order_by("-created_at", "id")
    )


def web_source_get(*, tenant: Tenant, source_id) -> WebSource:
    """One source of the tenant; 404 for another tenant's (or no) source."""
    source = WebSource.objects.for_tenant(tenant).filter(pk=source_id).first()
    if source is None or source.tenant_id != tenant.pk:
        raise NotFound("No such web source.")
    return source


def crawl_run_list(*, tenant: Tenant, source: WebSource):
    return CrawlRun.objects.for_tenant(tenant).filter(source=source).order_by("-created_at", "-id")


def crawl_run_get(*, tenant: Tenant, source: WebSource, run_id) -> CrawlRun:
    run = crawl_run_list(tenant=tenant, source=source).filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such crawl run.")
    return run


def page_fetch_list(*, tenant: Tenant, run: CrawlRun):
    return PageFetch.objects.for_tenant(tenant).filter(run=run).order_by("id")


def web_page_list(*, tenant: Tenant, source: WebSource):
    return WebPage.objects.for_tenant(tenant).filter(source=source).select_related("document").order_by("url")
