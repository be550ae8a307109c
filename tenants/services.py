"""Every write to tenants, plans and memberships."""

import logging
import uuid

from celery import current_app
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.module_loading import import_string
from django.utils.text import slugify
from rest_framework import serializers

from tenants import rls
from tenants.audit import audit_record
from tenants.errors import APIError, Conflict
from tenants.models import Membership, Plan, Tenant
from tenants.revocation import access_changed
from tenants.roles import Role
from tenants.tenant_settings import tenant_settings_validate

logger = logging.getLogger(__name__)


def plan_resolve(*, name: str | None) -> Plan:
    """The plan a client named by code, display name or alias (`pro`, `Pro`, `專業版`)."""
    if not name:
        plan = Plan.objects.filter(is_default=True).first() or Plan.objects.first()
        if plan is None:
            raise APIError("No plan is configured on this platform.", code="no_plan")
        return plan
    wanted = name.strip().casefold()
    for plan in Plan.objects.all():
        names = [plan.code, plan.name, *plan.aliases]
        if wanted in {candidate.casefold() for candidate in names}:
            return plan
    known = ", ".join(Plan.objects.values_list("code", flat=True))
    raise APIError(
        f"Unknown plan {name!r}. Known plans: {known}.",
        code="validation_error",
        details={"plan": [f"Unknown plan. Known plans: {known}."]},
    )


def _checked_settings(settings: dict) -> dict:
    """Settings as their schemas accept them; a 400 naming each refused key otherwise (the
    interfaces check first; this keeps any other writer from storing what readers cannot use)."""
    try:
        return tenant_settings_validate(settings)
    except serializers.ValidationError as error:
        raise APIError(
            "The request is invalid; see details.", code="validation_error", details=error.detail
        ) from error


def _unique_slug(name: str) -> str:
    base = slugify(name, allow_unicode=True)[:60] or "tenant"
    slug = base
    while Tenant.objects.filter(slug=slug).exists():
        slug = f"{base}-{uuid.uuid4().hex[:6]}"
    return slug


def tenant_create(
    *,
    name: str,
    description: str = "",
    plan: Plan | None = None,
    allow_signup: bool = False,
    settings: dict | None = None,
) -> Tenant:
    tenant = Tenant.objects.create(
        name=name,
        slug=_unique_slug(name),
        description=description,
        plan=plan or plan_resolve(name=None),
        allow_signup=allow_signup,
        settings={
            name: value for name, value in _checked_settings(settings or {}).items() if value is not None
        },
    )
    audit_record(tenant=tenant, action="tenant.create", target=tenant, details={"plan": tenant.plan.code})
    return tenant


_UPDATABLE_FIELDS = {"name", "description", "plan", "status", "allow_signup", "settings"}


def tenant_update(*, tenant: Tenant, **changes) -> Tenant:
    unknown = set(changes) - _UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"tenant_update cannot change {sorted(unknown)}")
    if isinstance(changes.get("settings"), dict):
        # Settings are sections (retrieval, assistant, ...): a PATCH replaces the sections it
        # names and keeps the others; a section set to null is removed.
        merged = {**(tenant.settings or {}), **_checked_settings(changes["settings"])}
        changes["settings"] = {name: value for name, value in merged.items() if value is not None}
    before = {field: getattr(tenant, field) for field in changes}
    for field, value in changes.items():
        setattr(tenant, field, value)
    tenant.save(update_fields=[*changes, "updated_at"])
    changed = {
        field: _audited_value(field, value) for field, value in changes.items() if before[field] != value
    }
    if "status" in changed:
        access_changed(tenant_id=tenant.pk)  # open sockets of a suspended tenant are closed
    if changed:
        action = {Tenant.Status.SUSPENDED: "tenant.suspend", Tenant.Status.ACTIVE: "tenant.reactivate"}.get(
            changed.get("status"), "tenant.update"
        )
        audit_record(tenant=tenant, action=action, target=tenant, details={"changed": changed})
    return tenant


def _audited_value(field: str, value):
    if field == "plan":
        return value.code
    if field == "settings":
        return sorted(value)  # the sections, not their contents
    return value


def tenant_suspend(*, tenant: Tenant) -> Tenant:
    return tenant_update(tenant=tenant, status=Tenant.Status.SUSPENDED)


