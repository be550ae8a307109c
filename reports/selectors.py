"""Reads of the reports app; each takes the tenant explicitly."""

from django.conf import settings
from django.utils import timezone

from reports.models import Export
from tenants.errors import NotFound
from tenants.models import Tenant
from tenants.tenant_settings import tenant_settings_section

RETENTION_SECTION = "retention"


def export_get(*, tenant: Tenant, export_id) -> Export:
    """One of the tenant's exports; 404 for another tenant's id or none."""
    export = Export.objects.for_tenant(tenant).filter(pk=export_id).first()
    if export is None or export.tenant_id != tenant.pk:
        raise NotFound("No such export.")
    return export


def export_is_expired(export: Export) -> bool:
    return export.status == Export.Status.EXPIRED or export.expires_at <= timezone.now()


def conversation_retention_days(*, tenant: Tenant) -> int:
    """How many days the tenant's conversations are kept (0: forever): the tenant's setting,
    capped by the operators' CONVERSATION_RETENTION_MAX_DAYS."""
    days = tenant_settings_section(tenant.settings, RETENTION_SECTION).get("conversation_retention_days", 0)
    ceiling = settings.CONVERSATION_RETENTION_MAX_DAYS
    if ceiling and (days == 0 or days > ceiling):
        return ceiling
    return days


def customer_get(*, tenant: Tenant, user_id: int):
    """A user whose data the tenant holds: a member, or a former member with conversations in
    it; 404 for anyone else (a user of another tenant only is not revealed)."""
    from django.contrib.auth import get_user_model

    from conversations.models import Conversation
    from tenants.models import Membership

    known = (
        Membership.objects.for_tenant(tenant).filter(user_id=user_id).exists()
        or Conversation.objects.for_tenant(tenant).filter(user_id=user_id).exists()
    )
    user = get_user_model().objects.filter(pk=user_id).first() if known else None
    if user is None:
        raise NotFound("No such user in this tenant.")
    return user


def export_list(*, tenant: Tenant):
    return Export.objects.for_tenant(tenant).order_by("-created_at", "id")
