"""Dashboard pages of accounts: sign-in and out, password, tenant choice, invitations, members.
Thin: validate a form, call a service or selector, answer with a page or a redirect."""

from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView
from rest_framework import exceptions as drf_exceptions

from accounts import selectors, services
from accounts.admin_site import throttled_message
from accounts.emails import link_base
from accounts.forms import (
    InvitationAcceptForm,
    InvitationForm,
    InvitationJoinForm,
    MemberRoleForm,
    PasswordResetRequestForm,
    SignInForm,
)
from accounts.throttling import InvitationTokenThrottle, PasswordResetEmailThrottle
from tenants import selectors as tenant_selectors
from tenants import services as tenant_services
from tenants.dashboard import TenantDashboardMixin, paginate, query_without_page
from tenants.errors import APIError, Forbidden, TenantSuspended
from tenants.middleware import SESSION_TENANT_KEY
from tenants.roles import Capability
from tenants.throttling import (
    InvitationAcceptAddressThrottle,
    PasswordResetAddressThrottle,
    client_address,
    throttle_wait,
)


def _overview(tenant_id) -> str:
    return reverse("dashboard:overview", kwargs={"tenant_id": tenant_id})


def _safe_next(request) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


def _landing(request) -> HttpResponseRedirect:
    """Where a signed-in user goes: the tenant of the session, their only tenant, or the
    tenant chooser when there are several (or when a platform admin has none chosen)."""
    memberships = tenant_selectors.staff_memberships(user=request.user)
    chosen = request.session.get(SESSION_TENANT_KEY)
    if chosen and (request.user.is_platform_admin or any(str(m.tenant_id) == chosen for m in memberships)):
        return redirect(_overview(chosen))
    if len(memberships) == 1 and not request.user.is_platform_admin:
        return redirect(_overview(memberships[0].tenant_id))
    return redirect("dashboard:choose-tenant")


class SignInView(View):
    template_name = "dashboard/login.html"

    def get(self, request):
        if request.user.is_authenticated:
            target = _safe_next(request)
            return redirect(target) if target else _landing(request)
        return self._page(request, SignInForm())

    def post(self, request):
        form = SignInForm(request.POST)
        if not form.is_valid():
            return self._page(request, form, status=400)
        email, password = form.cleaned_data["email"], form.cleaned_data["password"]
        try:
            # The API's sign-in: the failure throttle, the same error for an unknown email and a
            # wrong password, and the suspended-tenant check.
            sign_in = services.user_login(email=email, password=password, address=client_address(request))
        except drf_exceptions.Throttled as throttled:
            form.add_error(None, throttled_message(throttled.wait))
            return self._page(request, form, status=429)
        except drf_exceptions.AuthenticationFailed:
            form.add_error(None, _("The email or password is incorrect."))
            return self._page(request, form, status=400)
        except TenantSuspended:
            form.add_error(None, _("This tenant is suspended. Contact the platform operator."))
            return self._page(request, form, status=403)
        except APIError:
            form.add_error(None, _("This account has no access to the dashboard."))
            return self._page(request, form, status=403)
        user = sign_in.user
        memberships = tenant_selectors.staff_memberships(user=user)
        if not memberships and not user.is_platform_admin:
            form.add_error(
                None,
                _(
                    "The dashboard is for tenant staff. Customers chat through the tenant's own website or app."
                ),
            )
            return self._page(request, form, status=403)
        login(request, user)
        if len(memberships) == 1:
            request.session[SESSION_TENANT_KEY] = str(memberships[0].tenant_id)
        target = _safe_next(request)
        if target:
            return redirect(target)
        if len(memberships) == 1:
            return redirect(_overview(memberships[0].tenant_id))
        return redirect("dashboard:choose-tenant")

    def _page(self, request, form, status: int = 200):
        return render(
            request, self.template_name, {"form": form, "next": _safe_next(request) or ""}, status=status
        )


class SignOutView(View):
    http_method_names = ["post"]

    def post(self, request):
        logout(request)
        messages.info(request, _("You are signed out."))
        return redirect("dashboard:login")


class HomeView(LoginRequiredMixin, View):
    def get(self, request):
        return _landing(request)


