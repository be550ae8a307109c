"""Dashboard forms of accounts: sign-in, password reset, invitations, acceptance. Validation only."""

from django import forms
from django.utils.translation import gettext_lazy as _

from tenants.roles import Role

STAFF_ROLE_CHOICES = [
    (Role.TENANT_ADMIN.value, _("Tenant admin")),
    (Role.AGENT.value, _("Agent")),
    (Role.END_USER.value, _("End user")),
]


class SignInForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=STAFF_ROLE_CHOICES, initial=Role.AGENT.value)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=STAFF_ROLE_CHOICES)


class InvitationAcceptForm(forms.Form):
    """A new person's acceptance: a name and a password for the new account."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=200)
    name = forms.CharField(label=_("Your name"), max_length=150, required=False)
    password = forms.CharField(
        label=_("Password"),
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("A password for your new account."),
    )


class InvitationJoinForm(forms.Form):
    """The signed-in invitee's acceptance: the token alone."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=200)


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
