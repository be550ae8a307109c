"""The crawler against a local site: what becomes a document, what is updated, kept or removed
at the next syncs, what is never fetched, and the outbound guard under the production setting."""

import ipaddress

import pytest

from knowledge import retrieval
from knowledge.models import Chunk, Document
from sources import crawling, services
from sources.models import CrawlRun, PageFetch, WebPage, WebSource
from testsupport.environment import committed
from testsupport.people import client_for

pytestmark = pytest.mark.django_db


def _source(tenant, site, **fields) -> WebSource:
    fields.setdefault("url", site.url("/"))
    fields.setdefault("scope_host", f"127.0.0.1:{site.port}")
    return WebSource.objects.create(tenant=tenant, **fields)


def _sync(source: WebSource) -> CrawlRun:
    """Queue and run one sync, with the ingestion it queues, as the worker would."""
    with committed():
        run = CrawlRun.objects.create(tenant=source.tenant, source=source)
        run = services.crawl_run_execute(tenant_id=source.tenant_id, run_id=run.pk)
    assert run.status == CrawlRun.Status.DONE, run.error
    return run


def _outcomes(run: CrawlRun) -> dict[str, tuple[str, str]]:
    return {fetch.url: (fetch.outcome, fetch.reason) for fetch in PageFetch.objects.filter(run=run)}


def _web_documents(tenant) -> dict[str, Document]:
    return {
        document.source_url: document for document in Document.objects.for_tenant(tenant).filter(kind="web")
    }


def test_a_crawl_then_two_resyncs_add_update_keep_and_remove_exactly_the_right_pages(
    tenant_a, site, crawler_settings, eager_ingestion
):
    source = _source(tenant_a.tenant, site)
    first = _sync(source)

    pages = ["/", "/returns", "/warranty", "/news", "/gone", "/shipping"]
    documents = _web_documents(tenant_a.tenant)
    assert sorted(documents) == sorted(site.url(path) for path in pages)
    assert all(document.status == "ready" and document.chunk_count for document in documents.values())
    assert documents[site.url("/warranty")].title == "保固說明"
    assert documents[site.url("/returns")].fetched_at is not None
    returns_text = " ".join(
        Chunk.objects.filter(document=documents[site.url("/returns")]).values_list("text", flat=True)
    )
    assert "seven days" in returns_text and "Example shop" not in returns_text  # main content, no footer
    outcomes = _outcomes(first)
    assert outcomes[site.url("/private/secret")] == ("skipped", "disallowed by robots.txt")
    assert outcomes[site.url("/brochure.pdf")][0] == "skipped"
    assert outcomes[site.url("/shipping")][0] == "added"  # reached through /old-shipping's redirect
    assert site.fetched("/private/secret") == 0
    # Another host and private addresses are never asked.
    assert {host for host, _path in site.requests} == {f"127.0.0.1:{site.port}"}
    assert first.counts == {"added": 6, "skipped": 2}
    assert site.fetched("/robots.txt") == 1

    # The second sync: /news changed, /gone answers 404 for the first time.
    site.page("/news", "News", "<p>The summer sale replaces the spring one: thirty percent off fans.</p>")
    site.remove("/gone")
    news_id = documents[site.url("/news")].pk
    queued = {url: document.queued_at for url, document in documents.items()}
    second = _sync(source)
    outcomes = _outcomes(second)
    assert outcomes[site.url("/news")][0] == "updated"
    assert outcomes[site.url("/gone")][0] == "gone"
    assert {outcomes[site.url(path)][0] for path in ("/", "/returns", "/warranty", "/shipping")} == {
        "unchanged"
    }
    documents = _web_documents(tenant_a.tenant)
    assert len(documents) == 6  # the gone page waits one more sync
    # /old-shipping's redirect is not followed to /shipping, already read in this sync.
    assert site.fetched("/shipping") == 2 and site.fetched("/old-shipping") == 2
    news = documents[site.url("/news")]
    assert news.pk == news_id and news.status == "ready"  # re-ingested in place, no duplicate
    # The changed page joined the line again (the ingestion progress counts it from then).
    assert news.queued_at > queued[site.url("/news")]
    assert documents[site.url("/returns")].queued_at == queued[site.url("/returns")]
    news_text = " ".join(Chunk.objects.filter(document=news).values_list("text", flat=True))
    assert "summer sale" in news_text and "spring sale" not in news_text

    # The third sync: /gone is still gone, so it is removed with its chunks and vectors.
    gone_id = documents[site.url("/gone")].pk
    third = _sync(source)
    assert _outcomes(third)[site.url("/gone")][0] == "removed"
    documents = _web_documents(tenant_a.tenant)
    assert sorted(documents) == sorted(site.url(path) for path in pages if path != "/gone")
    assert not Chunk.objects.filter(document_id=gone_id).exists()
    assert not WebPage.objects.filter(url=site.url("/gone")).exists()
    hits, _timings = retrieval.search(
        tenant=tenant_a.tenant, query="discontinued toasters autumn clearance", top_k=10
    )
    assert all(hit.document_id != gone_id for hit in hits)
    assert Document.objects.filter(kind="web").count() == 5


