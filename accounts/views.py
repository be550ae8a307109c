"""Dashboard pages of accounts: sign-in and out, password, tenant choice, invitations, members.
Thin: validate a form, call a service or selector, answer with a page or a redirect."""

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.generic import TemplateView
from rest_framework import exceptions as drf_exceptions

from accounts import services
from accounts.forms import InvitationAcceptForm, InvitationForm, MemberRoleForm, SignInForm
from accounts.models import Invitation
from tenants import selectors as tenant_selectors
from tenants import services as tenant_services
from tenants.dashboard import TenantDashboardMixin, paginate, query_without_page, staff_memberships
from tenants.errors import APIError, TenantSuspended
from tenants.middleware import SESSION_TENANT_KEY
from tenants.roles import Capability


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
    memberships = staff_memberships(request.user)
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
            sign_in = services.user_login(email=email, password=password)
        except drf_exceptions.Throttled as throttled:
            minutes = max(1, round((throttled.wait or 60) / 60))
            form.add_error(
                None,
                ngettext(
                    "Too many failed sign-ins for this email. Try again in %(minutes)d minute.",
                    "Too many failed sign-ins for this email. Try again in %(minutes)d minutes.",
                    minutes,
                )
                % {"minutes": minutes},
            )
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
        memberships = staff_memberships(user)
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
        context["memberships"] = staff_memberships(self.request.user)
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
        messages.success(self.request, _("Your password has been changed."))
        return super().form_valid(form)


class InvitationAcceptView(View):
    """Open to anyone holding the token: a new person chooses a password, an existing account
    proves itself with its password."""

    template_name = "dashboard/invitation_accept.html"

    def get(self, request):
        form = InvitationAcceptForm(initial={"token": request.GET.get("token", "")})
        return self._page(request, form)

    def post(self, request):
        form = InvitationAcceptForm(request.POST)
        if not form.is_valid():
            return self._page(request, form, status=400)
        try:
            user, membership = services.invitation_accept(
                token=form.cleaned_data["token"],
                password=form.cleaned_data["password"],
                name=form.cleaned_data["name"],
            )
        except drf_exceptions.ValidationError as error:
            for message in error.detail.get("password", []) if isinstance(error.detail, dict) else []:
                form.add_error("password", str(message))
            return self._page(request, form, status=400)
        except drf_exceptions.AuthenticationFailed:
            form.add_error(
                "password",
                _("An account with this email exists; enter its password to accept the invitation."),
            )
            return self._page(request, form, status=400)
        except TenantSuspended:
            form.add_error(None, _("This tenant is suspended. Contact the platform operator."))
            return self._page(request, form, status=403)
        except APIError:
            form.add_error(None, _("This invitation is invalid, used or expired."))
            return self._page(request, form, status=400)
        login(request, user)
        request.session[SESSION_TENANT_KEY] = str(membership.tenant_id)
        messages.success(request, _("Welcome to %(tenant)s.") % {"tenant": membership.tenant.name})
        if membership.role in ("tenant_admin", "agent"):
            return redirect(_overview(membership.tenant_id))
        return self._page(request, None, accepted=membership)

    def _page(self, request, form, status: int = 200, accepted=None):
        return render(request, self.template_name, {"form": form, "accepted": accepted}, status=status)


# --- Members and invitations (tenant admins) --------------------------------------------------


class MembersView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/members.html"
    capability = Capability.MANAGE_MEMBERS
    nav = "dashboard:members"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        context["members"] = paginate(self.request, tenant_selectors.member_list(tenant=tenant))
        context["invitations"] = (
            Invitation.objects.for_tenant(tenant)
            .filter(accepted_at__isnull=True)
            .select_related("invited_by")
        )
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
        membership = tenant_selectors.member_list(tenant=request.tenant).filter(pk=member_id).first()
        if membership is None:
            raise Http404(_("No such member."))
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
        invitation = Invitation.objects.for_tenant(request.tenant).filter(pk=invitation_id).first()
        if invitation is None:
            raise Http404(_("No such invitation."))
        services.invitation_revoke(invitation=invitation)
        messages.success(
            request, _("The invitation for %(email)s was revoked.") % {"email": invitation.email}
        )
        return redirect("dashboard:members", tenant_id=request.tenant.pk)
