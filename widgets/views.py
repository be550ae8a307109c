"""`/widget.js`: the embeddable widget, served by the platform itself (no CDN); `/widget/demo/?key=pk_…`:
a plain page that embeds one widget, to try it without a website of one's own; and the dashboard's
widget pages (list, create, edit, snippet, identity secret, live preview, delete)."""

import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

from csp.constants import SELF
from csp.decorators import csp_replace
from django.conf import settings
from django.contrib import messages
from django.contrib.staticfiles import finders
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView

from tenants.dashboard import TenantDashboardMixin, paginate
from tenants.roles import Capability
from widgets import limits, selectors, services
from widgets.api import PUBLIC_KEY_PATTERN, embed_snippet
from widgets.forms import LOCALE_CHOICES, PreviewForm, WidgetForm
from widgets.models import Widget
from widgets.origins import normalize_origin

SCRIPT = "widget/widget.js"


@lru_cache(maxsize=1)
def _script() -> bytes:
    found = finders.find(SCRIPT) or str(Path(settings.STATIC_ROOT) / SCRIPT)
    return Path(found).read_bytes()


@require_GET
def widget_script(request):
    response = HttpResponse(
        _script() if not settings.DEBUG else Path(finders.find(SCRIPT)).read_bytes(),
        content_type="text/javascript; charset=utf-8",
    )
    # Short: a new release reaches the enterprises' pages within minutes.
    response["Cache-Control"] = "public, max-age=300"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


# --- The dashboard's widget pages (tenant admins: the capability the widget API uses) ----------


# The session remembers which widget's new identity secret to show on the next view of its page
# (for a few minutes), never the secret: that view reads it from the widget, decrypted, and drops
# the mark. So every write redirects (a reload makes no second widget and rotates nothing again)
# and the secret still appears exactly once, as in the API's answer that made it.
REVEAL_ON_NEXT_VIEW = "widgets:reveal-on-next-view"
REVEAL_WITHIN_SECONDS = 600


class WidgetPageMixin(TenantDashboardMixin):
    capability = Capability.UPDATE_TENANT
    nav = "dashboard:widgets"

    def widget(self) -> Widget:
        # Another tenant's widget id: the selector's NotFound, a 404 (TenantDashboardMixin).
        return selectors.widget_get(tenant=self.request.tenant, widget_id=self.kwargs["widget_id"])

    def to_widget_page(self, widget: Widget, *, new_secret: str | None = None):
        if new_secret:
            self.request.session[REVEAL_ON_NEXT_VIEW] = {"widget": widget.pk, "at": time.time()}
        return redirect("dashboard:widget", tenant_id=self.request.tenant.pk, widget_id=widget.pk)


def preview_url(request, *, greeting: str, locale: str) -> str:
    url = reverse("dashboard:widget-preview", kwargs={"tenant_id": request.tenant.pk})
    return f"{url}?{urlencode({'greeting': greeting, 'locale': locale})}"


class WidgetListView(WidgetPageMixin, TemplateView):
    template_name = "dashboard/widgets.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = paginate(self.request, selectors.widget_list(tenant=self.request.tenant))
        widgets = list(page)
        today = limits.widget_messages_today(widgets=widgets)
        for widget in widgets:
            widget.messages_today = today[widget.pk]
        context.update(page=page, widgets=widgets)
        return context


class WidgetDetailView(WidgetPageMixin, TemplateView):
    """The widget, its snippet, the identity note and secret, the preview, rotate and delete."""

    template_name = "dashboard/widget_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        widget = self.widget()
        request = self.request
        secret = None
        mark = request.session.get(REVEAL_ON_NEXT_VIEW)
        if mark and mark.get("widget") == widget.pk:
            del request.session[REVEAL_ON_NEXT_VIEW]
            if time.time() - mark.get("at", 0) < REVEAL_WITHIN_SECONDS:
                secret = selectors.widget_identity_secret(widget=widget)
        context.update(
            widget=widget,
            identity_secret=secret,
            snippet=embed_snippet(widget, base_url=request.build_absolute_uri("/")),
            preview_url=preview_url(request, greeting=widget.greeting, locale=widget.locale),
            messages_today=limits.widget_messages_today(widgets=[widget])[widget.pk],
            locale_label=dict(LOCALE_CHOICES).get(widget.locale, widget.locale),
        )
        return context