def test_citations_carry_the_page_url_and_tenant_b_never_sees_the_pages(
    tenant_a, tenant_b, site, crawler_settings, eager_ingestion
):
    source = _source(tenant_a.tenant, site)
    _sync(source)
    hits, _timings = retrieval.search(
        tenant=tenant_a.tenant, query="return within seven days refund", top_k=3
    )
    assert hits[0].source_url == site.url("/returns")

    response = tenant_a.client("end_user").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/chat",
        {"message": "How many days do I have to return an item?"},
        format="json",
    )
    assert response.status_code == 200, response.content
    citations = response.json()["message"]["citations"]
    assert site.url("/returns") in {citation["source_url"] for citation in citations}

    # Tenant B: not the source, not its runs, not its documents, nothing in search.
    admin_b = tenant_b.client("tenant_admin")
    assert admin_b.get(f"/v1/tenants/{tenant_b.tenant.pk}/web-sources/{source.pk}").status_code == 404
    assert admin_b.get(f"/v1/tenants/{tenant_b.tenant.pk}/web-sources/{source.pk}/runs").status_code == 404
    assert admin_b.get(f"/v1/tenants/{tenant_a.tenant.pk}/web-sources").status_code == 404
    assert admin_b.get(f"/v1/tenants/{tenant_b.tenant.pk}/web-sources").json()["count"] == 0
    assert admin_b.get(f"/v1/tenants/{tenant_b.tenant.pk}/documents").json()["count"] == 0
    assert retrieval.search(tenant=tenant_b.tenant, query="return within seven days refund", top_k=3)[0] == []


def test_a_sitemap_source_crawls_the_listed_pages_and_removes_one_left_out(
    tenant_a, site, crawler_settings, eager_ingestion
):
    source = _source(tenant_a.tenant, site, sitemap_url=site.url("/sitemap.xml"))
    _sync(source)
    listed = {site.url(path) for path in ("/returns", "/warranty", "/news")}
    assert set(_web_documents(tenant_a.tenant)) == listed
    assert site.fetched("/") == 0  # links are not followed: the sitemap says which pages

    site.text(
        "/sitemap.xml",
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{site.url('/returns')}</loc></url><url><loc>{site.url('/news')}</loc></url></urlset>",
        content_type="application/xml",
    )
    run = _sync(source)
    assert _outcomes(run)[site.url("/warranty")] == ("removed", "left out of the sitemap")
    assert set(_web_documents(tenant_a.tenant)) == listed - {site.url("/warranty")}


def test_scope_patterns_selector_and_page_limit(tenant_a, site, crawler_settings, eager_ingestion):
    source = _source(tenant_a.tenant, site, exclude=["/news*", "/gone"], selector="article p", max_pages=3)
    run = _sync(source)
    documents = _web_documents(tenant_a.tenant)
    assert len(documents) == 3 and not {site.url("/news"), site.url("/gone")} & set(documents)
    assert "page limit (3)" in run.error
    assert site.fetched("/news") == 0
    # The selector kept the paragraphs: not the page's heading.
    text = " ".join(Chunk.objects.filter(document=documents[site.url("/")]).values_list("text", flat=True))
    assert "Welcome to the example shop" in text


