"""Every write of accounts: registration, sign-in and tokens, invitations."""

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import Invitation, User, hash_token, new_invitation_token, normalise_email
from tenants.audit import audit_record
from tenants.errors import APIError, Conflict, Forbidden, NotFound, TenantSuspended
from tenants.models import Membership, Tenant
from tenants.revocation import access_changed
from tenants.roles import PLATFORM_ADMIN, Role
from tenants.services import membership_create

INVALID_CREDENTIALS = "The email or password is incorrect."


@dataclass(frozen=True)
class SignIn:
    user: User
    membership: Membership | None
    access: str
    refresh: str


def token_pair_for(*, user: User, membership: Membership | None) -> tuple[str, str]:
    refresh = RefreshToken.for_user(user)
    refresh["tenant_id"] = str(membership.tenant_id) if membership else None
    if user.is_platform_admin:
        refresh["role"] = PLATFORM_ADMIN
    else:
        refresh["role"] = membership.role if membership else None
    # The access token copies these claims from the refresh token.
    return str(refresh.access_token), str(refresh)


def _check_password_rules(*, password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as error:
        raise exceptions.ValidationError({"password": list(error.messages)}) from error


# --- Failed sign-in throttling -----------------------------------------------------------


def _failure_key(email: str) -> str:
    digest = hashlib.sha256(normalise_email(email).encode()).hexdigest()
    return f"login-failures:{digest}"


def login_retry_after(*, email: str) -> int | None:
    """Seconds until this email may try again, or None when it may try now."""
    record = cache.get(_failure_key(email))
    if record and record["count"] >= settings.LOGIN_FAILURE_LIMIT:
        remaining = int(record["reset_at"] - time.time()) + 1
        return max(remaining, 1)
    return None


def login_failure_record(*, email: str) -> None:
    key = _failure_key(email)
    now = time.time()
    record = cache.get(key)
    if not record or record["reset_at"] <= now:
        record = {"count": 0, "reset_at": now + settings.LOGIN_FAILURE_WINDOW_SECONDS}
    record["count"] += 1
    cache.set(key, record, timeout=int(record["reset_at"] - now) + 1)


def _pick_membership(*, user: User, tenant_id) -> Membership | None:
    memberships = Membership.objects.filter(user=user).select_related("tenant").order_by("created_at", "id")
    if tenant_id is None:
        return memberships.first()
    membership = memberships.filter(tenant_id=tenant_id).first()
    if membership is None and not user.is_platform_admin:
        raise Forbidden("You are not a member of this tenant.", code="not_a_member")
    return membership


def user_login(*, email: str, password: str, tenant_id=None) -> SignIn:
    retry_after = login_retry_after(email=email)
    if retry_after is not None:
        raise exceptions.Throttled(
            wait=retry_after, detail="Too many failed sign-ins for this email. Try again later."
        )
    user = authenticate(request=None, email=email, password=password)
    if user is None:
        login_failure_record(email=email)
        raise exceptions.AuthenticationFailed(INVALID_CREDENTIALS)
    cache.delete(_failure_key(email))
    membership = _pick_membership(user=user, tenant_id=tenant_id)
    if membership is None and not user.is_platform_admin:
        raise Forbidden("This account is not a member of any tenant.", code="not_a_member")
    if membership is not None and not membership.tenant.is_active and not user.is_platform_admin:
        raise TenantSuspended()
    access, refresh = token_pair_for(user=user, membership=membership)
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return SignIn(user=user, membership=membership, access=access, refresh=refresh)


def token_refresh(*, refresh: str) -> SignIn:
    """Rotate a refresh token: the used one is blacklisted, and the new pair carries the
    membership's current role (or fails if the membership or user is gone)."""
    try:
        token = RefreshToken(refresh)
    except TokenError as error:
        raise exceptions.AuthenticationFailed(f"Refresh token rejected: {error}") from error
    user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
    if user is None:
        raise exceptions.AuthenticationFailed("This account no longer exists or is disabled.")
    tenant_id = token.get("tenant_id")
    membership = None
    if tenant_id:
        membership = (
            Membership.objects.select_related("tenant").filter(user=user, tenant_id=tenant_id).first()
        )
        if membership is None:
            raise exceptions.AuthenticationFailed("This membership no longer exists; sign in again.")
        if not membership.tenant.is_active and not user.is_platform_admin:
            raise TenantSuspended()
    token.blacklist()
    access, new_refresh = token_pair_for(user=user, membership=membership)
    return SignIn(user=user, membership=membership, access=access, refresh=new_refresh)


def token_revoke(*, refresh: str) -> None:
    try:
        RefreshToken(refresh).blacklist()
    except TokenError as error:
        raise exceptions.AuthenticationFailed(f"Refresh token rejected: {error}") from error


# --- Registration and invitations --------------------------------------------------------


@transaction.atomic
def user_register(*, email: str, password: str, name: str, tenant_id, role: str) -> tuple[User, Membership]:
    """Self-registration: an end user of a tenant that allows sign-up, nothing else."""
    if role != Role.END_USER:
        raise Forbidden(
            "Self-registration creates end users only; other roles come from an invitation "
            "by a tenant admin.",
            code="role_not_allowed",
            details={"role": role},
        )
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        raise NotFound("No such tenant.")
    if not tenant.is_active:
        raise TenantSuspended()
    if not tenant.allow_signup:
        raise Forbidden("This tenant does not allow self-registration.", code="signup_closed")
    email = normalise_email(email)
    if User.objects.filter(email=email).exists():
        raise Conflict("An account with this email already exists; sign in instead.")
    user = User(email=email, name=name)
    _check_password_rules(password=password, user=user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as error:  # a concurrent registration of the same email
        raise Conflict("An account with this email already exists; sign in instead.") from error
    membership = membership_create(tenant=tenant, user=user, role=Role.END_USER)
    return user, membership


def invitation_create(*, tenant: Tenant, email: str, role: str, invited_by: User) -> tuple[Invitation, str]:
    """Create an invitation and return it with its token, which is not stored in clear."""
    email = normalise_email(email)
    if Membership.objects.for_tenant(tenant).filter(user__email=email).exists():
        raise Conflict("This person is already a member of the tenant.")
    pending = Invitation.objects.for_tenant(tenant).filter(
        email=email, accepted_at__isnull=True, expires_at__gt=timezone.now()
    )
    if pending.exists():
        raise Conflict("A pending invitation for this email already exists; revoke it first.")
    token = new_invitation_token()
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=hash_token(token),
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_DAYS),
    )
    audit_record(
        tenant=tenant, action="invitation.create", target=invitation, details={"email": email, "role": role}
    )
    return invitation, token


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> None:
    audit_record(
        tenant=invitation.tenant,
        action="invitation.revoke",
        target=invitation,
        details={"email": invitation.email, "role": invitation.role},
    )
    invitation.delete()


@transaction.atomic
def invitation_accept(*, token: str, password: str, name: str) -> tuple[User, Membership]:
    """Accept an invitation: a new person gets an account; an existing one proves it with
    their password and gains the membership."""
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("tenant")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if invitation is None or not invitation.is_pending:
        raise APIError("This invitation is invalid, used or expired.", code="invitation_invalid")
    if not invitation.tenant.is_active:
        raise TenantSuspended()
    user = User.objects.filter(email=invitation.email).first()
    if user is None:
        user = User(email=invitation.email, name=name)
        _check_password_rules(password=password, user=user)
        user.set_password(password)
        user.save()
    elif not user.check_password(password):
        raise exceptions.AuthenticationFailed(
            "An account with this email exists; enter its password to accept the invitation."
        )
    membership = membership_create(tenant=invitation.tenant, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    return user, membership


def user_set_active(*, user: User, active: bool) -> User:
    """Enable or disable an account; a disabled one's open sockets are closed."""
    if user.is_active != active:
        user.is_active = active
        user.save(update_fields=["is_active"])
        access_changed(user_id=user.pk)
    return user
