"""Every write of the reports app: exports (requested, written, expired), conversations marked
abandoned, conversations deleted by retention, and a person's conversations erased on request."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import logging
import os
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_noop

from conversations import services as conversation_services
from conversations.models import Contact, Conversation, Feedback, Message
from reports.analytics import period_bounds
from reports.models import Export
from reports.selectors import conversation_retention_days
from tenants import rls
from tenants.audit import audit_record
from tenants.models import Tenant

# Queued by name: tasks.py imports this module (reports/apps.py registers the tasks).
WRITE_EXPORT_TASK = "reports.tasks.write_export"

logger = logging.getLogger(__name__)

# Rows read from the database at a time while an export is written (memory stays flat).
EXPORT_CHUNK_ROWS = 2000
# Conversations deleted per statement by retention and erasure.
DELETE_BATCH = 500
EXPORT_COLUMNS = (
    "conversation_id",
    "channel",
    "customer",
    "time",
    "role",
    "text",
    "grounding",
    "cited_titles",
    "feedback",
)
# A cell starting with one of these is a formula to Excel: an exported customer message must
# never run as one (CSV injection), so such a cell gets a leading apostrophe.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- Exports -----------------------------------------------------------------------------------


def export_request(
    *, tenant: Tenant, requested_by, since: dt.date, until: dt.date, format: str, channel: str = ""
) -> Export:
    """Record an export and queue its writing once committed."""
    export = Export.objects.create(
        tenant=tenant,
        requested_by=requested_by,
        since=since,
        until=until,
        format=format,
        channel=channel or "",
        expires_at=timezone.now() + dt.timedelta(days=settings.EXPORT_RETENTION_DAYS),
    )
    audit_record(
        tenant=tenant,
        action="export.request",
        target=export,
        details={"since": str(since), "until": str(until), "format": format, "channel": channel or None},
    )
    write_export = current_app.tasks[WRITE_EXPORT_TASK]
    transaction.on_commit(lambda: write_export.delay(str(tenant.pk), str(export.pk)))
    return export


def _export_rows(export: Export):
    """The export's messages as dicts, read in chunks from one ordered query."""
    start, end = period_bounds(export.since, export.until)
    feedback = Feedback.objects.filter(tenant_id=OuterRef("tenant_id"), message=OuterRef("pk"))

    def counted(rating: str):
        ratings = (
            feedback.filter(rating=rating).order_by().values("message").annotate(n=Count("id")).values("n")
        )
        return Coalesce(Subquery(ratings, output_field=IntegerField()), Value(0))

    messages = Message.objects.for_tenant_id(export.tenant_id).filter(
        created_at__gte=start, created_at__lt=end
    )
    if export.channel:
        messages = messages.filter(conversation__channel=export.channel)
    return (
        messages.annotate(
            feedback_up=counted(Feedback.Rating.UP), feedback_down=counted(Feedback.Rating.DOWN)
        )
        .order_by("created_at", "id")
        .values(
            "conversation_id",
            "conversation__channel",
            "conversation__user__email",
            "conversation__contact_id",
            "conversation__contact__channel",
            "conversation__contact__name",
            "created_at",
            "role",
            "content",
            "grounding",
            "citations",
            "feedback_up",
            "feedback_down",
        )
        .iterator(chunk_size=EXPORT_CHUNK_ROWS)
    )


def _customer(row: dict) -> str:
    if row["conversation__user__email"]:
        return row["conversation__user__email"]
    if row["conversation__contact_id"]:
        name = row["conversation__contact__name"]
        label = f"{row['conversation__contact__channel']} contact {row['conversation__contact_id']}"
        return f"{name} ({label})" if name else label
    return ""


def _feedback(up: int, down: int) -> str:
    if up and down:
        return f"up {up} / down {down}"
    if up:
        return "up" if up == 1 else f"up {up}"
    if down:
        return "down" if down == 1 else f"down {down}"
    return ""


def _record(row: dict, zone) -> dict:
    titles = []
    for citation in row["citations"] or []:
        title = citation.get("document_title") if isinstance(citation, dict) else None
        if title and title not in titles:
            titles.append(title)
    return {
        "conversation_id": str(row["conversation_id"]),
        "channel": row["conversation__channel"],
        "customer": _customer(row),
        "time": row["created_at"].astimezone(zone).isoformat(),
        "role": row["role"],
        "text": row["content"],
        "grounding": row["grounding"] or "",
        "cited_titles": titles,
        "feedback": {"up": row["feedback_up"], "down": row["feedback_down"]},
    }


