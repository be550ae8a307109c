"""Every write of the widget app: widgets (tenant admins), visitors (the public session
endpoint). Visitors become `conversations.Contact`s, served by the conversation services."""

import hashlib
import hmac
import logging
import secrets

from django.core.cache import cache
from django.db import transaction

from conversations import services as conversation_services
from conversations.models import Contact
from llm.crypto import decrypt_secret, encrypt_secret
from tenants.audit import audit_record
from tenants.models import Tenant
from widgets import selectors
from widgets.errors import IdentityInvalid
from widgets.models import Visitor, Widget

PUBLIC_KEY_PREFIX = "pk_"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
ANONYMOUS_PREFIX = "v_"
logger = logging.getLogger(__name__)
_AUDITED_FIELDS = [
    "name",
    "allowed_origins",
    "greeting",
    "locale",
    "identity_verification",
    "enabled",
    "daily_message_cap",
]


def _new_public_key() -> str:
    return PUBLIC_KEY_PREFIX + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _origins_changed() -> None:
    cache.delete(selectors.ORIGINS_CACHE_KEY)


def hash_resume_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def visitor_hash_valid(*, widget: Widget, visitor_id: str, visitor_hash: str | None) -> bool:
    """Whether `visitor_hash` is hex(HMAC-SHA256(identity secret, visitor_id)), compared in
    constant time (case-insensitive hex)."""
    if not visitor_hash or not widget.identity_secret_encrypted:
        return False
    secret = decrypt_secret(widget.identity_secret_encrypted)
    # Any text may arrive from a page: compared as bytes (compare_digest refuses non-ASCII str),
    # and an id that is not encodable (a lone surrogate) matches nothing.
    try:
        message = visitor_id.encode()
        given = visitor_hash.strip().lower().encode()
    except UnicodeEncodeError:
        return False
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, given)


@transaction.atomic
def widget_create(
    *,
    tenant: Tenant,
    name: str,
    allowed_origins: list[str],
    greeting: str = "",
    locale: str = Widget.Locale.AUTO,
    identity_verification: bool = False,
    enabled: bool = True,
    daily_message_cap: int = 1000,
) -> tuple[Widget, str | None]:
    """The new widget and, when identity verification is on, its secret (shown once)."""
    secret = _new_secret() if identity_verification else None
    widget = Widget.objects.create(
        tenant=tenant,
        name=name,
        public_key=_new_public_key(),
        allowed_origins=allowed_origins,
        greeting=greeting,
        locale=locale,
        identity_verification=identity_verification,
        identity_secret_encrypted=encrypt_secret(secret) if secret else "",
        enabled=enabled,
        daily_message_cap=daily_message_cap,
    )
    audit_record(
        tenant=tenant,
        action="widget.create",
        target=widget,
        details={"name": name, "allowed_origins": allowed_origins},
    )
    transaction.on_commit(_origins_changed)
    return widget, secret


@transaction.atomic
def widget_update(*, widget: Widget, **fields) -> tuple[Widget, str | None]:
    """Change a widget; turning identity verification on for the first time makes its secret
    (returned, shown once)."""
    changed = [name for name, value in fields.items() if getattr(widget, name) != value]
    for name in changed:
        setattr(widget, name, fields[name])
    secret = None
    if widget.identity_verification and not widget.identity_secret_encrypted:
        secret = _new_secret()
        widget.identity_secret_encrypted = encrypt_secret(secret)
        changed.append("identity_secret_encrypted")
    widget.save(update_fields=[*changed, "updated_at"])
    audit_record(
        tenant=widget.tenant,
        action="widget.update",
        target=widget,
        details={"changed": [name for name in changed if name in _AUDITED_FIELDS]},
    )
    transaction.on_commit(_origins_changed)
    return widget, secret


@transaction.atomic
def widget_rotate_secret(*, widget: Widget) -> tuple[Widget, str]:
    """A new identity secret (the old one stops verifying at once), shown once."""
    secret = _new_secret()
    widget.identity_secret_encrypted = encrypt_secret(secret)
    widget.save(update_fields=["identity_secret_encrypted", "updated_at"])
    audit_record(tenant=widget.tenant, action="widget.rotate_secret", target=widget, details={})
    return widget, secret


@transaction.atomic
def widget_delete(*, widget: Widget) -> None:
    """Delete a widget. Its visitors' conversations stay with the tenant (the contacts remain);
    the visitors' sessions end."""
    audit_record(
        tenant=widget.tenant,
        action="widget.delete",
        target=widget,
        details={"name": widget.name, "visitors": widget.visitors.count()},
    )
    widget.delete()
    transaction.on_commit(_origins_changed)


