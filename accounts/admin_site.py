"""The Django admin's site, signing in through the platform's sign-in limiter like the API and
the dashboard (accounts/throttling.py), so that operators' accounts are no easier to guess."""

from django.contrib import admin
from django.contrib.admin import forms as admin_forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.urls import reverse
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


class RevokingPasswordMixin:
    """A password set through the admin (an operator's own, or anyone's by an operator) revokes
    every refresh token of that person, as the dashboard and password reset do."""

    def set_password_and_save(self, user, *args, commit=True, **kwargs):
        from accounts import services

        user = super().set_password_and_save(user, *args, commit=commit, **kwargs)
        if commit:
            services.user_refresh_tokens_revoke(user=user)
        return user


class AdminSetPasswordForm(RevokingPasswordMixin, auth_forms.AdminPasswordChangeForm):
    """The operator sets someone's password (UserAdmin's "change password" page)."""


class AdminOwnPasswordForm(RevokingPasswordMixin, admin_forms.AdminPasswordChangeForm):
    """The operator changes their own password (/admin/password_change/)."""


class PlatformAdminSite(admin.AdminSite):
    login_form = AdminSignInForm

    def password_change(self, request, extra_context=None):
        # Django's own view, with the form that revokes refresh tokens (AdminSite has no setting
        # for the form, so this repeats its few lines).
        defaults = {
            "form_class": AdminOwnPasswordForm,
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return PasswordChangeView.as_view(**defaults)(request)

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if isinstance(form, AdminSignInForm) and form.retry_after:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response