class ChooseTenantView(LoginRequiredMixin, TemplateView):
    """The tenants a person may open: their staff memberships, or every tenant for a
    platform admin (searchable and paginated)."""

    template_name = "dashboard/choose_tenant.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["memberships"] = tenant_selectors.staff_memberships(user=self.request.user)
        if self.request.user.is_platform_admin:
            search = self.request.GET.get("search", "").strip()
            context["search"] = search
            context["page"] = paginate(self.request, tenant_selectors.tenant_list(search=search or None))
            context["query"] = query_without_page(self.request)
        return context


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "dashboard/password_change.html"
    success_url = reverse_lazy("dashboard:home")

    def form_valid(self, form):
        # Every refresh token and every other session of the person ends; this one stays.
        services.user_password_set(user=form.user, password=form.cleaned_data["new_password1"])
        update_session_auth_hash(self.request, form.user)
        messages.success(self.request, _("Your password has been changed."))
        return HttpResponseRedirect(self.get_success_url())


# --- Password reset ----------------------------------------------------------------------------


class PasswordResetRequestView(View):
    """ "Forgot password?": the same answer whatever the email, so no account is revealed."""

    template_name = "dashboard/password_reset.html"

    def get(self, request):
        return render(request, self.template_name, {"form": PasswordResetRequestForm()})

    def post(self, request):
        form = PasswordResetRequestForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form}, status=400)
        wait = throttle_wait([PasswordResetAddressThrottle()], request)
        if wait is not None:
            form.add_error(None, _("Too many requests. Try again later."))
            response = render(request, self.template_name, {"form": form}, status=429)
            response["Retry-After"] = str(wait)
            return response
        # Past the per-email rate nothing is sent, and the answer is the same.
        if throttle_wait([PasswordResetEmailThrottle()], request) is None:
            services.password_reset_request(
                email=form.cleaned_data["email"],
                base_url=link_base(request),
                language=translation.get_language(),
            )
        return redirect("dashboard:password-reset-sent")


class PasswordResetSentView(TemplateView):
    template_name = "dashboard/password_reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's page (the token leaves the URL for the session before the form is shown); the
    new password goes through the service that revokes every refresh token and session."""

    template_name = "dashboard/password_reset_confirm.html"
    success_url = reverse_lazy("dashboard:login")

    def form_valid(self, form):
        services.password_reset_complete(user=form.user, password=form.cleaned_data["new_password1"])
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        messages.success(self.request, _("Your password has been changed. Sign in with the new one."))
        return HttpResponseRedirect(self.get_success_url())


# --- Invitations (the invitee) -------------------------------------------------------------------


class InvitationAcceptView(View):
    """Open to anyone holding the token. A new person chooses a password here; the owner of an
    existing account with the invited email signs in first and then joins with one click: this
    page never takes an existing account's password, so it is no way to guess one."""

    template_name = "dashboard/invitation_accept.html"

    def get(self, request):
        return self._page(request, token=request.GET.get("token", ""), form=None)

    def post(self, request):
        token = request.POST.get("token", "")
        wait = throttle_wait([InvitationAcceptAddressThrottle(), InvitationTokenThrottle()], request)
        if wait is not None:
            error = _("Too many attempts. Try again later.")
            response = self._page(request, token=token, form=None, status=429, error=error)
            response["Retry-After"] = str(wait)
            return response
        try:
            invitation = selectors.invitation_by_token(token=token)
        except APIError:
            return self._page(request, token=token, form=None, status=400)
        if selectors.invitation_account(invitation=invitation) is not None:
            # Whatever else was posted (a password, say), only the signed-in account counts.
            return self._accept(request, token=token, form=InvitationJoinForm(request.POST), password=None)
        form = InvitationAcceptForm(request.POST)
        if not form.is_valid():
            return self._page(request, token=token, form=form, status=400)
        return self._accept(request, token=token, form=form, password=form.cleaned_data["password"])

    def _accept(self, request, *, token: str, form, password: str | None):
        caller = request.user if request.user.is_authenticated else None
        name = form.cleaned_data.get("name", "") if form.is_valid() else ""
        try:
            user, membership = services.invitation_accept(
                token=token, user=caller, password=password, name=name
            )
        except drf_exceptions.ValidationError as error:
            for message in error.detail.get("password", []) if isinstance(error.detail, dict) else []:
                form.add_error("password", str(message))
            return self._page(request, token=token, form=form, status=400)
        except services.SignInRequired:
            return self._page(request, token=token, form=None, status=401)
        except TenantSuspended:
            error = _("This tenant is suspended. Contact the platform operator.")
            return self._page(request, token=token, form=None, status=403, error=error)
        except Forbidden:
            return self._page(request, token=token, form=None, status=403)
        except APIError:
            return self._page(request, token=token, form=None, status=400)
        if caller is None:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_TENANT_KEY] = str(membership.tenant_id)
        messages.success(request, _("Welcome to %(tenant)s.") % {"tenant": membership.tenant.name})
        if membership.role in ("tenant_admin", "agent"):
            return redirect(_overview(membership.tenant_id))
        return render(request, self.template_name, {"mode": "accepted", "accepted": membership})

    def _page(self, request, *, token: str, form, status: int = 200, error: str | None = None):
        """The page for this token: invalid; a new account's form; "sign in first"; "signed in
        as another account"; or the one-click join of the signed-in invitee."""
        context = {"token": token, "error": error}
        try:
            invitation = selectors.invitation_by_token(token=token)
        except APIError:
            context["mode"] = "invalid"
            return render(request, self.template_name, context, status=400 if status == 200 else status)
        account = selectors.invitation_account(invitation=invitation)
        context["invitation"] = invitation
        if account is None:
            context.update(mode="new", form=form or InvitationAcceptForm(initial={"token": token}))
        elif not request.user.is_authenticated:
            here = f"{reverse('dashboard:invitation-accept')}?{urlencode({'token': token})}"
            context.update(
                mode="sign_in", login_url=f"{reverse('dashboard:login')}?{urlencode({'next': here})}"
            )
        elif request.user.pk != account.pk:
            context["mode"] = "other_account"
        else:
            context.update(mode="join", form=form or InvitationJoinForm(initial={"token": token}))
        return render(request, self.template_name, context, status=status)