def _contact_details(widget: Widget, visitor: Visitor, page_url: str) -> dict:
    return {
        "widget_id": widget.pk,
        "widget": widget.name,
        "visitor_id": visitor.visitor_id,
        "identified": visitor.identified,
        "page_url": page_url,
    }


@transaction.atomic
def visitor_session_open(
    *,
    widget: Widget,
    visitor_id: str | None,
    visitor_hash: str | None,
    resume_token: str | None,
    name: str = "",
    email: str = "",
    page_url: str = "",
) -> tuple[Visitor, str | None]:
    """The visitor a session is for, and the resume token their browser keeps (None for an
    identified visitor, whose own id brings them back).

    With identity verification on, a `visitor_id` needs its `visitor_hash` (else 401
    `identity_invalid`). Without it, the site's id is not proof of anything: the visitor is
    anonymous (resumed by their token) and the id is only kept as a label for agents."""
    tenant = widget.tenant
    claimed_id = (visitor_id or "").strip()
    if claimed_id and widget.identity_verification:
        if not visitor_hash_valid(widget=widget, visitor_id=claimed_id, visitor_hash=visitor_hash):
            raise IdentityInvalid()
        visitor = selectors.visitor_identified(widget=widget, visitor_id=claimed_id)
        if visitor is None:
            contact = conversation_services.contact_create(
                tenant=tenant, channel=Contact.Channel.WIDGET, name=name, email=email
            )
            visitor = Visitor.objects.create(
                tenant=tenant, widget=widget, contact=contact, visitor_id=claimed_id, identified=True
            )
        if resume_token:
            visitor_history_merge(widget=widget, resume_token=resume_token, into=visitor)
        _visitor_seen(widget, visitor, name=name, email=email, page_url=page_url)
        return visitor, None

    visitor = None
    if resume_token:
        visitor = selectors.visitor_by_resume_token_hash(
            widget=widget, token_hash=hash_resume_token(resume_token)
        )
    if visitor is None:
        resume_token = secrets.token_urlsafe(32)
        contact = conversation_services.contact_create(
            tenant=tenant, channel=Contact.Channel.WIDGET, name=name, email=email
        )
        visitor = Visitor.objects.create(
            tenant=tenant,
            widget=widget,
            contact=contact,
            visitor_id=ANONYMOUS_PREFIX + secrets.token_urlsafe(16),
            resume_token_hash=hash_resume_token(resume_token),
        )
    label = {"site_visitor_id": claimed_id} if claimed_id else {}
    _visitor_seen(widget, visitor, name=name, email=email, page_url=page_url, extra=label)
    return visitor, resume_token


@transaction.atomic
def visitor_history_merge(*, widget: Widget, resume_token: str, into: Visitor) -> int:
    """An anonymous visitor who has just identified (a verified id, `into`) keeps what they
    asked before: the conversations of the anonymous visitor whose resume token this browser
    holds move to the identified visitor, and the anonymous visitor is forgotten (its resume
    token and open sessions end). Only the holder's own token names the history, and only a
    visitor of the same widget: nobody can claim another visitor's history by naming an id.
    Returns how many conversations moved (0 when the token names no anonymous visitor)."""
    if not into.identified or into.widget_id != widget.pk:
        raise ValueError("visitor_history_merge() merges into an identified visitor of the widget")
    anonymous = selectors.visitor_by_resume_token_hash(
        widget=widget, token_hash=hash_resume_token(resume_token), for_update=True
    )
    if anonymous is None:
        return 0
    source_id = anonymous.visitor_id
    moved = conversation_services.contact_merge(source=anonymous.contact, target=into.contact)
    audit_record(
        tenant=widget.tenant,
        action="widget.visitor_merge",
        target=into,
        details={"widget_id": widget.pk, "from_visitor_id": source_id, "conversations": moved},
    )
    logger.info(
        "widget %s: anonymous visitor %s merged into an identified visitor (%d conversations)",
        widget.pk,
        source_id,
        moved,
    )
    return moved


def _visitor_seen(widget, visitor, *, name, email, page_url, extra=None) -> None:
    if page_url:
        visitor.last_page_url = page_url
    visitor.save(update_fields=["last_page_url", "last_seen_at"])
    details = {
        **visitor.contact.details,
        **_contact_details(widget, visitor, visitor.last_page_url),
        **(extra or {}),
    }
    conversation_services.contact_update(
        contact=visitor.contact, name=name or None, email=email or None, details=details
    )


def visitor_page_seen(*, visitor: Visitor, page_url: str) -> None:
    """The page a visitor is on now (sent with their messages), for the agents."""
    if not page_url or page_url == visitor.last_page_url:
        return
    _visitor_seen(visitor.widget, visitor, name="", email="", page_url=page_url)
