"""Fixtures shared by the platform-wide tests."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.services import invitation_create
from conftest import make_user
from conversations.models import Contact, Conversation, Message
from knowledge.models import Document
from reports.models import Export
from tenants.roles import Role
from tenants.services import membership_create


def a_ready_document(tenant) -> Document:
    """A document row marked ready (no file, no vectors): for endpoints that only name one."""
    return Document.objects.create(
        tenant=tenant,
        title="退貨政策",
        filename="policy.txt",
        kind="txt",
        content_type="text/plain",
        size_bytes=10,
        sha256="0" * 64,
        file_path=f"tenants/{tenant.pk}/documents/policy.txt",
        status=Document.Status.READY,
    )


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
    # The end user's own conversation, with an answer to rate.
    conversation = Conversation.objects.create(tenant=tenant_a.tenant, user=tenant_a.end_user, title="退貨")
    Message.objects.create(tenant=tenant_a.tenant, conversation=conversation, role="user", content="退貨政策")
    answer = Message.objects.create(
        tenant=tenant_a.tenant, conversation=conversation, role="assistant", content="七天內可退貨。"
    )
    contact = Contact.objects.create(tenant=tenant_a.tenant, channel="widget", name="訪客")
    export = Export.objects.create(
        tenant=tenant_a.tenant,
        since=date(2025, 1, 1),
        until=date(2025, 1, 31),
        format="csv",
        expires_at=timezone.now() + timedelta(days=7),
    )
    return {
        "contact": contact.pk,
        "export": export.pk,
        "tenant": tenant_a.tenant.pk,
        "member": member.pk,
        "invitation": invitation.pk,
        "document": document.pk,
        "conversation": conversation.pk,
        "message": answer.pk,
    }