def _safe_cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def _write_rows(export: Export, path: Path) -> int:
    zone = timezone.get_current_timezone()
    count = 0
    if export.format == Export.Format.CSV:
        # utf-8-sig writes the BOM Excel needs to read UTF-8 (Chinese) correctly.
        with path.open("w", encoding="utf-8-sig", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(EXPORT_COLUMNS)
            for row in _export_rows(export):
                record = _record(row, zone)
                record["cited_titles"] = " | ".join(record["cited_titles"])
                record["feedback"] = _feedback(record["feedback"]["up"], record["feedback"]["down"])
                writer.writerow([_safe_cell(str(record[column])) for column in EXPORT_COLUMNS])
                count += 1
    else:
        with path.open("w", encoding="utf-8") as stream:
            for row in _export_rows(export):
                stream.write(json.dumps(_record(row, zone), ensure_ascii=False))
                stream.write("\n")
                count += 1
    return count


def export_file_path(export: Export) -> str:
    """Relative to MEDIA_ROOT, under the tenant's own folder."""
    return f"tenants/{export.tenant_id}/exports/{export.pk}.{export.format}"


def export_write(*, tenant_id, export_id) -> Export | None:
    """Write the export's file (a temporary name, renamed when complete, so a half-written file
    is never served) and mark it ready; a failure marks it failed with a readable error.
    Idempotent: a ready or expired export is left alone."""
    export = Export.objects.for_tenant_id(tenant_id).filter(pk=export_id).first()
    if export is None or export.status in (Export.Status.READY, Export.Status.EXPIRED):
        return export
    Export.objects.filter(pk=export.pk).update(status=Export.Status.RUNNING)
    relative = export_file_path(export)
    final = Path(settings.MEDIA_ROOT) / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_suffix(final.suffix + ".part")
    try:
        count = _write_rows(export, partial)
        os.replace(partial, final)
    except Exception as error:
        logger.exception("export %s failed", export.pk)
        partial.unlink(missing_ok=True)
        Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(
            status=Export.Status.FAILED,
            error=f"The export failed ({type(error).__name__}).",
            finished_at=timezone.now(),
        )
        raise
    now = timezone.now()
    # Only a still-running export becomes ready: one withdrawn meanwhile (a person's data was
    # erased while it was written, `personal_data_erase`) keeps its status, and its file goes.
    marked = Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(
        status=Export.Status.READY,
        file_path=relative,
        row_count=count,
        size_bytes=final.stat().st_size,
        finished_at=now,
        expires_at=now + dt.timedelta(days=settings.EXPORT_RETENTION_DAYS),
    )
    if not marked:
        final.unlink(missing_ok=True)
    export.refresh_from_db()
    return export


def export_download_record(*, export: Export) -> Path:
    """The file to send; the download is audited."""
    audit_record(
        tenant=export.tenant,
        action="export.download",
        target=export,
        details={"format": export.format, "rows": export.row_count},
    )
    return Path(settings.MEDIA_ROOT) / export.file_path


def exports_expire(*, tenant: Tenant, now: dt.datetime | None = None) -> int:
    """Delete the files of the tenant's exports past their expiry and mark them expired."""
    now = now or timezone.now()
    expired = (
        Export.objects.for_tenant(tenant).filter(expires_at__lte=now).exclude(status=Export.Status.EXPIRED)
    )
    count = 0
    for export in expired.only("pk", "file_path", "format", "tenant_id"):
        paths = [Path(settings.MEDIA_ROOT) / export_file_path(export)]
        paths.append(paths[0].with_suffix(paths[0].suffix + ".part"))
        for path in paths:
            path.unlink(missing_ok=True)
        count += 1
    expired.update(status=Export.Status.EXPIRED, file_path="")
    return count


# --- Conversation lifecycle: abandoned, retention, erasure -----------------------------------


def conversations_mark_abandoned(*, tenant: Tenant, now: dt.datetime | None = None) -> int:
    """Conversations never closed and idle for CONVERSATION_ABANDONED_HOURS are resolved as
    abandoned at their last message. They stay open: a customer who comes back continues, and a
    later close records how it really ended."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.CONVERSATION_ABANDONED_HOURS)
    return (
        Conversation.objects.for_tenant(tenant)
        .filter(resolution="", updated_at__lt=cutoff)
        .update(resolution=Conversation.Resolution.ABANDONED, resolved_at=F("updated_at"))
    )


def _delete_conversations(queryset) -> None:
    """Delete in batches, so that memory and each statement stay bounded."""
    while True:
        batch = list(queryset.order_by().values_list("pk", flat=True)[:DELETE_BATCH])
        if not batch:
            return
        with transaction.atomic():
            Conversation.objects.filter(pk__in=batch).delete()


def _counts(tenant: Tenant, conversations) -> dict:
    ids = conversations.values("pk")
    return {
        "conversations": conversations.count(),
        "messages": Message.objects.for_tenant(tenant).filter(conversation__in=ids).count(),
        "feedback": Feedback.objects.for_tenant(tenant).filter(message__conversation__in=ids).count(),
    }


def conversations_retention_apply(*, tenant: Tenant, now: dt.datetime | None = None) -> dict | None:
    """Delete the tenant's conversations idle longer than its retention (with their messages and
    feedback), audited with the counts. None when the tenant keeps conversations forever."""
    days = conversation_retention_days(tenant=tenant)
    if not days:
        return None
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    old = Conversation.objects.for_tenant(tenant).filter(updated_at__lt=cutoff)
    counts = _counts(tenant, old)
    if counts["conversations"]:
        _delete_conversations(old)
        audit_record(
            tenant=tenant,
            action="conversation.retention",
            details={**counts, "retention_days": days, "before": cutoff.isoformat()},
        )
    return counts


def daily_maintenance(*, now: dt.datetime | None = None) -> dict:
    """The daily job, tenant by tenant (each in its own row-level-security scope): mark
    abandoned conversations, apply retention, delete expired exports."""
    now = now or timezone.now()
    summary = {"tenants": 0, "abandoned": 0, "deleted_conversations": 0, "expired_exports": 0}
    for tenant in Tenant.objects.order_by("pk"):
        with rls.scope(tenant.pk):
            try:
                summary["abandoned"] += conversations_mark_abandoned(tenant=tenant, now=now)
                deleted = conversations_retention_apply(tenant=tenant, now=now)
                summary["deleted_conversations"] += (deleted or {}).get("conversations", 0)
                summary["expired_exports"] += exports_expire(tenant=tenant, now=now)
            except Exception:
                # One tenant's failure must not keep the others' retention from running.
                logger.exception("daily maintenance failed for tenant %s", tenant.pk)
                continue
        summary["tenants"] += 1
    return summary


def _unlink_export(path: Path) -> None:
    # Only the written file: a worker still writing the `.part` discards it itself.
    path.unlink(missing_ok=True)


# Stored on the export in English (as the API shows it); the dashboard translates it.
ERASED_EXPORT_ERROR = gettext_noop(
    "Deleted: it held the conversations of a person whose data was erased on request. Request a new export."
)


def _exports_withdraw(*, tenant: Tenant, conversations, reason: str) -> int:
    """Delete the files of the tenant's exports that hold messages of `conversations` (a
    person's, about to be erased) and mark them expired, each audited; returns how many.

    Ready exports lose their file (once the erasure is committed); one being written is marked
    so that its worker discards the file when done (`export_write` makes ready only a still-running export). The exports' rows
    stay locked until the erasure commits, so a pending export's worker, which marks it running
    first, reads only after the person is gone."""
    live = (Export.Status.PENDING, Export.Status.RUNNING, Export.Status.READY)
    exports = list(
        Export.objects.for_tenant(tenant).filter(status__in=live).select_for_update().order_by("pk")
    )
    if not exports:
        return 0
    messages = Message.objects.for_tenant(tenant).filter(conversation__in=conversations.values("pk"))
    withdrawn = 0
    for export in exports:
        if export.status == Export.Status.PENDING:
            continue
        start, end = period_bounds(export.since, export.until)
        held = messages.filter(created_at__gte=start, created_at__lt=end)
        if export.channel:
            held = held.filter(conversation__channel=export.channel)
        if not held.exists():
            continue
        # The files go once the erasure is committed: rolled back, it leaves the export whole.
        transaction.on_commit(
            functools.partial(_unlink_export, Path(settings.MEDIA_ROOT) / export_file_path(export))
        )
        Export.objects.filter(pk=export.pk).update(
            status=Export.Status.EXPIRED, file_path="", error=ERASED_EXPORT_ERROR, expires_at=timezone.now()
        )
        audit_record(
            tenant=tenant,
            action="export.erase",
            target=export,
            details={"reason": reason, "was": export.status, "rows": export.row_count},
        )
        withdrawn += 1
    return withdrawn


@transaction.atomic
def personal_data_erase(*, tenant: Tenant, user=None, contact: Contact | None = None) -> dict:
    """Erase one customer's conversations in the tenant, in every channel, on their request:
    a member's (their conversations, messages and ratings) or a contact's (the contact too),
    and the export files already written that hold their messages. Audited with the counts,
    never with the content."""
    if (user is None) == (contact is None):
        raise ValueError("personal_data_erase() takes a user or a contact")
    if contact is not None:
        conversations = Conversation.objects.for_tenant(tenant).filter(contact=contact)
        counts = _counts(tenant, conversations)
        counts["feedback"] += (
            Feedback.objects.for_tenant(tenant)
            .filter(contact=contact)
            .exclude(message__conversation__contact=contact)
            .count()
        )
        counts["exports"] = _exports_withdraw(
            tenant=tenant, conversations=conversations, reason=f"contact {contact.pk} erased"
        )
        conversation_services.contact_delete(contact=contact)
        return counts
    conversations = Conversation.objects.for_tenant(tenant).filter(user=user)
    counts = _counts(tenant, conversations)
    counts["exports"] = _exports_withdraw(
        tenant=tenant, conversations=conversations, reason=f"user {user.pk} erased"
    )
    own_ratings = (
        Feedback.objects.for_tenant(tenant).filter(user=user).exclude(message__conversation__user=user)
    )
    counts["feedback"] += own_ratings.count()
    audit_record(
        tenant=tenant,
        action="user.data_erase",
        details={"user_id": user.pk, **counts},
    )
    own_ratings.delete()
    _delete_conversations(conversations)
    return counts
