"""A web source synced by a real Celery worker, from the API's request to ready documents: the
crawl task and the ingestion tasks it queues run where production runs them."""

from knowledge.models import Document
from sources.models import CrawlRun
from testsupport.environment import wait_for


def test_a_real_worker_crawls_a_new_source(tenant_a, site, celery_worker_process):
    celery_worker_process(
        WEB_SOURCES_ALLOW_PRIVATE_ADDRESSES="false",
        WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS="127.0.0.1/32",
        WEB_CRAWL_DELAY_SECONDS="0",
    )
    response = tenant_a.client("tenant_admin").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/web-sources",
        {"url": site.url("/"), "include": ["/", "/returns", "/warranty"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    run = wait_for(lambda: CrawlRun.objects.filter(status__in=("done", "failed")).first(), seconds=120)
    assert run is not None and run.status == "done", run and run.error
    assert run.counts == {"added": 3}
    urls = {site.url(path) for path in ("/", "/returns", "/warranty")}
    ready = wait_for(
        lambda: Document.objects.filter(kind="web", status="ready").count() == 3 or None, seconds=180
    )
    assert ready, list(Document.objects.values_list("source_url", "status", "error"))
    assert set(Document.objects.filter(kind="web").values_list("source_url", flat=True)) == urls
