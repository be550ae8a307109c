"""The isolation core of the server-rendered dashboard: every page under
`/dashboard/t/<tenant_id>/…` derives from `TenantDashboardMixin`, which

1. requires a session sign-in (else a redirect to the sign-in page with `?next=`);
2. resolves the URL's tenant against the user's memberships with the REST API's own rule
   (`tenants.access.resolve_url_tenant`): another tenant's id or none → 404, a suspended
   tenant → 403 page, platform admins reach every tenant as `platform_admin`;
3. sets `request.tenant`, `request.role` and `request.membership`;
4. checks the view's capability against the role matrix (`tenants.roles.MATRIX`) → 403 page;
5. turns the selectors' `NotFound` (another tenant's object id) into a 404.

Views then read and write only through the app selectors and services, passing
`request.tenant`. Nothing else in the dashboard decides who sees which tenant.
"""

from dataclasses import dataclass

from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tenants import rls
from tenants.access import TenantAccess, resolve_url_tenant
from tenants.audit import hidden_operators_for
from tenants.errors import APIError, TenantSuspended
from tenants.middleware import SESSION_TENANT_KEY
from tenants.roles import PLATFORM_ADMIN, Capability, Role, role_can
from tenants.selectors import membership_for, staff_memberships

LOGIN_URL_NAME = "dashboard:login"
PAGE_SIZE = 25


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: str
    capability: Capability
    icon: str


# The sidebar, in order. Each entry is shown only to roles that may open it.
NAVIGATION = (
    NavItem("dashboard:overview", gettext_lazy("Overview"), Capability.READ_TENANT, "home"),
    NavItem("dashboard:documents", gettext_lazy("Documents"), Capability.READ_KNOWLEDGE, "file"),
    NavItem("dashboard:knowledge-search", gettext_lazy("Search tester"), Capability.READ_KNOWLEDGE, "search"),
    # The capability the web sources API (sources.api.WebSourceViewSet) asks for: tenant admins.
    NavItem("dashboard:web-sources", gettext_lazy("Web sources"), Capability.MANAGE_DOCUMENTS, "file"),
    NavItem("dashboard:faqs", gettext_lazy("Curated answers"), Capability.READ_KNOWLEDGE, "faq"),
    NavItem("dashboard:conversations", gettext_lazy("Conversations"), Capability.READ_TENANT, "chat"),
    NavItem("dashboard:live-chat", gettext_lazy("Live chat"), Capability.HANDLE_CONVERSATIONS, "bolt"),
    NavItem("dashboard:inbox", gettext_lazy("Agent inbox"), Capability.HANDLE_CONVERSATIONS, "inbox"),
    NavItem("dashboard:members", gettext_lazy("Members"), Capability.MANAGE_MEMBERS, "users"),
    # The capability the widget API (widgets.api.WidgetViewSet) asks for: tenant admins.
    NavItem("dashboard:widgets", gettext_lazy("Website widget"), Capability.UPDATE_TENANT, "widget"),
    NavItem("dashboard:line-channels", gettext_lazy("LINE channels"), Capability.UPDATE_TENANT, "chat"),
    NavItem("dashboard:settings", gettext_lazy("Settings"), Capability.UPDATE_TENANT, "gear"),
    NavItem("dashboard:usage", gettext_lazy("Usage"), Capability.VIEW_USAGE, "chart"),
    NavItem("dashboard:analytics", gettext_lazy("Analytics"), Capability.VIEW_USAGE, "chart"),
    NavItem("dashboard:unanswered", gettext_lazy("Unanswered questions"), Capability.VIEW_USAGE, "question"),
)


def resolve_dashboard_tenant(request, tenant_id) -> TenantAccess:
    """The access the signed-in user has in the URL's tenant.

    Unlike the API, whose token names one tenant, a session may open any tenant the user is a
    member of: the URL's tenant is looked up among the user's own memberships, then the API's
    rule decides (`resolve_url_tenant`), so both interfaces answer alike.
    """
    membership = membership_for(user=request.user, tenant_id=tenant_id)
    return resolve_url_tenant(
        user=request.user, access=TenantAccess.through(request.user, membership), tenant_id=tenant_id
    )


