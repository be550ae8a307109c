"""Dashboard pages of the knowledge base: documents (upload, status, delete, reindex), the
search tester and the retrieval settings. Thin: validate, call a service or selector, answer."""

import logging

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from knowledge import retrieval, selectors, services
from knowledge.forms import STAGE_LABELS, STATUS_LABELS, RetrievalSettingsForm, SearchTesterForm
from knowledge.ingestion import IN_PROGRESS
from knowledge.models import Document
from tenants import services as tenant_services
from tenants.dashboard import TenantDashboardMixin, paginate, query_without_page
from tenants.errors import APIError, dependency_error
from tenants.roles import Capability
from tenants.throttling import TenantUploadThrottle, throttle_wait

logger = logging.getLogger(__name__)

MAX_FILES_PER_UPLOAD = 20
# Room for the multipart envelope around the files when comparing Content-Length to the limit.
_MULTIPART_OVERHEAD = 64 * 1024


def ingestion_refusal(request) -> str | None:
    """Why the tenant may not queue one more upload or reindex now, or None: the dashboard counts
    against the same per-tenant budget as the API (tenants/throttling.py)."""
    try:
        wait = throttle_wait([TenantUploadThrottle()], request)
    except Exception as error:
        if dependency_error(error) is None:
            raise
        return _("The service is unavailable right now; try again shortly.")
    if wait is None:
        return None
    return _("Too many uploads or reindexing requests; try again in %(seconds)d seconds.") % {"seconds": wait}


def upload_error_text(error: APIError) -> str:
    """A sentence for a person, in their language, for each way an upload is refused."""
    details = error.details or {}
    if error.error_code == "payload_too_large":
        limit = details.get("limit_bytes")
        if limit:
            return _("The file is too large: this plan accepts files up to %(limit)s MB.") % {
                "limit": f"{limit / 1024 / 1024:.1f}"
            }
        return _("The file is too large.")
    if error.error_code == "unsupported_file_type":
        return _(
            "This type of file is not supported. Upload a PDF, DOCX, TXT, Markdown or HTML file, or a "
            "PNG or JPEG picture of a page."
        )
    if error.error_code == "duplicate":
        if details.get("title"):
            return _("This file is already uploaded as “%(title)s”.") % {"title": details["title"]}
        return _("This file is already uploaded.")
    if error.error_code == "quota_exceeded":
        if details.get("quota") == "documents":
            return _("Your plan holds up to %(limit)s documents; delete one or upgrade.") % {
                "limit": details.get("limit")
            }
        return _("This upload would exceed your plan's storage; delete documents or upgrade.")
    if error.error_code == "empty_file":
        return _("The file is empty.")
    if error.error_code == "service_unavailable":
        return _("The knowledge index is unavailable right now; try again shortly.")
    return str(error.detail)


def document_state(document: Document) -> dict:
    return {
        "id": document.pk,
        "status": document.status,
        "status_label": str(STATUS_LABELS.get(document.status, document.status)),
        "stage": document.stage,
        "stage_label": str(STAGE_LABELS.get(document.stage, document.stage)),
        "progress": round(document.progress * 100),
        "error": document.error,
        "chunk_count": document.chunk_count,
    }


class DocumentListView(TenantDashboardMixin, TemplateView):
    """The documents, with an upload form for those who may upload (POST, several files)."""

    template_name = "dashboard/documents.html"
    capabilities = {"get": Capability.READ_KNOWLEDGE, "post": Capability.MANAGE_DOCUMENTS}
    capability = Capability.READ_KNOWLEDGE
    nav = "dashboard:documents"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        status = self.request.GET.get("status") or None
        if status not in Document.Status.values:
            status = None
        search = self.request.GET.get("search", "").strip()
        page = paginate(
            self.request,
            selectors.document_list(tenant=self.request.tenant, status=status, search=search or None),
        )
        for document in page:
            document.state = document_state(document)
        context.update(
            page=page,
            status=status or "",
            search=search,
            statuses=list(STATUS_LABELS.items()),
            query=query_without_page(self.request),
            any_in_progress=any(document.status in IN_PROGRESS for document in page),
            can_manage=self.can(Capability.MANAGE_DOCUMENTS),
            max_upload_bytes=self.request.tenant.plan.max_upload_bytes,
        )
        return context

    def post(self, request, tenant_id):
        # Refuse an oversized body from its declared length, before Django reads it to disk.
        limit = request.tenant.plan.max_upload_bytes
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if (
            limit
            and declared.isdigit()
            and int(declared) > limit * MAX_FILES_PER_UPLOAD + _MULTIPART_OVERHEAD
        ):
            messages.error(request, _("The upload is too large; send fewer or smaller files at a time."))
            return redirect("dashboard:documents", tenant_id=request.tenant.pk)
        files = request.FILES.getlist("files")
        if not files:
            messages.error(request, _("Choose at least one file to upload."))
        elif len(files) > MAX_FILES_PER_UPLOAD:
            messages.error(
                request, _("Upload at most %(count)d files at a time.") % {"count": MAX_FILES_PER_UPLOAD}
            )
        else:
            for upload in files:
                refusal = ingestion_refusal(request)
                if refusal:
                    messages.error(request, f"{upload.name}: {refusal}")
                    continue
                try:
                    services.document_upload(tenant=request.tenant, uploaded_by=request.user, upload=upload)
                except APIError as error:
                    messages.error(request, f"{upload.name}: {upload_error_text(error)}")
                else:
                    messages.success(
                        request, _("%(name)s: uploaded; it is being indexed.") % {"name": upload.name}
                    )
        return redirect("dashboard:documents", tenant_id=request.tenant.pk)


