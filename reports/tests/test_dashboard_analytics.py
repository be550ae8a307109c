"""The analytics page: the figures, a server-drawn chart, and each unanswered question with a
link to write its curated answer; admins only, another tenant's page is 404."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from testsupport.environment import committed
from testsupport.people import PASSWORD

pytestmark = pytest.mark.django_db


def page(client, people, **query):
    return client.get(f"/dashboard/t/{people.tenant.pk}/analytics/", query)


def test_the_page_shows_figures_chart_and_a_link_to_answer_each_unanswered_question(
    client, tenant_a, counted_a, django_assert_max_num_queries
):
    assert client.login(email=tenant_a.tenant_admin.email, password=PASSWORD)
    with django_assert_max_num_queries(25):
        response = page(client, tenant_a, since=str(timezone.localdate() - dt.timedelta(days=6)))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html and "chart-bar-faq" in html and "chart-bar-none" in html
    assert "火星车票怎么买" in html and "退費要多久？" in html
    assert (
        f"/dashboard/t/{tenant_a.tenant.pk}/faqs/new/?question=%E7%81%AB%E6%98%9F%E8%BD%A6%E7%A5%A8%E6%80%8E%E4%B9%88%E4%B9%B0"
        in html
    )
    assert "<script>" not in html and "style=" not in html


def test_agents_may_not_open_it_and_another_tenant_gets_404(client, tenant_a, tenant_b):
    assert client.login(email=tenant_a.agent.email, password=PASSWORD)
    assert page(client, tenant_a).status_code == 403
    assert client.login(email=tenant_b.tenant_admin.email, password=PASSWORD)
    assert page(client, tenant_a).status_code == 404


def test_a_bad_period_is_said_not_crashed(client, tenant_a):
    assert client.login(email=tenant_a.tenant_admin.email, password=PASSWORD)
    response = page(client, tenant_a, since="2025-03-02", until="2025-03-01", channel="fax")
    assert response.status_code == 200


def test_a_question_the_knowledge_lacks_shows_in_the_unanswered_list(client, tenant_a, knowledge_a):
    """End to end: the chat service records the grounding, the page lists the question."""
    from asgiref.sync import async_to_sync

    from conversations import chat, services

    visitor = services.contact_create(tenant=tenant_a.tenant, channel="widget", name="訪客")
    for text in ("How long is the battery covered by the warranty?", "火星的首都在哪裡？"):
        turn = chat.turn_start(
            tenant=tenant_a.tenant, contact=visitor, text=text, conversation_id=None, channel="widget"
        )
        async_to_sync(chat.turn_answer_whole)(turn)

    assert client.login(email=tenant_a.tenant_admin.email, password=PASSWORD)
    html = page(client, tenant_a).content.decode()
    unanswered = html[html.index("unanswered") :]
    assert "火星的首都在哪裡？" in unanswered
    assert "battery" not in unanswered


def test_an_admin_exports_from_the_dashboard_and_downloads_the_file(client, tenant_a, tenant_b, counted_a):
    from platform_project.celery import app

    assert client.login(email=tenant_a.tenant_admin.email, password=PASSWORD)
    url = f"/dashboard/t/{tenant_a.tenant.pk}/exports/"
    today = timezone.localdate()
    app.conf.task_always_eager = True
    try:
        with committed():
            response = client.post(
                url,
                {
                    "since": str(today - dt.timedelta(days=6)),
                    "until": str(today),
                    "format": "csv",
                    "channel": "",
                },
            )
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 302
    html = client.get(url).content.decode()
    download = re.search(r'href="(/dashboard/t/[^"]+/download/)"', html)
    assert download, html
    file = client.get(download.group(1))
    content = b"".join(file.streaming_content)
    assert content.startswith(b"\xef\xbb\xbf") and "退貨政策是什麼？" in content.decode("utf-8-sig")
    # Agents may not export; tenant B's admin does not see A's export.
    assert client.login(email=tenant_a.agent.email, password=PASSWORD)
    assert client.get(url).status_code == 403
    assert client.login(email=tenant_b.tenant_admin.email, password=PASSWORD)
    assert client.get(download.group(1)).status_code == 404