def forbidden(request, message: str | None = None, status: int = 403):
    return render(
        request,
        "dashboard/forbidden.html",
        {"message": message or _("Your role does not allow you to open this page.")},
        status=status,
    )


class TenantDashboardMixin:
    """Session sign-in, tenant resolution and the capability check, in that order, before any
    handler runs. Set `capability` for every method or `capabilities = {"post": …}` per method."""

    capability: Capability | None = Capability.READ_TENANT
    capabilities: dict[str, Capability] = {}
    # The sidebar entry to highlight.
    nav: str = ""

    def capability_for(self, method: str) -> Capability | None:
        return self.capabilities.get(method.lower(), self.capability)

    def dispatch(self, request, *args, **kwargs):
        # The row-level-security scope entered once the tenant is known ends with the page.
        with rls.unscoped():
            return self._dispatch(request, *args, **kwargs)

    def _dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse(LOGIN_URL_NAME))
        try:
            access = resolve_dashboard_tenant(request, kwargs["tenant_id"])
        except TenantSuspended:
            return forbidden(request, _("This tenant is suspended. Contact the platform operator."))
        except APIError as error:
            if error.status_code == 404:
                raise Http404(_("No such tenant.")) from error
            return forbidden(request)
        access.set_on(request)
        # Staff pages only: the end-user role (and any future non-staff role) stops here.
        capability = self.capability_for(request.method)
        if not role_can(request.role, Capability.READ_TENANT) or (
            capability is not None and not role_can(request.role, capability)
        ):
            return forbidden(request)
        # The header's links and `/dashboard/` follow the tenant last opened.
        if request.session.get(SESSION_TENANT_KEY) != str(request.tenant.pk):
            request.session[SESSION_TENANT_KEY] = str(request.tenant.pk)
        # From here on the database itself shows nothing of another tenant (tenants/rls.py).
        rls.enter(request.tenant.pk, request.user.pk)
        try:
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()  # inside the scope: templates evaluate lazy querysets
        except APIError as error:
            # A selector's NotFound: another tenant's object id is as absent as a missing one.
            if error.status_code == 404:
                raise Http404(str(error.detail)) from error
            if error.status_code == 403:
                return forbidden(request, str(error.detail))
            raise
        # Tenant data (and the live pages' socket tokens) stay out of shared and browser caches.
        add_never_cache_headers(response)
        return response

    def can(self, capability: Capability) -> bool:
        return role_can(self.request.role, capability)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(dashboard_context(self.request, active=self.nav))
        return context


def dashboard_context(request, *, active: str = "") -> dict:
    """What the layout needs: the tenant, the role's sidebar and the tenant switcher."""
    tenant = request.tenant
    role = request.role
    navigation = [
        {
            "url": reverse(item.url_name, kwargs={"tenant_id": tenant.pk}),
            "label": item.label,
            "icon": item.icon,
            "active": item.url_name == active,
        }
        for item in NAVIGATION
        if role_can(role, item.capability)
    ]
    switchable = [m for m in staff_memberships(user=request.user) if m.tenant_id != tenant.pk]
    return {
        "tenant": tenant,
        "role": role,
        "role_label": role_label(role),
        "navigation": navigation,
        "switchable_memberships": switchable,
        "is_platform_admin": role == PLATFORM_ADMIN,
        # Operators the viewer may not see by email (looked up only by a page that names people).
        "hidden_operator_ids": SimpleLazyObject(lambda: hidden_operators_for(request)),
        "capabilities": {capability.value: role_can(role, capability) for capability in Capability},
    }


def role_label(role: str | None) -> str:
    labels = {
        PLATFORM_ADMIN: _("Platform admin"),
        Role.TENANT_ADMIN: _("Tenant admin"),
        Role.AGENT: _("Agent"),
        Role.END_USER: _("End user"),
    }
    return labels.get(role, "")


def paginate(request, queryset, *, per_page: int = PAGE_SIZE):
    """One page of a list; a page number out of range shows the last page."""
    paginator = Paginator(queryset, per_page)
    return paginator.get_page(request.GET.get("page"))


def query_without_page(request) -> str:
    """The current filters as a query string, for pagination links."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
