"""Every write to tenants, plans and memberships."""

import uuid

from django.db import transaction
from django.utils.text import slugify

from tenants import rls
from tenants.audit import audit_record
from tenants.errors import APIError, Conflict
from tenants.models import Membership, Plan, Tenant
from tenants.revocation import access_changed
from tenants.roles import Role


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
        settings=settings or {},
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
        merged = {**(tenant.settings or {}), **changes["settings"]}
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
    audit_record(tenant=tenant, action="tenant.delete", target=tenant, details={"name": tenant.name})
    access_changed(tenant_id=tenant.pk)
    # Operators only: detaching the audit trail moves its rows out of the tenant's scope.
    with rls.unscoped():
        tenant.delete()


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
