"""Reads of accounts that the interfaces share (writes are in services.py)."""

from django.utils.translation import gettext as _

from accounts.models import Invitation, User, hash_token
from tenants.errors import APIError


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
