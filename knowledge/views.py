"""Dashboard pages of the knowledge base: documents (upload, status, delete, reindex), the
search tester and the retrieval settings. Thin: validate, call a service or selector, answer."""

import logging

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.generic import TemplateView

from knowledge import bulk_upload, retrieval, selectors, services
from knowledge.forms import STAGE_LABELS, STATUS_LABELS, RetrievalSettingsForm, SearchTesterForm
from knowledge.ingestion import IN_PROGRESS
from knowledge.models import Document
from tenants import services as tenant_services
from tenants.dashboard import TenantDashboardMixin, paginate, query_without_page
from tenants.errors import APIError, dependency_error
from tenants.roles import Capability
from tenants.throttling import TenantUploadThrottle, throttle_wait

logger = logging.getLogger(__name__)

# Room for the multipart envelope around the files when comparing Content-Length to the limit.
_MULTIPART_OVERHEAD = 64 * 1024


def ingestion_refusal(request) -> str | None:
    """Why the tenant may not queue one more upload or reindex now, or None: the dashboard counts
    against the same per-tenant budget as the API (tenants/throttling.py)."""
    try:
        wait = throttle_wait([TenantUploadThrottle()], request)
    except APIError as error:
        return upload_error_text(error)
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
    return _archive_error_text(error) or str(error.detail)


def _archive_error_text(error: APIError) -> str | None:
    """The sentences of the bulk upload's own refusals (knowledge/bulk_upload.py)."""
    details = error.details or {}
    texts = {
        "unsafe_path": _("This name points outside the archive's folder; it was not extracted."),
        "nested_archive": _("Archives inside an archive are not opened; add their files instead."),
        "encrypted_entry": _("This file is encrypted in the archive; send it without a password."),
        "compression_ratio": _(
            "This file expands far more than a document does (a ZIP bomb?); it was not extracted."
        ),
        "archive_invalid": _("This archive cannot be read; send a ZIP file."),
        "archive_too_many_entries": _("The archive holds more than %(limit)s entries.")
        % {"limit": details.get("limit")},
        "archive_too_large": _("The archive expands to more than %(limit)s MB.")
        % {"limit": f"{(details.get('limit_bytes') or 0) / 1024 / 1024:.0f}"},
        "too_many_files": _("Send at most %(limit)s files at a time.") % {"limit": details.get("limit")},
        "upload_budget_exceeded": _("This is more than your plan accepts in an hour; send it in parts."),
        "rate_limited": _("Your plan's hourly upload budget is spent; try again in %(minutes)d minutes.")
        % {"minutes": max(1, round((details.get("retry_after_seconds") or 60) / 60))},
    }
    return texts.get(error.error_code)


def outcome_state(outcome: bulk_upload.Outcome) -> dict:
    """One file's outcome for the page: its name, outcome and a sentence in the reader's language."""
    if outcome.outcome == bulk_upload.CREATED:
        text = _("uploaded; it is being indexed.")
    else:
        error = APIError(outcome.message, code=outcome.code, details=outcome.details)
        text = upload_error_text(error)
    return {"filename": outcome.filename, "outcome": outcome.outcome, "text": text}


def document_state(document: Document, positions: dict[int, int] | None = None) -> dict:
    position = (positions or {}).get(document.pk)
    stage_label = str(STAGE_LABELS.get(document.stage, document.stage))
    if position is not None:
        stage_label = _("%(stage)s, number %(position)s in line") % {
            "stage": stage_label,
            "position": position,
        }
    return {
        "id": document.pk,
        "status": document.status,
        "status_label": str(STATUS_LABELS.get(document.status, document.status)),
        "stage": document.stage,
        "stage_label": stage_label,
        "queue_position": position,
        "progress": round(document.progress * 100),
        "error": document.error,
        "chunk_count": document.chunk_count,
    }


def progress_state(progress: selectors.IngestionProgress) -> dict:
    """The tenant's ingestion progress for the page and its poll: the figures, and one line for a
    person ("37 of 400 done · 12 documents/min · about 30 minutes left") in their language."""
    parts = [_("%(done)s of %(total)s done") % {"done": progress.done, "total": progress.total}]
    if progress.failed:
        parts.append(_("%(count)s failed") % {"count": progress.failed})
    if progress.active:
        if progress.rate_per_minute is not None:
            rate = progress.rate_per_minute
            shown = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}".removesuffix(".0")
            parts.append(
                ngettext("%(rate)s document/min", "%(rate)s documents/min", 1 if shown == "1" else 2)
                % {"rate": shown}
            )
        parts.append(time_left_text(progress.seconds_left))
    return {
        "total": progress.total,
        "done": progress.done,
        "failed": progress.failed,
        "remaining": progress.remaining,
        "active": progress.active,
        "rate_per_minute": None if progress.rate_per_minute is None else round(progress.rate_per_minute, 2),
        "seconds_left": progress.seconds_left,
        "text": " · ".join(parts),
    }