def tenant_reactivate(*, tenant: Tenant) -> Tenant:
    return tenant_update(tenant=tenant, status=Tenant.Status.ACTIVE)


@transaction.atomic
def tenant_delete(*, tenant: Tenant) -> None:
    """Delete the tenant's rows now, and queue the removal of what lives outside the database
    (vectors, stored files: `tenant_data_purge`) once that is committed."""
    audit_record(tenant=tenant, action="tenant.delete", target=tenant, details={"name": tenant.name})
    access_changed(tenant_id=tenant.pk)
    tenant_id, name = str(tenant.pk), tenant.name
    # Operators only: detaching the audit trail moves its rows out of the tenant's scope.
    with rls.unscoped():
        tenant.delete()
    transaction.on_commit(lambda: _queue_purge(tenant_id=tenant_id, name=name))


# The task that purges a deleted tenant's data, declared in tasks.py under this name (tasks.py
# imports this module, so this one queues the task by name; tenants/apps.py registers it).
PURGE_TASK = "tenants.tasks.purge_tenant_data"


def _queue_purge(*, tenant_id: str, name: str) -> None:
    # The registered task, not `send_task`: it runs inline when tasks are eager.
    purge_tenant_data = current_app.tasks[PURGE_TASK]
    try:
        purge_tenant_data.delay(tenant_id, name)
    except Exception:
        # The rows are gone already and the client is told so; the purge is idempotent and can
        # be run by hand (`purge_tenant_data.delay(tenant_id)`), so say loudly what to run.
        logger.exception("could not queue the purge of deleted tenant %s (%s)", tenant_id, name)


def tenant_data_purge(*, tenant_id, name: str = "") -> dict:
    """Remove what a deleted tenant leaves beyond its database rows: each app's share through
    TENANT_DATA_PURGERS (the vector index, keyword statistics), then every stored file under the
    tenant's media path; audited with what was removed. Idempotent, so a retry is safe."""
    summary: dict = {"tenant_id": str(tenant_id), "name": name}
    with rls.scope(tenant_id):
        for path in django_settings.TENANT_DATA_PURGERS:
            summary.update(import_string(path)(tenant_id=tenant_id))
    summary["files"] = _delete_stored_folder(f"tenants/{uuid.UUID(str(tenant_id))}")
    audit_record(tenant=None, action="tenant.purge", details=summary)
    return summary


def _delete_stored_folder(folder: str) -> int:
    """Delete a folder of the default storage and everything in it; how many files it held."""
    try:
        directories, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return 0
    deleted = 0
    for name in files:
        default_storage.delete(f"{folder}/{name}")
        deleted += 1
    for name in directories:
        deleted += _delete_stored_folder(f"{folder}/{name}")
    default_storage.delete(folder)  # the file system keeps empty folders; other storages have none
    return deleted


def membership_create(*, tenant: Tenant, user, role: str) -> Membership:
    if Membership.objects.for_tenant(tenant).filter(user=user).exists():
        raise Conflict("This user is already a member of the tenant.")
    membership = Membership.objects.create(tenant=tenant, user=user, role=role)
    audit_record(
        tenant=tenant, action="member.add", target=membership, details={"email": user.email, "role": role}
    )
    return membership


def _ensure_another_admin(membership: Membership) -> None:
    if membership.role != Role.TENANT_ADMIN:
        return
    others = (
        Membership.objects.for_tenant(membership.tenant)
        .filter(role=Role.TENANT_ADMIN)
        .exclude(pk=membership.pk)
    )
    if not others.exists():
        raise Conflict(
            "A tenant must keep at least one tenant admin; promote someone else first.",
            code="last_tenant_admin",
        )


@transaction.atomic
def membership_set_role(*, membership: Membership, role: str) -> Membership:
    if role != membership.role:
        _ensure_another_admin(membership)
        audit_record(
            tenant=membership.tenant,
            action="member.role_change",
            target=membership,
            details={"email": membership.user.email, "from": membership.role, "to": role},
        )
        membership.role = role
        membership.save(update_fields=["role"])
        access_changed(membership=membership)
    return membership


@transaction.atomic
def membership_delete(*, membership: Membership) -> None:
    _ensure_another_admin(membership)
    audit_record(
        tenant=membership.tenant,
        action="member.remove",
        target=membership,
        details={"email": membership.user.email, "role": membership.role},
    )
    access_changed(membership=membership)
    membership.delete()