class WidgetFormPageMixin(WidgetPageMixin):
    template_name = "dashboard/widget_form.html"

    def form_context(self, form: WidgetForm, **extra) -> dict:
        greeting = form["greeting"].value() or ""
        locale = form["locale"].value() or Widget.Locale.AUTO
        return self.get_context_data(
            form=form, preview_url=preview_url(self.request, greeting=greeting, locale=locale), **extra
        )


class WidgetCreateView(WidgetFormPageMixin, TemplateView):
    def get(self, request, tenant_id):
        return self.render_to_response(self.form_context(WidgetForm()))

    def post(self, request, tenant_id):
        form = WidgetForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.form_context(form), status=400)
        widget, secret = services.widget_create(tenant=request.tenant, **form.cleaned_data)
        messages.success(request, _("The widget %(name)s was created.") % {"name": widget.name})
        return self.to_widget_page(widget, new_secret=secret)


class WidgetUpdateView(WidgetFormPageMixin, TemplateView):
    def get(self, request, tenant_id, widget_id):
        widget = self.widget()
        return self.render_to_response(self.form_context(WidgetForm.for_widget(widget), widget=widget))

    def post(self, request, tenant_id, widget_id):
        widget = self.widget()
        form = WidgetForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.form_context(form, widget=widget), status=400)
        # A secret comes back when identity verification is turned on for the first time.
        widget, secret = services.widget_update(widget=widget, **form.cleaned_data)
        messages.success(request, _("The widget %(name)s was saved.") % {"name": widget.name})
        return self.to_widget_page(widget, new_secret=secret)


class WidgetRotateSecretView(WidgetPageMixin, View):
    http_method_names = ["post"]

    def post(self, request, tenant_id, widget_id):
        widget, secret = services.widget_rotate_secret(widget=self.widget())
        messages.success(request, _("A new identity secret was made; the old one no longer verifies."))
        return self.to_widget_page(widget, new_secret=secret)


class WidgetDeleteView(WidgetPageMixin, View):
    http_method_names = ["post"]

    def post(self, request, tenant_id, widget_id):
        widget = self.widget()
        services.widget_delete(widget=widget)
        messages.success(request, _("The widget %(name)s was deleted.") % {"name": widget.name})
        return redirect("dashboard:widgets", tenant_id=request.tenant.pk)


# The live preview. widget.js runs for real, in its preview mode (data-preview): it opens no
# visitor session and sends nothing, and shows the greeting and language it is given as a
# visitor would see them. So previewing needs no allowed origin (the dashboard's own origin is
# never added to a widget's list behind the admin's back), creates no visitors and spends none of
# the daily cap. It runs in an iframe of the widget pages so that its fixed launcher and panel sit
# inside a box of the page rather than over the dashboard; the frame is the only page the
# dashboard lets itself frame (same origin only). The greeting and language come from the query,
# so the form's page previews what is being typed before it is saved.
@method_decorator(xframe_options_sameorigin, name="dispatch")
@method_decorator(csp_replace({"frame-ancestors": [SELF]}), name="dispatch")
class WidgetPreviewView(WidgetPageMixin, TemplateView):
    template_name = "dashboard/widget_preview.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = PreviewForm(self.request.GET)
        shown = form.cleaned_data if form.is_valid() else {}
        locale = shown.get("locale") or Widget.Locale.AUTO
        context.update(
            greeting=shown.get("greeting", ""),
            widget_locale="" if locale == Widget.Locale.AUTO else locale,
        )
        return context


@require_GET
def widget_demo(request):
    """The page shows a widget only when that widget allows this very origin (the platform's
    own): the tenant admin chose to have it here, as `seed_demo` does for the demo widget. Any
    other key is a 404, so the page cannot put a tenant's widget where it was not allowed."""
    key = request.GET.get("key", "")
    widget = selectors.widget_by_public_key(public_key=key) if PUBLIC_KEY_PATTERN.match(key) else None
    own_origin = normalize_origin(request.build_absolute_uri("/").rstrip("/"))
    if widget is None or not widget.enabled or own_origin not in widget.allowed_origins:
        raise Http404("No widget to show here.")
    context = {
        "widget": widget,
        "snippet": embed_snippet(widget, base_url=request.build_absolute_uri("/")),
        # From this origin itself, whatever PUBLIC_BASE_URL says: the page's CSP allows 'self'.
        "script_src": request.build_absolute_uri("/widget.js"),
    }
    return render(request, "widgets/demo.html", context)