def time_left_text(seconds: int | None) -> str:
    if seconds is None:
        return _("calculating the time left…")
    if seconds < 60:
        return _("less than a minute left")
    minutes = round(seconds / 60)
    if minutes < 90:
        return ngettext("about %(count)s minute left", "about %(count)s minutes left", minutes) % {
            "count": minutes
        }
    hours = round(minutes / 60)
    return ngettext("about %(count)s hour left", "about %(count)s hours left", hours) % {"count": hours}


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
        positions = selectors.queue_positions(tenant=self.request.tenant, documents=page)
        for document in page:
            document.state = document_state(document, positions)
        progress = progress_state(selectors.ingestion_progress(tenant=self.request.tenant))
        context.update(
            progress=progress,
            page=page,
            status=status or "",
            search=search,
            statuses=list(STATUS_LABELS.items()),
            query=query_without_page(self.request),
            any_in_progress=any(document.status in IN_PROGRESS for document in page),
            can_manage=self.can(Capability.MANAGE_DOCUMENTS),
            max_upload_bytes=self.request.tenant.plan.max_upload_bytes,
            max_files=settings.BULK_UPLOAD_MAX_FILES,
            # The page's script sends a large selection in batches of this many bytes.
            batch_bytes=max(min(settings.MAX_REQUEST_BODY_BYTES // 2, 32 * 1024 * 1024), 1024 * 1024),
        )
        return context

    def post(self, request, tenant_id):
        """Several files, ZIP archives among them, each with its outcome: as messages on the
        page, or as JSON for the page's script (`Accept: application/json`), which sends a
        large selection (a dropped folder) in batches."""
        wants_json = "application/json" in request.headers.get("Accept", "")
        try:
            self._check_declared_length(request)
            outcomes = bulk_upload.bulk_upload(
                tenant=request.tenant, uploaded_by=request.user, uploads=request.FILES.getlist("files")
            )
        except APIError as error:
            if error.error_code == "validation_error":
                text = _("Choose at least one file to upload.")
            else:
                text = upload_error_text(error)
            if wants_json:
                return JsonResponse(
                    {"error": {"code": error.error_code, "message": text}}, status=error.status_code
                )
            messages.error(request, text)
            return redirect("dashboard:documents", tenant_id=request.tenant.pk)
        states = [outcome_state(outcome) for outcome in outcomes]
        if wants_json:
            return JsonResponse({"results": states})
        for state in states:
            level = messages.success if state["outcome"] == bulk_upload.CREATED else messages.error
            level(request, f"{state['filename']}: {state['text']}")
        return redirect("dashboard:documents", tenant_id=request.tenant.pk)

    @staticmethod
    def _check_declared_length(request) -> None:
        """Refuse an oversized body from its declared length, before Django reads it to disk."""
        limit = request.tenant.plan.max_upload_bytes
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if (
            limit
            and declared.isdigit()
            and int(declared) > limit * settings.BULK_UPLOAD_MAX_FILES + _MULTIPART_OVERHEAD
        ):
            raise APIError(
                _("The upload is too large; send fewer or smaller files at a time."), code="upload_too_large"
            )


class DocumentStatusView(TenantDashboardMixin, View):
    """JSON for the list's poll: the state of the documents it shows (`?ids=1,2`) and the tenant's
    ingestion progress (`progress`, see `progress_state`)."""

    capability = Capability.READ_KNOWLEDGE

    def get(self, request, tenant_id):
        ids = [part for part in request.GET.get("ids", "").split(",") if part.strip().isdigit()][:100]
        documents = selectors.document_list(tenant=request.tenant).filter(pk__in=ids)
        documents = list(documents)
        positions = selectors.queue_positions(tenant=request.tenant, documents=documents)
        states = [document_state(document, positions) for document in documents]
        return JsonResponse(
            {
                "documents": states,
                "in_progress": any(state["status"] in IN_PROGRESS for state in states),
                "progress": progress_state(selectors.ingestion_progress(tenant=request.tenant)),
            }
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