class DocumentStatusView(TenantDashboardMixin, View):
    """JSON for the list's poll: the state of the documents it shows (`?ids=1,2`)."""

    capability = Capability.READ_KNOWLEDGE

    def get(self, request, tenant_id):
        ids = [part for part in request.GET.get("ids", "").split(",") if part.strip().isdigit()][:100]
        documents = selectors.document_list(tenant=request.tenant).filter(pk__in=ids)
        states = [document_state(document) for document in documents]
        return JsonResponse(
            {"documents": states, "in_progress": any(state["status"] in IN_PROGRESS for state in states)}
        )


class DocumentDeleteView(TenantDashboardMixin, View):
    capability = Capability.MANAGE_DOCUMENTS
    http_method_names = ["post"]

    def post(self, request, tenant_id, document_id):
        document = selectors.document_get(tenant=request.tenant, document_id=document_id)
        try:
            services.document_delete(document=document)
        except APIError:
            messages.error(request, _("The knowledge index is unavailable right now; nothing was deleted."))
        else:
            messages.success(request, _("“%(title)s” was deleted.") % {"title": document.title})
        return redirect("dashboard:documents", tenant_id=request.tenant.pk)


class DocumentReindexView(TenantDashboardMixin, View):
    capability = Capability.MANAGE_DOCUMENTS
    http_method_names = ["post"]

    def post(self, request, tenant_id, document_id):
        document = selectors.document_get(tenant=request.tenant, document_id=document_id)
        refusal = ingestion_refusal(request)
        if refusal:
            messages.error(request, refusal)
            return redirect("dashboard:documents", tenant_id=request.tenant.pk)
        already = document.status in IN_PROGRESS
        services.document_reindex(document=document)
        if already:
            messages.info(request, _("“%(title)s” is already being indexed.") % {"title": document.title})
        else:
            messages.success(request, _("“%(title)s” is being indexed again.") % {"title": document.title})
        return redirect("dashboard:documents", tenant_id=request.tenant.pk)


class SearchTesterView(TenantDashboardMixin, TemplateView):
    """What each retrieval mode finds for one query, side by side."""

    template_name = "dashboard/search.html"
    capability = Capability.READ_KNOWLEDGE
    nav = "dashboard:knowledge-search"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = SearchTesterForm(self.request.GET or None)
        context["form"] = form
        if form.is_valid():
            columns = []
            try:
                for mode in retrieval.MODES:
                    results, timings = retrieval.search(
                        tenant=self.request.tenant,
                        query=form.cleaned_data["query"],
                        mode=mode,
                        top_k=form.cleaned_data["top_k"],
                    )
                    columns.append({"mode": mode, "results": results, "took_ms": round(timings["total_ms"])})
            except APIError:
                logger.warning("search tester: index unavailable for tenant %s", self.request.tenant.pk)
                messages.error(
                    self.request, _("The knowledge index is unavailable right now; try again shortly.")
                )
                columns = []
            context["columns"] = columns
        return context


class RetrievalSettingsView(TenantDashboardMixin, TemplateView):
    """The tenant's `settings["retrieval"]`: tenant admins write, agents read."""

    template_name = "dashboard/settings_retrieval.html"
    capability = Capability.UPDATE_TENANT  # tenant admins only, like the assistant settings page
    nav = "dashboard:settings"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        current = retrieval.RetrievalSettings.for_tenant(self.request.tenant)
        form = kwargs.get("form") or RetrievalSettingsForm(initial=current.__dict__)
        if not self.can(Capability.UPDATE_TENANT):
            for field in form.fields.values():
                field.disabled = True
        context.update(form=form, can_edit=self.can(Capability.UPDATE_TENANT), tab="retrieval")
        return context

    def post(self, request, tenant_id):
        form = RetrievalSettingsForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        tenant_services.tenant_update(tenant=request.tenant, settings={"retrieval": form.as_settings()})
        messages.success(request, _("The retrieval settings were saved."))
        return redirect("dashboard:settings-retrieval", tenant_id=request.tenant.pk)
