"""The Django admin's site, signing in through the platform's sign-in limiter like the API and
the dashboard (accounts/throttling.py), so that operators' accounts are no easier to guess."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import ngettext
from rest_framework import exceptions as drf_exceptions

from tenants.throttling import client_address


def throttled_message(wait: float | None) -> str:
    minutes = max(1, round((wait or 60) / 60))
    return ngettext(
        "Too many failed sign-ins. Try again in %(minutes)d minute.",
        "Too many failed sign-ins. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


class AdminSignInForm(AdminAuthenticationForm):
    retry_after: int | None = None

    def clean(self):
        from accounts import services

        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            try:
                self.user_cache = services.user_authenticate(
                    email=email, password=password, address=client_address(self.request)
                )
            except drf_exceptions.Throttled as throttled:
                self.retry_after = max(1, int(throttled.wait or 1))
                raise ValidationError(throttled_message(throttled.wait), code="throttled") from None
            except drf_exceptions.AuthenticationFailed:
                raise self.get_invalid_login_error() from None
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class PlatformAdminSite(admin.AdminSite):
    login_form = AdminSignInForm

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if isinstance(form, AdminSignInForm) and form.retry_after:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response