# --- Members and invitations (tenant admins) --------------------------------------------------


class MembersView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/members.html"
    capability = Capability.MANAGE_MEMBERS
    nav = "dashboard:members"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        context["members"] = paginate(self.request, tenant_selectors.member_list(tenant=tenant))
        context["invitations"] = selectors.invitation_unaccepted_list(tenant=tenant)
        context["invitation_form"] = kwargs.get("invitation_form") or InvitationForm()
        context["role_form"] = MemberRoleForm()
        return context

    def post(self, request, tenant_id):
        """Create an invitation. The page answers directly (no redirect) so that the link,
        whose token is stored only as a hash, is shown once and never kept."""
        form = InvitationForm(request.POST)
        if form.is_valid():
            try:
                invitation, token = services.invitation_create(
                    tenant=request.tenant,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by=request.user,
                    base_url=link_base(request),
                    language=translation.get_language(),
                )
            except APIError as error:
                form.add_error("email", _error_text(error))
            else:
                link = request.build_absolute_uri(reverse("dashboard:invitation-accept") + f"?token={token}")
                messages.success(
                    request, _("Invitation created for %(email)s.") % {"email": invitation.email}
                )
                return self.render_to_response(
                    self.get_context_data(new_invitation=invitation, new_invitation_link=link)
                )
        return self.render_to_response(self.get_context_data(invitation_form=form), status=400)


def _error_text(error: APIError) -> str:
    codes = {
        "duplicate": _("This person is already a member, or already has a pending invitation."),
        "last_tenant_admin": _("A tenant must keep at least one tenant admin; promote someone else first."),
    }
    return codes.get(error.error_code, str(error.detail))


class MemberRoleView(TenantDashboardMixin, View):
    capability = Capability.MANAGE_MEMBERS
    http_method_names = ["post"]

    def post(self, request, tenant_id, member_id):
        membership = tenant_selectors.member_get(tenant=request.tenant, member_id=member_id)
        form = MemberRoleForm(request.POST)
        if "remove" in request.POST:
            try:
                tenant_services.membership_delete(membership=membership)
            except APIError as error:
                messages.error(request, _error_text(error))
            else:
                messages.success(request, _("%(email)s was removed.") % {"email": membership.user.email})
        elif not form.is_valid():
            messages.error(request, _("Choose a valid role."))
        else:
            try:
                tenant_services.membership_set_role(membership=membership, role=form.cleaned_data["role"])
            except APIError as error:
                messages.error(request, _error_text(error))
            else:
                messages.success(
                    request, _("%(email)s's role was changed.") % {"email": membership.user.email}
                )
        return redirect("dashboard:members", tenant_id=request.tenant.pk)


class InvitationRevokeView(TenantDashboardMixin, View):
    capability = Capability.MANAGE_MEMBERS
    http_method_names = ["post"]

    def post(self, request, tenant_id, invitation_id):
        invitation = selectors.invitation_get(tenant=request.tenant, invitation_id=invitation_id)
        services.invitation_revoke(invitation=invitation)
        messages.success(
            request, _("The invitation for %(email)s was revoked.") % {"email": invitation.email}
        )
        return redirect("dashboard:members", tenant_id=request.tenant.pk)
