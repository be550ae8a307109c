"""GET /v1/tenants/{id}/analytics: figures equal the hand-counted fixture (reports/tests/conftest.py),
tenant B's conversations never count for A, and the number of queries does not grow with the data."""

import datetime as dt

import pytest
from django.utils import timezone

from reports.analytics import tenant_analytics
from testsupport.history import conversation, message

pytestmark = pytest.mark.django_db


def url(people) -> str:
    return f"/v1/tenants/{people.tenant.pk}/analytics"


def week() -> dict:
    today = timezone.localdate()
    return {"since": str(today - dt.timedelta(days=6)), "until": str(today)}


def test_figures_equal_the_hand_counted_conversations(tenant_a, counted_a):
    response = tenant_a.client("tenant_admin").get(url(tenant_a), week())

    assert response.status_code == 200, response.content
    body = response.json()
    totals = body["totals"]
    assert totals["conversations"] == 4
    assert totals["messages"] == 12
    assert totals["questions"] == 5
    assert totals["answers"] == 5
    assert (totals["answered_by_faq"], totals["answered_by_knowledge"], totals["no_knowledge"]) == (1, 2, 2)
    assert totals["not_answered"] == 2
    assert totals["agent_messages"] == 2
    assert totals["handoffs"] == 2
    assert (
        totals["resolved_by_bot"],
        totals["resolved_after_handoff"],
        totals["abandoned"],
        totals["open"],
    ) == (
        1,
        1,
        1,
        1,
    )
    assert (totals["feedback_up"], totals["feedback_down"]) == (1, 2)
    assert body["rates"] == {
        "answered_by_faq": 0.2,
        "answered_by_knowledge": 0.4,
        "not_answered": 0.4,
        "handoff": 0.5,
        "resolved_without_person": 0.25,
        "abandoned": 0.25,
        "feedback_up": 0.3333,
    }
    assert body["first_response"] == {"conversations": 2, "median_seconds": 60.0, "p90_seconds": 300.0}
    assert len(body["days"]) == 7
    assert sum(day["conversations"] for day in body["days"]) == 4
    assert sum(day["messages"] for day in body["days"]) == 12
    channels = {row["channel"]: row for row in body["channels"]}
    assert set(channels) == {"api", "widget", "line"}
    assert (channels["api"]["conversations"], channels["api"]["handoffs"], channels["api"]["answers"]) == (
        2,
        1,
        2,
    )
    assert (channels["widget"]["answered_by_faq"], channels["line"]["abandoned"]) == (1, 1)


def test_the_same_unanswered_question_in_other_words_is_one_entry(tenant_a, counted_a):
    body = tenant_a.client("tenant_admin").get(url(tenant_a), week()).json()

    unanswered = body["unanswered"]
    assert [(entry["count"], entry["no_knowledge"], entry["thumbs_down"]) for entry in unanswered] == [
        (2, 2, 1),
        (1, 0, 1),
    ]
    # The most recent wording leads; the other one (Traditional here, Simplified there) follows.
    assert unanswered[0]["question"] == "火星车票怎么买"
    assert unanswered[0]["phrasings"] == ["請問火星車票怎麼買"]
    assert unanswered[1]["question"] == "退費要多久？"
    # Answered questions (退貨政策, 營業時間) are not in the list.
    assert all("退貨" not in entry["question"] for entry in unanswered)


def test_a_channel_and_a_period_narrow_the_figures(tenant_a, counted_a):
    client = tenant_a.client("tenant_admin")
    widget = client.get(url(tenant_a), {**week(), "channel": "widget"}).json()
    assert widget["totals"]["conversations"] == 1 and widget["totals"]["messages"] == 5
    assert widget["first_response"]["median_seconds"] == 60.0
    today = str(timezone.localdate())
    only_today = client.get(url(tenant_a), {"since": today, "until": today}).json()
    # The LINE conversation started two days ago.
    assert only_today["totals"]["conversations"] == 3
    assert [entry["question"] for entry in only_today["unanswered"]] == ["火星车票怎么买"]


def test_tenant_b_never_sees_tenant_a_figures(tenant_a, tenant_b, counted_a):
    body = tenant_b.client("tenant_admin").get(url(tenant_b), week()).json()
    assert body["totals"]["conversations"] == 1
    assert body["totals"]["answers"] == 1 and body["totals"]["feedback_down"] == 1
    assert [entry["count"] for entry in body["unanswered"]] == [1]
    assert tenant_b.client("tenant_admin").get(url(tenant_a), week()).status_code == 404


@pytest.mark.parametrize("role", ["agent", "end_user"])
def test_analytics_are_for_tenant_admins_only(role, tenant_a, counted_a):
    response = tenant_a.client(role).get(url(tenant_a))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2025-02-30"},
        {"since": "2025-03-02", "until": "2025-03-01"},
        {"since": "2023-01-01", "until": "2025-01-01"},
        {"channel": "fax"},
    ],
)
def test_bad_periods_and_channels_are_refused_with_400(query, tenant_a):
    response = tenant_a.client("tenant_admin").get(url(tenant_a), query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_the_query_count_does_not_grow_with_the_conversations(tenant_a, counted_a, django_assert_num_queries):
    today = timezone.localdate()
    since = today - dt.timedelta(days=6)

    def queries_for_report() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            tenant_analytics(tenant=tenant_a.tenant, since=since, until=today)
        return len(captured)

    before = queries_for_report()
    now = timezone.now()
    for index in range(30):
        more = conversation(tenant_a.tenant, at=now, channel="widget", contact=counted_a.contacts["visitor"])
        message(more, at=now, role="user", content=f"問題 {index} 火星")
        message(more, at=now, role="assistant", content="找不到。", grounding="no_knowledge")
    assert queries_for_report() == before
    # 9 aggregates and reads, and the transaction around the unanswered questions (PostgreSQL).
    assert before <= 12
