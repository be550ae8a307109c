"""The web sources' dashboard pages: a tenant admin adds a source (its first sync runs), sees its
runs, pages and each page's outcome with the reason a fetch failed; bad input is answered on the
form; agents and end users are refused; another tenant's source does not exist."""

import pytest

from knowledge.models import Document
from sources.models import CrawlRun, PageFetch, WebSource
from testsupport.dashboard import dashboard_url, signed_in
from testsupport.environment import committed

pytestmark = pytest.mark.django_db


def test_an_admin_adds_a_source_and_reads_its_sync(tenant_a, site, crawler_settings, eager_ingestion):
    site.page("/news", "News", "<p>Broken</p>", status=500)
    client = signed_in(tenant_a.tenant_admin)
    form = {
        "name": "幫助中心",
        "url": site.url("/"),
        "sitemap_url": "",
        "path_prefix": "/",
        "include": "",
        "exclude": "/gone\n/warranty",
        "selector": "",
        "max_pages": 20,
        "schedule": "daily",
    }
    with committed():
        response = client.post(dashboard_url("web-source-create", tenant_a), form)
    source = WebSource.objects.get(tenant=tenant_a.tenant)
    assert response.status_code == 302
    assert source.exclude == ["/gone", "/warranty"] and source.schedule == "daily"
    run = CrawlRun.objects.get(source=source)
    assert run.status == "done"

    listing = client.get(dashboard_url("web-sources", tenant_a)).content.decode()
    assert "幫助中心" in listing
    detail = client.get(dashboard_url("web-source", tenant_a, source_id=source.pk)).content.decode()
    assert site.url("/returns") in detail and "Returns policy" in detail
    page = client.get(dashboard_url("web-source-run", tenant_a, source_id=source.pk, run_id=run.pk))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-outcome="failed"' in html and "HTTP 500" in html
    assert "disallowed by robots.txt" in html
    # Documents list the page's address.
    documents = client.get(dashboard_url("documents", tenant_a)).content.decode()
    assert site.url("/returns") in documents

    # Zh-Hant labels the outcomes.
    client.cookies["django_language"] = "zh-hant"
    html = client.get(
        dashboard_url("web-source-run", tenant_a, source_id=source.pk, run_id=run.pk)
    ).content.decode()
    assert "新增" in html and "已略過" in html

    with committed():
        assert (
            client.post(dashboard_url("web-source-delete", tenant_a, source_id=source.pk)).status_code == 302
        )
    assert not WebSource.objects.exists() and not Document.objects.filter(kind="web").exists()


def test_the_form_answers_bad_input_with_400(tenant_a, settings):
    settings.WEB_SOURCES_ALLOW_PRIVATE_ADDRESSES = False
    settings.WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS = ()
    client = signed_in(tenant_a.tenant_admin)
    form = {"url": "http://127.0.0.1:9/", "path_prefix": "/", "max_pages": 10, "schedule": "off"}
    response = client.post(dashboard_url("web-source-create", tenant_a), form)
    assert response.status_code == 400
    assert "internal address (127.0.0.1)" in response.content.decode()
    response = client.post(
        dashboard_url("web-source-create", tenant_a),
        {**form, "url": "https://example.com/", "selector": "div[[", "max_pages": 100_000},
    )
    assert response.status_code == 400
    assert not WebSource.objects.exists()


@pytest.mark.parametrize("role", ["agent", "end_user"])
def test_agents_and_end_users_are_refused(tenant_a, role):
    source = WebSource.objects.create(
        tenant=tenant_a.tenant, url="https://example.com/", scope_host="example.com"
    )
    client = signed_in(tenant_a.user(role))
    assert client.get(dashboard_url("web-sources", tenant_a)).status_code == 403
    assert client.get(dashboard_url("web-source", tenant_a, source_id=source.pk)).status_code == 403
    assert client.post(dashboard_url("web-source-sync", tenant_a, source_id=source.pk)).status_code == 403


def test_another_tenants_source_and_run_do_not_exist(tenant_a, tenant_b):
    source = WebSource.objects.create(
        tenant=tenant_a.tenant, url="https://example.com/", scope_host="example.com"
    )
    run = CrawlRun.objects.create(tenant=tenant_a.tenant, source=source)
    PageFetch.objects.create(tenant=tenant_a.tenant, run=run, url="https://example.com/", outcome="added")
    client = signed_in(tenant_b.tenant_admin)
    assert client.get(dashboard_url("web-source", tenant_b, source_id=source.pk)).status_code == 404
    assert (
        client.get(dashboard_url("web-source-run", tenant_b, source_id=source.pk, run_id=run.pk)).status_code
        == 404
    )
    assert client.post(dashboard_url("web-source-delete", tenant_b, source_id=source.pk)).status_code == 404
    assert WebSource.objects.filter(pk=source.pk).exists()
