"""The emails of accounts: invitations and password resets, in the recipient's language.

Services queue these with `transaction.on_commit`, so nothing is sent for a write that rolls
back; a sending failure is logged and lost (the invitation stays, its link is still shown to
the admin; a reset can be asked for again), never turned into a failed request.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import translation

from accounts.forms import STAFF_ROLE_CHOICES

logger = logging.getLogger(__name__)


def link_base(request) -> str:
    """Scheme and host of links in emails: PUBLIC_BASE_URL, else the request's own (its host is
    checked against ALLOWED_HOSTS)."""
    return settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")


def _send(*, template: str, to: str, language: str, context: dict) -> bool:
    with translation.override(language):
        subject = " ".join(render_to_string(f"email/{template}_subject.txt", context).split())
        body = render_to_string(f"email/{template}.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
    except Exception:
        # SMTP refused, timed out or unreachable: the write it follows is committed and stays.
        logger.exception("Could not send the %s email", template)
        return False
    return True


def invitation_send(
    *, to: str, tenant_name: str, inviter: str, role: str, link: str, expires_at, language: str
) -> bool:
    with translation.override(language):
        role_label = str(dict(STAFF_ROLE_CHOICES).get(role, role))
    context = {
        "tenant_name": tenant_name,
        "inviter": inviter,
        "role": role_label,
        "link": link,
        "expires_at": expires_at,
    }
    return _send(template="invitation", to=to, language=language, context=context)


def password_reset_send(*, to: str, name: str, link: str, language: str) -> bool:
    context = {
        "name": name,
        "link": link,
        "minutes": max(1, settings.PASSWORD_RESET_TIMEOUT // 60),
    }
    return _send(template="password_reset", to=to, language=language, context=context)