def test_gzip_pages_are_read_and_an_oversized_page_fails_with_the_reason(
    tenant_a, site, crawler_settings, eager_ingestion
):
    crawler_settings.WEB_CRAWL_MAX_PAGE_BYTES = 4096
    site.page("/returns", "Returns policy", "<p>Seven days to return.</p>" + "<p>padding</p>" * 10, gzip=True)
    site.page("/news", "News", "<p>" + "zero " * 200_000 + "</p>", gzip=True)  # ~1 MB, a few KB gzipped
    run = _sync(_source(tenant_a.tenant, site))
    outcomes = _outcomes(run)
    assert outcomes[site.url("/returns")][0] == "added"
    assert outcomes[site.url("/news")] == ("failed", "the page is larger than 4,096 bytes once decompressed")


def test_the_production_setting_refuses_the_local_site_at_every_connection(tenant_a, site, settings):
    settings.WEB_SOURCES_ALLOW_PRIVATE_ADDRESSES = False
    settings.WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS = ()
    settings.WEB_CRAWL_DELAY_SECONDS = 0
    response = tenant_a.client("tenant_admin").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/web-sources", {"url": site.url("/")}, format="json"
    )
    assert response.status_code == 400
    assert "internal address (127.0.0.1)" in response.json()["error"]["details"]["url"][0]

    # A source saved anyway (say, while the operator allowed it) is refused when it is crawled.
    source = _source(tenant_a.tenant, site)
    with committed():
        run = CrawlRun.objects.create(tenant=source.tenant, source=source)
        run = services.crawl_run_execute(tenant_id=source.tenant_id, run_id=run.pk)
    (fetch,) = PageFetch.objects.filter(run=run)
    assert fetch.outcome == "failed"
    assert "refused: 127.0.0.1 resolves to an internal address (127.0.0.1)" in fetch.reason
    assert site.requests == []
    assert not Document.objects.filter(kind="web").exists()


def test_the_guard_refuses_a_private_address_outside_the_opened_network(site, crawler_settings):
    """Only 127.0.0.1 is opened: 127.0.0.2 (loopback too, so reachable without the guard) and a
    redirect towards it are refused at connect time, with the address named."""
    site.redirect("/escape", f"http://127.0.0.2:{site.port}/")
    with crawling.Fetcher(
        user_agent="test",
        timeout=5,
        max_bytes=100_000,
        delay=0,
        max_delay=0,
        allow_private=False,
        allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
    ) as fetcher:
        direct = fetcher.get(f"http://127.0.0.2:{site.port}/", follow=lambda url: None)
        redirected = fetcher.get(site.url("/escape"), follow=lambda url: None)
        allowed = fetcher.get(site.url("/returns"), follow=lambda url: None)
    assert direct.error == "refused: 127.0.0.2 resolves to an internal address (127.0.0.2)"
    assert redirected.error == "refused: 127.0.0.2 resolves to an internal address (127.0.0.2)"
    assert allowed.status == 200 and b"seven days" in allowed.body


def test_the_crawler_names_itself(tenant_a, site, crawler_settings, eager_ingestion):
    _sync(_source(tenant_a.tenant, site, max_pages=1))
    assert site.user_agents == {crawler_settings.WEB_CRAWL_USER_AGENT}
    assert crawler_settings.WEB_CRAWL_USER_AGENT.startswith("CustomerServiceAI-WebSources/")


def test_a_scheduled_sync_is_queued_only_when_due(tenant_a, site, crawler_settings):
    from datetime import timedelta

    from django.utils import timezone

    daily = _source(tenant_a.tenant, site, schedule="daily")
    _source(tenant_a.tenant, site, schedule="off")
    with committed():
        assert services.web_sources_sync_due() == 1
    assert CrawlRun.objects.filter(source=daily, trigger="schedule").count() == 1
    CrawlRun.objects.filter(source=daily).update(status="done")
    assert services.web_sources_sync_due() == 0  # synced just now
    assert services.web_sources_sync_due(now=timezone.now() + timedelta(days=1)) == 1


