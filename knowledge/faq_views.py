"""Dashboard pages of curated answers (FAQ pairs): the list with search and pagination, add,
edit, delete, CSV import with its row-by-row report, and the CSV export. Staff read, tenant
admins write (the capabilities of knowledge/faq_api.py). Thin: validate, call a service or a
selector, answer."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from knowledge import faq_selectors, faq_services
from knowledge.forms import FaqFilterForm, FaqForm, FaqImportForm
from tenants.dashboard import TenantDashboardMixin, paginate, query_without_page
from tenants.errors import APIError, PayloadTooLarge
from tenants.roles import Capability

# Room for the multipart envelope around the file when comparing Content-Length to the limit.
_MULTIPART_OVERHEAD = 64 * 1024
IMPORT_STATUS_LABELS = {
    "created": gettext_lazy("Created"),
    "updated": gettext_lazy("Updated"),
    "refused": gettext_lazy("Refused"),
}


def import_error_text(error: APIError) -> str:
    """A sentence for a person for a file refused as a whole (the service's own sentence when it
    wrote one for people, already in their language)."""
    if error.error_code == "payload_too_large" and str(error.detail) == error.default_detail:
        return _("The file is too large (at most %(size)d MB).") % {
            "size": faq_services.MAX_IMPORT_BYTES // (1024 * 1024)
        }
    return str(error.detail)


class FaqListView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/faqs.html"
    capability = Capability.READ_KNOWLEDGE
    nav = "dashboard:faqs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filters = FaqFilterForm(self.request.GET or None)
        chosen = filters.filters()
        page = paginate(self.request, faq_selectors.faq_list(tenant=self.request.tenant, **chosen))
        context.update(
            page=page,
            filters=filters,
            filtered=chosen["search"] is not None or chosen["enabled"] is not None,
            query=query_without_page(self.request),
            can_manage=self.can(Capability.MANAGE_DOCUMENTS),
            can_see_unanswered=self.can(Capability.VIEW_USAGE),
        )
        return context


class FaqCreateView(TenantDashboardMixin, TemplateView):
    """A new curated answer; `?question=` prefills it (the unanswered questions' link)."""

    template_name = "dashboard/faq_form.html"
    capability = Capability.MANAGE_DOCUMENTS
    nav = "dashboard:faqs"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        if form is None:
            question = " ".join(self.request.GET.get("question", "").split())[
                : faq_services.MAX_QUESTION_LENGTH
            ]
            form = FaqForm(initial={"question": question, "enabled": True})
        context.update(form=form, faq=None, can_edit=True)
        return context

    def post(self, request, tenant_id):
        form = FaqForm(request.POST)
        if form.is_valid():
            try:
                faq = faq_services.faq_create(tenant=request.tenant, **form.cleaned_data)
            except APIError as error:
                form.add_error("question", str(error.detail))
            else:
                messages.success(
                    request, _("The curated answer “%(question)s” was added.") % {"question": faq.question}
                )
                return redirect("dashboard:faqs", tenant_id=request.tenant.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class FaqEditView(TenantDashboardMixin, TemplateView):
    """One curated answer: staff read it, tenant admins change it."""

    template_name = "dashboard/faq_form.html"
    capabilities = {"get": Capability.READ_KNOWLEDGE, "post": Capability.MANAGE_DOCUMENTS}
    capability = Capability.READ_KNOWLEDGE
    nav = "dashboard:faqs"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        faq = faq_selectors.faq_get(tenant=self.request.tenant, faq_id=self.kwargs["faq_id"])
        can_edit = self.can(Capability.MANAGE_DOCUMENTS)
        form = form or FaqForm(initial=FaqForm.initial_for(faq))
        if not can_edit:
            for field in form.fields.values():
                field.disabled = True
        context.update(form=form, faq=faq, can_edit=can_edit)
        return context

    def post(self, request, tenant_id, faq_id):
        faq = faq_selectors.faq_get(tenant=request.tenant, faq_id=faq_id)
        form = FaqForm(request.POST)
        if form.is_valid():
            try:
                faq_services.faq_update(faq=faq, data=form.cleaned_data)
            except APIError as error:
                form.add_error("question", str(error.detail))
            else:
                messages.success(
                    request, _("The curated answer “%(question)s” was saved.") % {"question": faq.question}
                )
                return redirect("dashboard:faqs", tenant_id=request.tenant.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class FaqDeleteView(TenantDashboardMixin, View):
    capability = Capability.MANAGE_DOCUMENTS
    http_method_names = ["post"]

    def post(self, request, tenant_id, faq_id):
        faq = faq_selectors.faq_get(tenant=request.tenant, faq_id=faq_id)
        faq_services.faq_delete(faq=faq)
        messages.success(
            request, _("The curated answer “%(question)s” was deleted.") % {"question": faq.question}
        )
        return redirect("dashboard:faqs", tenant_id=request.tenant.pk)


class FaqImportView(TenantDashboardMixin, TemplateView):
    """Upload a CSV; the page answers with what became of each row (created, updated, refused
    and why), or why the whole file was refused."""

    template_name = "dashboard/faq_import.html"
    capability = Capability.MANAGE_DOCUMENTS
    nav = "dashboard:faqs"

    def get_context_data(self, form=None, report=None, file_error="", **kwargs):
        context = super().get_context_data(**kwargs)
        if report is not None:
            for row in report["rows"]:
                row["status_label"] = IMPORT_STATUS_LABELS[row["status"]]
        context.update(form=form or FaqImportForm(), report=report, file_error=file_error)
        return context

    def post(self, request, tenant_id):
        # Refuse an oversized body from its declared length, before the file is read.
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > faq_services.MAX_IMPORT_BYTES + _MULTIPART_OVERHEAD:
            return self._refused(FaqImportForm(), import_error_text(PayloadTooLarge()), 413)
        form = FaqImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        upload = form.cleaned_data["file"]
        try:
            if upload.size > faq_services.MAX_IMPORT_BYTES:
                raise PayloadTooLarge()
            text = faq_services.decode_import(upload.read())
            report = faq_services.faq_import(tenant=request.tenant, text=text)
        except APIError as error:
            return self._refused(form, import_error_text(error), error.status_code)
        return self.render_to_response(self.get_context_data(report=report.as_dict()))

    def _refused(self, form, message: str, status: int):
        return self.render_to_response(self.get_context_data(form=form, file_error=message), status=status)


class FaqExportView(TenantDashboardMixin, View):
    """The curated answers as CSV (UTF-8 with BOM), in the columns the import reads."""

    capability = Capability.READ_KNOWLEDGE

    def get(self, request, tenant_id):
        faqs = faq_selectors.faq_list(tenant=request.tenant).order_by("id")
        response = HttpResponse(faq_services.faq_export_csv(faqs), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="curated-answers.csv"'
        return response
