"""Dashboard pages of web sources, for tenant admins (the capability the API asks): the sources
with their last sync, adding one, a source's settings, pages and crawl runs, and what one run did
with each page (a failed fetch says why). Thin: validate, call a service or selector, answer."""

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from sources import selectors, services
from sources.forms import WebSourceForm
from tenants.dashboard import TenantDashboardMixin
from tenants.errors import Conflict
from tenants.roles import Capability

NAV = "dashboard:web-sources"
RUNS_SHOWN = 20
PAGES_SHOWN = 500


class WebSourceListView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/web_sources.html"
    capability = Capability.MANAGE_DOCUMENTS
    nav = NAV

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sources"] = list(selectors.web_source_list(tenant=self.request.tenant))
        return context


class WebSourceCreateView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/web_source.html"
    capability = Capability.MANAGE_DOCUMENTS
    nav = NAV

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["form"] = kwargs.get("form") or WebSourceForm(tenant=self.request.tenant)
        return context

    def post(self, request, tenant_id):
        form = WebSourceForm(request.POST, tenant=request.tenant)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        source = services.web_source_create(tenant=request.tenant, **form.fields_for_model)
        messages.success(request, _("The web source was added; its first sync is under way."))
        return redirect("dashboard:web-source", tenant_id=request.tenant.pk, source_id=source.pk)


class WebSourceDetailView(TenantDashboardMixin, TemplateView):
    """One source: its settings, its crawl runs (progress and counts) and its pages."""

    template_name = "dashboard/web_source.html"
    capability = Capability.MANAGE_DOCUMENTS
    nav = NAV

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        source = kwargs.get("source") or selectors.web_source_get(
            tenant=tenant, source_id=kwargs["source_id"]
        )
        runs = list(selectors.crawl_run_list(tenant=tenant, source=source)[:RUNS_SHOWN])
        context.update(
            source=source,
            form=kwargs.get("form") or WebSourceForm(tenant=tenant, source=source),
            runs=runs,
            running=any(run.status in ("queued", "running") for run in runs),
            pages=list(selectors.web_page_list(tenant=tenant, source=source)[:PAGES_SHOWN]),
        )
        return context

    def post(self, request, tenant_id, source_id):
        source = selectors.web_source_get(tenant=request.tenant, source_id=source_id)
        form = WebSourceForm(request.POST, tenant=request.tenant, source=source)
        if not form.is_valid():
            return self.render_to_response(
                self.get_context_data(source=source, form=form, source_id=source_id), status=400
            )
        services.web_source_update(source=source, **form.fields_for_model)
        messages.success(request, _("The web source was saved; the next sync follows the new settings."))
        return redirect("dashboard:web-source", tenant_id=request.tenant.pk, source_id=source.pk)


class WebSourceSyncView(TenantDashboardMixin, View):
    capability = Capability.MANAGE_DOCUMENTS

    def post(self, request, tenant_id, source_id):
        source = selectors.web_source_get(tenant=request.tenant, source_id=source_id)
        try:
            services.web_source_sync(source=source)
        except Conflict:
            messages.warning(request, _("A sync of this source is already queued or running."))
        else:
            messages.success(request, _("The sync is queued."))
        return redirect("dashboard:web-source", tenant_id=request.tenant.pk, source_id=source.pk)


class WebSourceDeleteView(TenantDashboardMixin, View):
    capability = Capability.MANAGE_DOCUMENTS

    def post(self, request, tenant_id, source_id):
        source = selectors.web_source_get(tenant=request.tenant, source_id=source_id)
        services.web_source_delete(source=source)
        messages.success(request, _("The web source and its pages' documents were deleted."))
        return redirect("dashboard:web-sources", tenant_id=request.tenant.pk)


class CrawlRunView(TenantDashboardMixin, TemplateView):
    """What one crawl run did with each page, and why a page failed or was skipped."""

    template_name = "dashboard/web_source_run.html"
    capability = Capability.MANAGE_DOCUMENTS
    nav = NAV

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        source = selectors.web_source_get(tenant=tenant, source_id=kwargs["source_id"])
        run = selectors.crawl_run_get(tenant=tenant, source=source, run_id=kwargs["run_id"])
        context.update(
            source=source, run=run, fetches=list(selectors.page_fetch_list(tenant=tenant, run=run))
        )
        return context