def test_api_creates_lists_syncs_and_reads_runs(tenant_a, site, crawler_settings, eager_ingestion):
    client = client_for(tenant_a.tenant_admin, tenant_a.tenant)
    base = f"/v1/tenants/{tenant_a.tenant.pk}/web-sources"
    with committed():
        response = client.post(
            base,
            {"url": site.url("/"), "exclude": ["/news"], "schedule": "weekly", "max_pages": 20},
            format="json",
        )
    assert response.status_code == 201, response.content
    source = response.json()
    assert source["scope_host"] == f"127.0.0.1:{site.port}" and source["path_prefix"] == "/"
    runs = client.get(f"{base}/{source['id']}/runs").json()
    assert runs["count"] == 1 and runs["results"][0]["status"] == "done"
    assert runs["results"][0]["counts"]["added"] == 5
    pages = client.get(f"{base}/{source['id']}/runs/{runs['results'][0]['id']}/pages").json()
    assert {page["url"] for page in pages["results"] if page["outcome"] == "added"} >= {site.url("/returns")}
    documents = client.get(f"/v1/tenants/{tenant_a.tenant.pk}/documents").json()["results"]
    assert {document["source_url"] for document in documents} >= {site.url("/returns")}

    # A second sync while none runs: 202; the source's delete takes its documents along.
    with committed():
        assert client.post(f"{base}/{source['id']}/sync").status_code == 202
    with committed():
        assert client.delete(f"{base}/{source['id']}").status_code == 204
    assert not Document.objects.filter(kind="web").exists()


def test_a_second_sync_while_one_is_queued_is_409(tenant_a, site, crawler_settings):
    source = _source(tenant_a.tenant, site)
    client = client_for(tenant_a.tenant_admin, tenant_a.tenant)
    url = f"/v1/tenants/{tenant_a.tenant.pk}/web-sources/{source.pk}/sync"
    assert client.post(url).status_code == 202  # queued; its task is sent only on commit
    assert client.post(url).status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.com/", "max_pages": 0}, "max_pages"),
        ({"url": "https://example.com/", "max_pages": 100_000}, "max_pages"),
        ({"url": "https://example.com/", "schedule": "hourly"}, "schedule"),
        ({"url": "https://example.com/", "selector": "div[["}, "selector"),
        ({"url": "https://example.com/", "include": "/help/*"}, "include"),
        ({"url": "https://example.com/", "path_prefix": "help"}, "path_prefix"),
        (
            {"url": "https://example.com/", "sitemap_url": "https://other.example.org/sitemap.xml"},
            "sitemap_url",
        ),
    ],
)
def test_bad_input_is_400_naming_the_field(tenant_a, body, field):
    response = tenant_a.client("tenant_admin").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/web-sources", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]


def test_a_page_fetched_again_while_its_ingestion_runs_is_ingested_with_the_new_content(
    tenant_a, eager_ingestion, monkeypatch
):
    """The ingestion that read the old content drops its result; the new content gets its turn
    (else the page would stay stale while its hash says it is current)."""
    from django.utils import timezone

    from knowledge import extraction, ingestion
    from knowledge.services import web_document_save

    url = "https://shop.example.com/news"
    # Outside `committed()`: the ingestion it queues is never sent; the test runs it by hand.
    document = web_document_save(
        tenant=tenant_a.tenant,
        document=None,
        url=url,
        title="News",
        text="# News\n\nThe spring sale.",
        fetched_at=timezone.now(),
    )
    assert document.status == "pending"
    real_extract = extraction.extract

    def extract_then_page_changes(*args, **kwargs):
        extracted = real_extract(*args, **kwargs)
        web_document_save(
            tenant=tenant_a.tenant,
            document=document,
            url=url,
            title="News",
            text="# News\n\nThe summer sale.",
            fetched_at=timezone.now(),
        )
        return extracted

    monkeypatch.setattr(extraction, "extract", extract_then_page_changes)
    assert ingestion.document_ingest(tenant_id=tenant_a.tenant.pk, document_id=document.pk) is None
    document.refresh_from_db()
    assert (document.status, document.stage) == ("pending", "waiting")
    assert not Chunk.objects.filter(document=document).exists()

    monkeypatch.setattr(extraction, "extract", real_extract)
    document = ingestion.document_ingest(tenant_id=tenant_a.tenant.pk, document_id=document.pk)
    assert document.status == "ready"
    assert "summer sale" in " ".join(Chunk.objects.filter(document=document).values_list("text", flat=True))
