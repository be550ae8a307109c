"""Reads of accounts that the interfaces share (writes are in services.py)."""

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Invitation, User, hash_token
from tenants.errors import APIError, NotFound
from tenants.models import Tenant


def invitation_by_token(*, token: str, lock: bool = False) -> Invitation:
    """The pending invitation a token names, with its tenant, or the `invitation_invalid` error.
    The token is the capability: whoever holds it may see which tenant and email it is for.
    `lock` (inside a transaction) holds the row until the acceptance commits."""
    invitations = Invitation.objects.select_related("tenant")
    if lock:
        invitations = invitations.select_for_update()
    invitation = invitations.filter(token_hash=hash_token(token)).first()
    if invitation is None or not invitation.is_pending:
        raise APIError(_("This invitation is invalid, used or expired."), code="invitation_invalid")
    return invitation


def invitation_account(*, invitation: Invitation) -> User | None:
    """The existing account with the invited email, if there is one."""
    return User.objects.filter(email=invitation.email).first()


def invitation_unaccepted_list(*, tenant: Tenant) -> QuerySet[Invitation]:
    """A tenant's invitations not accepted yet, expired ones included, with who sent them."""
    return Invitation.objects.for_tenant(tenant).filter(accepted_at__isnull=True).select_related("invited_by")


def invitations_pending(invitations: QuerySet[Invitation]) -> QuerySet[Invitation]:
    """Narrow an already scoped set of a tenant's invitations to those still open: neither
    accepted nor expired."""
    return invitations.filter(accepted_at__isnull=True, expires_at__gt=timezone.now())


def invitation_get(*, tenant: Tenant, invitation_id) -> Invitation:
    """An invitation of this tenant, or 404: another tenant's is as absent as a missing one."""
    invitation = Invitation.objects.for_tenant(tenant).filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound(_("No such invitation."))
    return invitation
