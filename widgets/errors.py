"""The widget's refusals, in the platform's error format."""

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed

from tenants.errors import APIError, Forbidden


class IdentityInvalid(APIError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "identity_invalid"
    default_detail = _("The visitor's identity could not be verified.")


class OriginNotAllowed(Forbidden):
    default_code = "origin_not_allowed"
    default_detail = _("This widget may not be used on this website.")


class WidgetDisabled(Forbidden):
    default_code = "widget_disabled"
    default_detail = _("This chat is not available right now.")


class VisitorTokenInvalid(APIError, AuthenticationFailed):
    """401 with `WWW-Authenticate` (DRF adds it to an AuthenticationFailed), in the error format."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "token_invalid"
    default_detail = _("The visitor token is not valid.")
