"""Visitor sessions: the publishable key from an allowed origin, anonymous visitors who come back
with their resume token, identified visitors verified by HMAC, and every refusal."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from conversations.models import Contact
from testsupport.people import client_for
from testsupport.widgets import SHOP, open_session, visitor_client, visitor_hash
from widgets.api import WidgetSessionThrottle
from widgets.models import Visitor
from widgets.tokens import VisitorToken, visitor_token_for

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code, response.json()


def test_an_anonymous_visitor_gets_a_short_token_and_comes_back_with_the_resume_token(widget_a):
    first = open_session(widget_a, page_url="https://shop.example.com.tw/orders")
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["visitor_id"].startswith("v_") and body["resume_token"]
    assert body["widget"] == {"name": "官網客服", "greeting": "您好！", "locale": "auto"}
    token = VisitorToken(body["token"])
    assert token["exp"] - token["iat"] <= 3600
    visitor = Visitor.objects.get(visitor_id=body["visitor_id"])
    assert visitor.resume_token_hash and body["resume_token"] not in visitor.resume_token_hash
    assert visitor.contact.details["page_url"] == "https://shop.example.com.tw/orders"

    again = open_session(widget_a, resume_token=body["resume_token"]).json()
    assert again["visitor_id"] == body["visitor_id"]
    assert Visitor.objects.count() == Contact.objects.count() == 1
    # A stale or made-up resume token is a new visitor, not an error.
    other = open_session(widget_a, resume_token="not-a-token").json()
    assert other["visitor_id"] != body["visitor_id"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://shop.example.com.tw:8443",  # another port
        "http://shop.example.com.tw",  # another scheme
        "https://evil.example.com",
        "https://shop.example.com.tw.evil.com",
        "null",
        "",
    ],
)
def test_an_origin_that_is_not_exactly_allowed_is_refused(widget_a, origin):
    assert_error(open_session(widget_a, origin=origin), 403, "origin_not_allowed")
    assert not Visitor.objects.exists()


def test_the_default_port_is_the_same_origin_and_other_listed_ports_work(widget_a):
    assert open_session(widget_a, origin="https://shop.example.com.tw:443").status_code == 201
    assert open_session(widget_a, origin="http://localhost:8080").status_code == 201
    assert_error(open_session(widget_a, origin="http://localhost:8081"), 403, "origin_not_allowed")


def test_an_unknown_key_is_404_a_disabled_widget_and_a_suspended_tenant_403(widget_a, tenant_a):
    response = APIClient().post(
        "/v1/widget/sessions", {"public_key": "pk_" + "a" * 32}, format="json", HTTP_ORIGIN=SHOP
    )
    assert_error(response, 404, "unknown_widget")
    widget_a.enabled = False
    widget_a.save()
    assert_error(open_session(widget_a), 403, "widget_disabled")
    widget_a.enabled = True
    widget_a.save()
    tenant_a.tenant.status = "suspended"
    tenant_a.tenant.save()
    assert_error(open_session(widget_a), 403, "tenant_suspended")


def test_an_identified_visitor_needs_a_valid_hash(verified_widget_a):
    secret = verified_widget_a.plain_secret
    good = open_session(
        verified_widget_a,
        visitor_id="customer-42",
        visitor_hash=visitor_hash(secret, "customer-42"),
        name="林小姐",
    )
    assert good.status_code == 201, good.content
    assert good.json()["visitor_id"] == "customer-42" and good.json()["resume_token"] is None
    visitor = Visitor.objects.get(visitor_id="customer-42")
    assert visitor.identified and visitor.contact.name == "林小姐"

    assert_error(open_session(verified_widget_a, visitor_id="customer-42"), 401, "identity_invalid")
    wrong = visitor_hash(secret, "customer-43")
    assert_error(
        open_session(verified_widget_a, visitor_id="customer-42", visitor_hash=wrong), 401, "identity_invalid"
    )
    assert_error(
        open_session(verified_widget_a, visitor_id="customer-42", visitor_hash="zz"), 401, "identity_invalid"
    )
    # The same customer on another device is the same visitor.
    again = open_session(
        verified_widget_a, visitor_id="customer-42", visitor_hash=visitor_hash(secret, "customer-42")
    )
    assert again.json()["visitor_id"] == "customer-42"
    assert Visitor.objects.filter(identified=True).count() == 1


def test_a_rotated_secret_stops_the_old_hashes(tenant_a, verified_widget_a):
    old = visitor_hash(verified_widget_a.plain_secret, "c1")
    tenant_a.client("tenant_admin").post(
        f"/v1/tenants/{tenant_a.tenant.pk}/widgets/{verified_widget_a.pk}/rotate-secret"
    )
    assert_error(open_session(verified_widget_a, visitor_id="c1", visitor_hash=old), 401, "identity_invalid")


def test_without_verification_a_site_id_proves_nothing(widget_a):
    """Anyone could send someone else's id: on a widget without verification it is only a label,
    and the visitor stays anonymous (resumed by their own token)."""
    first = open_session(widget_a, visitor_id="customer-42").json()
    second = open_session(widget_a, visitor_id="customer-42").json()
    assert first["visitor_id"] != second["visitor_id"]
    assert first["visitor_id"].startswith("v_")


def test_sessions_are_throttled_per_client_address(widget_a, monkeypatch):
    # On the throttle class itself, and undone after the test: the rates DRF read at start-up
    # stay as they were for the tests that follow.
    rates = {**WidgetSessionThrottle.THROTTLE_RATES, "widget_session": "3/minute"}
    monkeypatch.setattr(WidgetSessionThrottle, "THROTTLE_RATES", rates)
    statuses = [open_session(widget_a).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = open_session(widget_a)
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "rate_limited"


def test_a_visitor_token_opens_nothing_under_tenants_and_a_member_token_nothing_under_widget(
    tenant_a, widget_a
):
    session = open_session(widget_a).json()
    visitor = visitor_client(session, origin=None)
    for path in ("", "/chat/conversations", "/widgets", "/documents"):
        response = visitor.get(f"/v1/tenants/{tenant_a.tenant.pk}{path}")
        assert response.status_code == 401, (path, response.content)
    assert (
        visitor.post(f"/v1/tenants/{tenant_a.tenant.pk}/chat", {"message": "hi"}, format="json").status_code
        == 401
    )
    assert visitor.get("/v1/auth/me").status_code == 401
    member = client_for(tenant_a.end_user, tenant=tenant_a.tenant)
    assert member.get("/v1/widget/conversations").status_code == 401
    assert member.post("/v1/widget/chat", {"message": "hi"}, format="json").status_code == 401
    assert APIClient().get("/v1/widget/conversations").status_code == 401


def test_an_expired_visitor_token_is_refused(widget_a):
    session = open_session(widget_a).json()
    visitor = Visitor.objects.get(visitor_id=session["visitor_id"])
    expired = visitor_token_for(visitor)
    expired.set_exp(lifetime=-timedelta(seconds=5))
    client = visitor_client({"token": str(expired)})
    assert_error(client.get("/v1/widget/conversations"), 401, "token_invalid")


def test_a_disabled_widget_or_a_suspended_tenant_ends_open_sessions(widget_a, tenant_a):
    client = visitor_client(open_session(widget_a).json())
    assert client.get("/v1/widget/conversations").status_code == 200
    widget_a.enabled = False
    widget_a.save()
    assert_error(client.get("/v1/widget/conversations"), 403, "widget_disabled")
    widget_a.enabled = True
    widget_a.save()
    tenant_a.tenant.status = "suspended"
    tenant_a.tenant.save()
    assert_error(client.get("/v1/widget/conversations"), 403, "tenant_suspended")


def test_cors_answers_only_the_widgets_origins_on_the_widget_api(widget_a, widget_b):
    client = APIClient()
    preflight = client.options(
        "/v1/widget/sessions",
        HTTP_ORIGIN=SHOP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,authorization",
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"]
    evil = client.options(
        "/v1/widget/sessions",
        HTTP_ORIGIN="https://evil.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in evil.headers
    # A widget's origin is no key to the rest of the API.
    members = client.options("/v1/auth/login", HTTP_ORIGIN=SHOP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in members.headers
    session = open_session(widget_a)
    assert session.headers["Access-Control-Allow-Origin"] == SHOP


def test_a_visitor_token_is_refused_from_a_page_of_another_widgets_origin(widget_a, widget_b):
    client = visitor_client(open_session(widget_a).json(), origin="https://b.example.com")
    assert_error(client.get("/v1/widget/conversations"), 403, "origin_not_allowed")
