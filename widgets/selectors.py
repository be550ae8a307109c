"""Reads of widgets and visitors. Tenant-facing reads take the tenant; the public session
endpoint finds a widget by its publishable key (the key names the tenant)."""

from django.core.cache import cache
from django.db.models import QuerySet

from llm.crypto import decrypt_secret
from tenants.errors import NotFound
from tenants.models import Tenant
from widgets.models import Visitor, Widget

ORIGINS_CACHE_KEY = "widgets:allowed-origins"
ORIGINS_CACHE_SECONDS = 60


def widget_list(*, tenant: Tenant) -> QuerySet:
    return Widget.objects.for_tenant(tenant).order_by("name", "id")


def widget_get(*, tenant: Tenant, widget_id: int) -> Widget:
    widget = Widget.objects.for_tenant(tenant).filter(pk=widget_id).first()
    if widget is None:
        raise NotFound("No such widget.")
    return widget


def widget_identity_secret(*, widget: Widget) -> str | None:
    """The widget's identity secret in plain text (for the one view that shows it after it was
    made), or None when it has none."""
    if not widget.identity_secret_encrypted:
        return None
    return decrypt_secret(widget.identity_secret_encrypted)


def widget_by_public_key(*, public_key: str) -> Widget | None:
    """The widget a page names, with its tenant and plan (one query), or None."""
    return Widget.objects.select_related("tenant", "tenant__plan").filter(public_key=public_key).first()


def visitor_by_resume_token_hash(
    *, widget: Widget, token_hash: str, for_update: bool = False
) -> Visitor | None:
    """The anonymous visitor of `widget` whose resume token hashes to `token_hash`; locked to the
    caller's transaction with `for_update` (a merge consumes it)."""
    visitors = Visitor.objects.for_tenant_id(widget.tenant_id).select_related("contact")
    if for_update:
        visitors = visitors.select_for_update(of=("self",))
    return visitors.filter(widget=widget, identified=False, resume_token_hash=token_hash).first()


def visitor_identified(*, widget: Widget, visitor_id: str) -> Visitor | None:
    return (
        Visitor.objects.for_tenant_id(widget.tenant_id)
        .select_related("contact")
        .filter(widget=widget, identified=True, visitor_id=visitor_id)
        .first()
    )


def visitor_for_token(*, visitor_pk: int, tenant_id, widget_id) -> Visitor | None:
    """The visitor a token names, with what every check needs (widget, tenant, plan, contact) in
    one query; None when it is gone or the claims do not agree."""
    return (
        Visitor.objects.for_tenant_id(tenant_id)
        .select_related("widget", "tenant", "tenant__plan", "contact")
        .filter(pk=visitor_pk, widget_id=widget_id)
        .first()
    )


def all_allowed_origins() -> frozenset[str]:
    """Every origin an enabled widget allows, across tenants: only to answer CORS (whether a
    browser may call /v1/widget/ at all). Each endpoint then checks the origin against its own
    widget. Cached briefly and dropped on every widget write."""
    cached = cache.get(ORIGINS_CACHE_KEY)
    if cached is None:
        origins: set[str] = set()
        for allowed in Widget.objects.filter(enabled=True).values_list("allowed_origins", flat=True):
            origins.update(allowed or [])
        cached = sorted(origins)
        cache.set(ORIGINS_CACHE_KEY, cached, ORIGINS_CACHE_SECONDS)
    return frozenset(cached)
