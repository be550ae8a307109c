"""An anonymous visitor who later identifies (a verified id, with the resume token their browser
holds) keeps what they asked before; nobody else's history ever joins an identity."""

import pytest

from conversations.models import Contact, Conversation
from tenants.models import AuditEvent
from testsupport.widgets import SHOP, open_session, visitor_client, visitor_hash
from widgets.models import Visitor

pytestmark = pytest.mark.django_db


def identify(widget, customer: str, **body):
    return open_session(
        widget, visitor_id=customer, visitor_hash=visitor_hash(widget.plain_secret, customer), **body
    )


def anonymous_conversation(widget, title="退貨問題", origin=SHOP) -> tuple[dict, Conversation]:
    """An anonymous visitor of `widget` with one conversation of their own."""
    session = open_session(widget, origin=origin).json()
    visitor = Visitor.objects.get(visitor_id=session["visitor_id"])
    conversation = Conversation.objects.create(
        tenant=widget.tenant, contact=visitor.contact, channel="widget", title=title
    )
    return session, conversation


def listed(session: dict) -> list[str]:
    return [item["id"] for item in visitor_client(session).get("/v1/widget/conversations").json()["results"]]


def test_identifying_carries_the_anonymous_history_over_and_spends_the_resume_token(
    verified_widget_a, tenant_a
):
    anonymous = open_session(verified_widget_a).json()
    client = visitor_client(anonymous)
    answer = client.post("/v1/widget/chat", {"message": "運費多少？"}, format="json").json()
    conversation_id = answer["conversation_id"]
    client.post(
        f"/v1/widget/conversations/{conversation_id}/messages/{answer['message']['id']}/feedback",
        {"rating": "up"},
        format="json",
    )
    # The customer already had a conversation of their own, on another device.
    earlier = identify(verified_widget_a, "customer-42").json()
    own = Conversation.objects.create(
        tenant=tenant_a.tenant,
        contact=Visitor.objects.get(visitor_id="customer-42").contact,
        channel="widget",
        title="舊的",
    )

    identified = identify(verified_widget_a, "customer-42", resume_token=anonymous["resume_token"])
    assert identified.status_code == 201, identified.content
    session = identified.json()
    assert session["visitor_id"] == "customer-42" and session["resume_token"] is None
    assert sorted(listed(session)) == sorted([conversation_id, str(own.pk)])
    assert listed(earlier) == listed(session)
    detail = visitor_client(session).get(f"/v1/widget/conversations/{conversation_id}").json()
    assert [message["role"] for message in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][1]["feedback"]["rating"] == "up"

    # The anonymous visitor is gone: its token and its resume token open nothing of it any more.
    refused = visitor_client(anonymous).get("/v1/widget/conversations")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "session_ended"
    fresh = open_session(verified_widget_a, resume_token=anonymous["resume_token"]).json()
    assert fresh["visitor_id"] != anonymous["visitor_id"] and listed(fresh) == []
    assert not Visitor.objects.filter(visitor_id=anonymous["visitor_id"]).exists()
    event = AuditEvent.objects.get(tenant=tenant_a.tenant, action="widget.visitor_merge")
    assert event.details == {
        "widget_id": verified_widget_a.pk,
        "from_visitor_id": anonymous["visitor_id"],
        "conversations": 1,
    }


def test_identifying_without_a_resume_token_merges_nothing(verified_widget_a):
    """An id with a valid hash is the customer's own history, never anybody else's."""
    someone, conversation = anonymous_conversation(verified_widget_a)
    session = identify(verified_widget_a, "customer-42").json()
    assert listed(session) == []
    again = open_session(verified_widget_a, resume_token=someone["resume_token"]).json()
    assert again["visitor_id"] == someone["visitor_id"] and listed(again) == [str(conversation.pk)]
    assert not AuditEvent.objects.filter(action="widget.visitor_merge").exists()


@pytest.mark.parametrize("bad_hash", [None, "", "0" * 64, "not hex", "雜湊" * 32])
def test_an_invalid_hash_merges_nothing(verified_widget_a, bad_hash):
    anonymous, conversation = anonymous_conversation(verified_widget_a)
    body = {"visitor_id": "customer-42", "resume_token": anonymous["resume_token"]}
    if bad_hash is not None:
        body["visitor_hash"] = bad_hash
    refused = open_session(verified_widget_a, **body)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "identity_invalid"
    assert not Visitor.objects.filter(identified=True).exists()
    again = open_session(verified_widget_a, resume_token=anonymous["resume_token"]).json()
    assert again["visitor_id"] == anonymous["visitor_id"] and listed(again) == [str(conversation.pk)]


@pytest.mark.parametrize("elsewhere", ["widget_a", "widget_b"])
def test_a_resume_token_of_another_widget_or_tenant_merges_nothing(verified_widget_a, elsewhere, request):
    """Tenant A's other widget, tenant B's widget: their visitors stay where they are."""
    other = request.getfixturevalue(elsewhere)
    origin = other.allowed_origins[0]
    anonymous, conversation = anonymous_conversation(other, origin=origin)
    session = identify(verified_widget_a, "customer-42", resume_token=anonymous["resume_token"]).json()
    assert session["visitor_id"] == "customer-42" and listed(session) == []
    conversation.refresh_from_db()
    assert conversation.contact.widget_visitor.visitor_id == anonymous["visitor_id"]
    assert not AuditEvent.objects.filter(action="widget.visitor_merge").exists()


def test_without_verification_an_id_is_no_identity_and_the_visitor_stays_anonymous(widget_a):
    """On a widget without verification nothing is merged: the id proves nothing, and the
    browser's resume token simply brings the same anonymous visitor back."""
    anonymous, conversation = anonymous_conversation(widget_a)
    labelled = open_session(widget_a, visitor_id="customer-42", resume_token=anonymous["resume_token"]).json()
    assert labelled["visitor_id"] == anonymous["visitor_id"]
    assert labelled["resume_token"] == anonymous["resume_token"]
    assert listed(labelled) == [str(conversation.pk)]
    assert not Visitor.objects.filter(identified=True).exists()
    assert Contact.objects.count() == 1
