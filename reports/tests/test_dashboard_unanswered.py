"""The unanswered-questions page: the questions the assistant could not answer (no knowledge or
a thumbs-down), grouped, each with a prefilled link to write its curated answer, or the curated
answer that now matches it; tenant admins only, never another tenant's questions."""

import re
from html import unescape

import pytest

from knowledge import faq_services
from testsupport.dashboard import dashboard_url, signed_in

pytestmark = pytest.mark.django_db


def test_each_unanswered_question_links_to_a_prefilled_curated_answer(tenant_a, counted_a):
    client = signed_in(tenant_a.tenant_admin)
    response = client.get(dashboard_url("unanswered", tenant_a))
    assert response.status_code == 200
    entries = list(response.context["page"])
    # "火星車票" in Traditional and Simplified is one question asked twice; "退費要多久？" got a
    # thumbs-down; tenant B's identical question is not counted.
    assert [(entry["question"], entry["count"]) for entry in entries] == [
        ("火星车票怎么买", 2),
        ("退費要多久？", 1),
    ]
    html = response.content.decode()
    link = re.search(r'href="([^"]*faqs/new/\?question=[^"]*)"', html).group(1)
    form = client.get(unescape(link))
    assert form.status_code == 200
    assert form.context["form"].initial["question"] == "火星车票怎么买"
    assert "<script>" not in html and "style=" not in html


def test_a_question_with_a_curated_answer_now_says_so(tenant_a, counted_a):
    faq = faq_services.faq_create(tenant=tenant_a.tenant, question="退費要多久？", answer="約七個工作天。")
    response = signed_in(tenant_a.tenant_admin).get(dashboard_url("unanswered", tenant_a))
    curated = {entry["question"]: entry["curated"] for entry in response.context["page"]}
    assert curated["退費要多久？"].faq_id == faq.pk
    assert curated["火星车票怎么买"] is None
    assert f"/faqs/{faq.pk}/" in response.content.decode()


def test_the_period_and_channel_narrow_it_and_a_bad_period_is_said(tenant_a, counted_a):
    client = signed_in(tenant_a.tenant_admin)
    widget = client.get(dashboard_url("unanswered", tenant_a), {"channel": "widget"})
    assert [entry["question"] for entry in widget.context["page"]] == ["請問火星車票怎麼買"]
    reversed_period = client.get(
        dashboard_url("unanswered", tenant_a), {"since": "2025-03-02", "until": "2025-03-01"}
    )
    assert reversed_period.status_code == 200
    assert "Choose a period of 1 to 366 days." in reversed_period.content.decode()
    long_ago = client.get(
        dashboard_url("unanswered", tenant_a), {"since": "2020-01-01", "until": "2020-01-31"}
    )
    assert "Every question of the period got an answer." in long_ago.content.decode()


def test_agents_and_end_users_may_not_open_it_and_another_tenant_gets_404(tenant_a, tenant_b, counted_a):
    url = dashboard_url("unanswered", tenant_a)
    assert signed_in(tenant_a.agent).get(url).status_code == 403
    assert signed_in(tenant_a.end_user).get(url).status_code == 403
    assert signed_in(tenant_b.tenant_admin).get(url).status_code == 404
    own = signed_in(tenant_b.tenant_admin).get(dashboard_url("unanswered", tenant_b))
    assert [entry["question"] for entry in own.context["page"]] == ["火星車票怎麼買"]


def test_the_sidebar_shows_each_page_to_the_roles_that_may_open_it(tenant_a):
    def sidebar(user):
        response = signed_in(user).get(dashboard_url("overview", tenant_a))
        return [str(item["label"]) for item in response.context["navigation"]]

    assert {"Curated answers", "Unanswered questions"} <= set(sidebar(tenant_a.tenant_admin))
    agent = sidebar(tenant_a.agent)
    assert "Curated answers" in agent and "Unanswered questions" not in agent
