"""Website-widget visitors as the tests see them: a session opened through the public endpoint
from an allowed page, a client holding its visitor token, the identity hash an enterprise's site
computes, and a visitor with a conversation of their own."""

import hashlib
import hmac
from dataclasses import dataclass

from rest_framework.test import APIClient

from conversations.models import Conversation, Message
from widgets.models import Visitor, Widget

SHOP = "https://shop.example.com.tw"


def visitor_hash(secret: str, visitor_id: str) -> str:
    return hmac.new(secret.encode(), visitor_id.encode(), hashlib.sha256).hexdigest()


def open_session(widget: Widget, origin: str = SHOP, **body):
    """POST /v1/widget/sessions from a page of `origin` (the response, whatever it is)."""
    return APIClient().post(
        "/v1/widget/sessions", {"public_key": widget.public_key, **body}, format="json", HTTP_ORIGIN=origin
    )


def visitor_client(session: dict, origin: str | None = SHOP) -> APIClient:
    """A client holding the session's visitor token, on a page of `origin` (None: no browser)."""
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {session['token']}"}
    if origin:
        headers["HTTP_ORIGIN"] = origin
    client.credentials(**headers)
    return client


@dataclass
class VisitorWithHistory:
    """An anonymous visitor of a widget with one conversation: a question and its answer."""

    widget: Widget
    origin: str
    session: dict
    visitor: Visitor
    conversation: Conversation
    answer: Message

    @property
    def token(self) -> str:
        return self.session["token"]

    def client(self) -> APIClient:
        return visitor_client(self.session, origin=self.origin)

    @property
    def ids(self) -> dict:
        return {"visitor_conversation": self.conversation.pk, "visitor_message": self.answer.pk}


def visitor_with_history(widget: Widget, origin: str = SHOP) -> VisitorWithHistory:
    response = open_session(widget, origin=origin)
    assert response.status_code == 201, response.content
    session = response.json()
    visitor = Visitor.objects.get(widget=widget, visitor_id=session["visitor_id"])
    tenant = widget.tenant
    conversation = Conversation.objects.create(
        tenant=tenant, contact=visitor.contact, channel=Conversation.Channel.WIDGET, title="退貨"
    )
    Message.objects.create(tenant=tenant, conversation=conversation, role="user", content="退貨政策")
    answer = Message.objects.create(
        tenant=tenant, conversation=conversation, role="assistant", content="七天內可退貨。"
    )
    return VisitorWithHistory(widget, origin, session, visitor, conversation, answer)
