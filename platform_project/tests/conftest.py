"""Fixtures shared by the platform-wide tests."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.services import invitation_create
from conversations.models import Contact, Conversation, Message
from knowledge.models import Faq
from line_channel.services import line_channel_create
from reports.models import Export
from sources.models import CrawlRun, PageFetch, WebSource
from tenants.roles import Role
from tenants.services import membership_create
from testsupport.documents import a_ready_document
from testsupport.people import make_user
from testsupport.widgets import SHOP, VisitorWithHistory, visitor_with_history
from widgets.services import widget_create


@pytest.fixture
def objects_of_a(tenant_a, milvus_uri):
    """A spare member, a pending invitation and a document in tenant A, for the endpoints
    that name one."""
    spare = make_user("spare.a@example.com")
    member = membership_create(tenant=tenant_a.tenant, user=spare, role=Role.AGENT)
    invitation, _token = invitation_create(
        tenant=tenant_a.tenant,
        email="invited.a@example.com",
        role=Role.AGENT,
        invited_by=tenant_a.tenant_admin,
    )
    document = a_ready_document(tenant_a.tenant)
    faq = Faq.objects.create(
        tenant=tenant_a.tenant, question="營業時間？", question_key="营业时间", answer="9 點"
    )
    # The end user's own conversation, with an answer to rate.
    conversation = Conversation.objects.create(tenant=tenant_a.tenant, user=tenant_a.end_user, title="退貨")
    Message.objects.create(tenant=tenant_a.tenant, conversation=conversation, role="user", content="退貨政策")
    answer = Message.objects.create(
        tenant=tenant_a.tenant, conversation=conversation, role="assistant", content="七天內可退貨。"
    )
    line_channel = line_channel_create(
        tenant=tenant_a.tenant,
        name="A 官方帳號",
        channel_id="1650000001",
        channel_secret="0123456789abcdef0123456789abcdef",
        channel_access_token="token-of-tenant-a-channel-0123456789",
    )
    widget, _secret = widget_create(
        tenant=tenant_a.tenant, name="官網", allowed_origins=["https://shop.example.com"]
    )
    contact = Contact.objects.create(tenant=tenant_a.tenant, channel="widget", name="訪客")
    export = Export.objects.create(
        tenant=tenant_a.tenant,
        since=date(2025, 1, 1),
        until=date(2025, 1, 31),
        format="csv",
        expires_at=timezone.now() + timedelta(days=7),
    )
    web_source = WebSource.objects.create(
        tenant=tenant_a.tenant, url="https://help.example.com/", scope_host="help.example.com"
    )
    crawl_run = CrawlRun.objects.create(tenant=tenant_a.tenant, source=web_source, status="done")
    PageFetch.objects.create(
        tenant=tenant_a.tenant,
        run=crawl_run,
        url="https://help.example.com/",
        outcome="failed",
        reason="HTTP 500",
    )
    return {
        "web_source": web_source.pk,
        "crawl_run": crawl_run.pk,
        "widget": widget.pk,
        "contact": contact.pk,
        "export": export.pk,
        "tenant": tenant_a.tenant.pk,
        "line_channel": line_channel.pk,
        "member": member.pk,
        "invitation": invitation.pk,
        "document": document.pk,
        "faq": faq.pk,
        "conversation": conversation.pk,
        "message": answer.pk,
    }


@pytest.fixture
def visitor_of_a(tenant_a, milvus_uri) -> VisitorWithHistory:
    """An anonymous visitor of tenant A's website widget, with a token and one conversation (a
    question and its answer); the widget allows SHOP's pages."""
    widget, _secret = widget_create(tenant=tenant_a.tenant, name="網站客服", allowed_origins=[SHOP])
    return visitor_with_history(widget)


@pytest.fixture
def visitor_of_b(tenant_b, milvus_uri) -> VisitorWithHistory:
    widget, _secret = widget_create(tenant=tenant_b.tenant, name="B 網站", allowed_origins=[SHOP])
    return visitor_with_history(widget)
