"""Every write of accounts: registration, sign-in and tokens, passwords, invitations."""

from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import emails
from accounts.models import Invitation, User, hash_token, new_invitation_token, normalise_email
from accounts.selectors import invitation_account, invitation_by_token
from accounts.throttling import (
    sign_in_failure_record,
    sign_in_failures_forget,
    sign_in_retry_after,
    sign_in_success_record,
)
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


def _pick_membership(*, user: User, tenant_id) -> Membership | None:
    memberships = Membership.objects.filter(user=user).select_related("tenant").order_by("created_at", "id")
    if tenant_id is None:
        return memberships.first()
    membership = memberships.filter(tenant_id=tenant_id).first()
    if membership is None and not user.is_platform_admin:
        raise Forbidden("You are not a member of this tenant.", code="not_a_member")
    return membership


def user_authenticate(*, email: str, password: str, address: str | None) -> User:
    """The one password check of every sign-in: the API, the dashboard and the Django admin.

    Refused with 429 while the sign-in limiter holds this email or this client address
    (accounts/throttling.py); an unknown email and a wrong password fail alike and both count.
    """
    retry_after = sign_in_retry_after(email=email, address=address)
    if retry_after is not None:
        raise exceptions.Throttled(wait=retry_after, detail=_("Too many failed sign-ins. Try again later."))
    user = authenticate(request=None, email=email, password=password)
    if user is None:
        sign_in_failure_record(email=email, address=address)
        raise exceptions.AuthenticationFailed(INVALID_CREDENTIALS)
    sign_in_success_record(email=email, address=address)
    return user


def user_login(*, email: str, password: str, address: str | None, tenant_id=None) -> SignIn:
    user = user_authenticate(email=email, password=password, address=address)
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


def user_refresh_tokens_revoke(*, user: User) -> int:
    """Blacklist every refresh token of `user` that is still outstanding; returns how many."""
    outstanding = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    revoked = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
    return len(revoked)


# --- Passwords ---------------------------------------------------------------------------------


@transaction.atomic
def user_password_set(*, user: User, password: str) -> None:
    """Give `user` a new password (already validated) and revoke what the old one let anyone
    keep: every refresh token is blacklisted, and every dashboard or admin session signed in
    before ends at its next request (Django checks the session against the password hash). The
    caller keeps its own session with `update_session_auth_hash`, when it should."""
    user.set_password(password)
    user.save(update_fields=["password"])
    user_refresh_tokens_revoke(user=user)


def _reset_link(*, user: User, base_url: str) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("dashboard:password-reset-confirm", kwargs={"uidb64": uid, "token": token})
    return f"{base_url}{path}"


def password_reset_request(*, email: str, base_url: str, language: str) -> None:
    """Email a password-reset link to the active account with this email, after commit; do
    nothing for any other email. The caller answers the same either way."""
    user = User.objects.filter(email=normalise_email(email), is_active=True).first()
    if user is None or not user.has_usable_password():
        return
    link = _reset_link(user=user, base_url=base_url)
    transaction.on_commit(
        partial(emails.password_reset_send, to=user.email, name=user.name, link=link, language=language)
    )


def password_reset_user(*, uid: str, token: str) -> User | None:
    """The account a reset link names, when its token is valid (unused, unexpired), else None."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


def password_reset_complete(*, user: User, password: str) -> None:
    """Set the new password of a reset (validated) and lift the limiter's count on the email:
    the owner proved control of the mailbox."""
    user_password_set(user=user, password=password)
    sign_in_failures_forget(email=user.email)


def password_reset_confirm(*, uid: str, token: str, password: str) -> User:
    user = password_reset_user(uid=uid, token=token)
    if user is None:
        raise APIError(_("This password-reset link is invalid, used or expired."), code="invalid_token")
    _check_password_rules(password=password, user=user)
    password_reset_complete(user=user, password=password)
    return user


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


def invitation_create(
    *,
    tenant: Tenant,
    email: str,
    role: str,
    invited_by: User | None,
    base_url: str = "",
    language: str | None = None,
) -> tuple[Invitation, str]:
    """Create an invitation and return it with its token, which is not stored in clear. The
    invitee gets the accept link by email after commit, in `language` (the inviter's), with
    links on `base_url` (PUBLIC_BASE_URL, else the request's host)."""
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
    base_url = settings.PUBLIC_BASE_URL or base_url
    if base_url:
        link = f"{base_url}{reverse('dashboard:invitation-accept')}?token={token}"
        transaction.on_commit(
            partial(
                emails.invitation_send,
                to=email,
                tenant_name=tenant.name,
                inviter=(invited_by.name or invited_by.email) if invited_by else "",
                role=role,
                link=link,
                expires_at=invitation.expires_at,
                language=language or translation.get_language() or settings.LANGUAGE_CODE,
            )
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


class SignInRequired(APIError):
    """401: sign in first (as the account the request is about)."""

    status_code = 401
    default_code = "sign_in_required"
    auth_header = 'Bearer realm="api"'


@transaction.atomic
def invitation_accept(
    *, token: str, user: User | None, password: str | None = None, name: str = ""
) -> tuple[User, Membership]:
    """Accept an invitation.

    When an account with the invited email exists, its owner accepts signed in as that account
    (`user`: the request's authenticated user, or None) and nothing else counts: no password is
    ever checked here, so this call cannot be used to guess one, and it never signs anyone in.
    A new person gets an account with the password chosen here.
    """
    invitation = invitation_by_token(token=token, lock=True)
    if not invitation.tenant.is_active:
        raise TenantSuspended()
    account = invitation_account(invitation=invitation)
    if account is not None:
        if user is None or not user.is_authenticated:
            raise SignInRequired(
                _(
                    "An account with this email exists: sign in as that account, then accept the "
                    "invitation (API: with its access token, sending only the invitation token)."
                )
            )
        if user.pk != account.pk:
            raise Forbidden(
                _("This invitation is for another account. Sign in as the invited email to accept it."),
                code="invitation_for_another_account",
            )
    else:
        if not password:
            raise exceptions.ValidationError({"password": [_("Choose a password for your new account.")]})
        account = User(email=invitation.email, name=name)
        _check_password_rules(password=password, user=account)
        account.set_password(password)
        account.save()
    membership = membership_create(tenant=invitation.tenant, user=account, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    return account, membership


def user_set_active(*, user: User, active: bool) -> User:
    """Enable or disable an account; a disabled one's open sockets are closed."""
    if user.is_active != active:
        user.is_active = active
        user.save(update_fields=["is_active"])
        access_changed(user_id=user.pk)
    return user
