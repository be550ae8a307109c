"""Dashboard pages of reports: the overview (this month against the plan) and usage. Thin:
validate, call a report or a selector, answer."""

import datetime as dt
from urllib.parse import urlencode

from django.contrib import messages
from django.http import FileResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from conversations import selectors as conversation_selectors
from conversations.models import Conversation
from knowledge import faq_services
from reports import analytics, selectors, services, usage
from reports.api import DEFAULT_PERIOD_DAYS, MAX_PERIOD_DAYS
from reports.forms import AnalyticsFilterForm, ExportRequestForm, UsagePeriodForm
from reports.models import Export
from tenants.dashboard import TenantDashboardMixin, forbidden, paginate, query_without_page
from tenants.roles import Capability

CHART_WIDTH = 600
CHART_HEIGHT = 160
CHART_DAYS = 30


def _percent(used: int, limit: int | None) -> int | None:
    if not limit:
        return None
    return min(100, round(100 * used / limit))


def usage_chart(days: list[dict]) -> dict:
    """An SVG chart's geometry, drawn server-side: conversations per day as bars, tokens per
    day as a line, each scaled to its own maximum."""
    count = max(len(days), 1)
    step = CHART_WIDTH / count
    most_conversations = max((day["conversations"] for day in days), default=0) or 1
    most_tokens = max((day["tokens"] for day in days), default=0) or 1
    bars, points = [], []
    for index, day in enumerate(days):
        height = (CHART_HEIGHT - 10) * day["conversations"] / most_conversations
        bars.append(
            {
                "x": round(index * step + step * 0.15, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(step * 0.7, 1),
                "height": round(height, 1),
                "day": day["day"],
                "conversations": day["conversations"],
                "tokens": day["tokens"],
            }
        )
        y = CHART_HEIGHT - (CHART_HEIGHT - 10) * day["tokens"] / most_tokens
        points.append(f"{round(index * step + step / 2, 1)},{round(y, 1)}")
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "bars": bars,
        "line": " ".join(points),
        "max_conversations": most_conversations if any(d["conversations"] for d in days) else 0,
        "max_tokens": most_tokens if any(d["tokens"] for d in days) else 0,
        "first_day": days[0]["day"] if days else None,
        "last_day": days[-1]["day"] if days else None,
    }


class OverviewView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/overview.html"
    capability = Capability.READ_TENANT
    nav = "dashboard:overview"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant, request = self.request.tenant, self.request
        report = usage.tenant_usage(tenant=tenant, days=CHART_DAYS)
        month_start = timezone.localdate().replace(day=1)
        conversations_this_month = (
            Conversation.objects.for_tenant(tenant).filter(created_at__date__gte=month_start).count()
        )
        quotas = report["quotas"]
        context.update(
            report=report,
            chart=usage_chart(report["days"]),
            conversations_this_month=conversations_this_month,
            waiting=conversation_selectors.conversation_list(
                tenant=tenant, viewer=request.user, role=request.role, status="handoff", unassigned=True
            ).count(),
            cards=[
                {
                    "label": _("Tokens this month"),
                    "used": quotas["monthly_tokens"]["used"],
                    "limit": quotas["monthly_tokens"]["limit"],
                    "percent": _percent(quotas["monthly_tokens"]["used"], quotas["monthly_tokens"]["limit"]),
                },
                {
                    "label": _("Documents"),
                    "used": quotas["documents"]["used"],
                    "limit": quotas["documents"]["limit"],
                    "percent": _percent(quotas["documents"]["used"], quotas["documents"]["limit"]),
                },
                {
                    "label": _("Storage"),
                    "used": quotas["storage_bytes"]["used"],
                    "limit": quotas["storage_bytes"]["limit"],
                    "percent": _percent(quotas["storage_bytes"]["used"], quotas["storage_bytes"]["limit"]),
                    "bytes": True,
                },
            ],
        )
        return context


class UsageView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/usage.html"
    capability = Capability.VIEW_USAGE
    nav = "dashboard:usage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = UsagePeriodForm(self.request.GET or None)
        days = form.cleaned_data["days"] if form.is_valid() else 30
        report = usage.tenant_usage(tenant=self.request.tenant, days=days)
        context.update(
            form=form,
            report=report,
            days=list(reversed(report["days"])),
            chart=usage_chart(report["days"]),
        )
        return context


def answers_chart(days: list[dict]) -> dict:
    """An SVG chart's geometry, drawn server-side: per day, the answers stacked by what they
    stood on (curated answer, knowledge, not answered), scaled to the busiest day."""
    count = max(len(days), 1)
    step = CHART_WIDTH / count
    most = max((day["answers"] for day in days), default=0) or 1
    bars = []
    for index, day in enumerate(days):
        y = CHART_HEIGHT
        not_answered = day["no_knowledge"] + day["errors"]
        for kind, value in (
            ("faq", day["answered_by_faq"]),
            ("knowledge", day["answered_by_knowledge"]),
            ("none", not_answered),
        ):
            height = (CHART_HEIGHT - 10) * value / most
            y -= height
            if value:
                bars.append(
                    {
                        "kind": kind,
                        "x": round(index * step + step * 0.15, 1),
                        "y": round(y, 1),
                        "width": round(step * 0.7, 1),
                        "height": round(height, 1),
                        "day": day["day"],
                        "value": value,
                    }
                )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "bars": bars,
        "max_answers": most if any(day["answers"] for day in days) else 0,
        "first_day": days[0]["day"] if days else None,
        "last_day": days[-1]["day"] if days else None,
    }


def _percent_of(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.0f}%"


def analytics_period(request) -> tuple[AnalyticsFilterForm, dt.date, dt.date, str | None]:
    """The filter form of the analytics pages and the period it chose: the last
    DEFAULT_PERIOD_DAYS days unless it names a valid one (an invalid one gets a field error)."""
    form = AnalyticsFilterForm(request.GET or None)
    today = timezone.localdate()
    since, until, channel = today - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1), today, None
    if form.is_valid():
        until = form.cleaned_data["until"] or today
        since = form.cleaned_data["since"] or until - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        channel = form.cleaned_data["channel"] or None
        if since > until or (until - since).days + 1 > MAX_PERIOD_DAYS:
            form.add_error("since", _("Choose a period of 1 to %(days)s days.") % {"days": MAX_PERIOD_DAYS})
            since, until = today - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1), today
    return form, since, until, channel


def write_answer_url(tenant, question: str) -> str:
    """The curated-answer form, prefilled with the question."""
    return f"{reverse('dashboard:faq-create', kwargs={'tenant_id': tenant.pk})}?{urlencode({'question': question})}"


class AnalyticsView(TenantDashboardMixin, TemplateView):
    """The analytics report of GET …/analytics, drawn: figures, a chart, per channel, and the
    top unanswered questions, each with a link to write the curated answer for it."""

    template_name = "dashboard/analytics.html"
    capability = Capability.VIEW_USAGE
    nav = "dashboard:analytics"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form, since, until, channel = analytics_period(self.request)
        report = analytics.tenant_analytics(
            tenant=self.request.tenant, since=since, until=until, channel=channel
        )
        for entry in report["unanswered"]:
            entry["write_answer_url"] = write_answer_url(self.request.tenant, entry["question"])
        rates = report["rates"]
        context.update(
            form=form,
            report=report,
            chart=answers_chart(report["days"]),
            percents={name: _percent_of(value) for name, value in rates.items()},
            days=list(reversed(report["days"])),
        )
        return context


class UnansweredView(TenantDashboardMixin, TemplateView):
    """The questions the assistant could not answer (no knowledge, or a thumbs-down) in a
    period, the same question in other words grouped, most asked first; each with the curated
    answer that now matches it, or a link to write one (prefilled)."""

    template_name = "dashboard/unanswered.html"
    capability = Capability.VIEW_USAGE
    nav = "dashboard:unanswered"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        form, since, until, channel = analytics_period(self.request)
        questions = analytics.tenant_unanswered(tenant=tenant, since=since, until=until, channel=channel)
        page = paginate(self.request, questions)
        for entry in page:
            # Matched only for the page shown: each match embeds the question once.
            entry["curated"] = faq_services.faq_match(tenant=tenant, question=entry["question"])
            entry["write_answer_url"] = write_answer_url(tenant, entry["question"])
        context.update(
            form=form,
            page=page,
            since=since,
            until=until,
            query=query_without_page(self.request),
            can_write_answers=self.can(Capability.MANAGE_DOCUMENTS),
        )
        return context


class ExportsView(TenantDashboardMixin, TemplateView):
    """Request an export of the conversations and download the ready ones (tenant admins)."""

    template_name = "dashboard/exports.html"
    capability = Capability.VIEW_USAGE
    nav = "dashboard:analytics"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        today = timezone.localdate()
        exports = list(selectors.export_list(tenant=self.request.tenant)[:20])
        for export in exports:
            export.downloadable = export.status == Export.Status.READY and not selectors.export_is_expired(
                export
            )
        context.update(
            form=form
            or ExportRequestForm(
                initial={
                    "since": today - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1),
                    "until": today,
                    "format": "csv",
                }
            ),
            exports=exports,
        )
        return context

    def post(self, request, tenant_id):
        form = ExportRequestForm(request.POST)
        if form.is_valid():
            today = timezone.localdate()
            until = form.cleaned_data["until"] or today
            since = form.cleaned_data["since"] or until - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
            if since > until or (until - since).days + 1 > MAX_PERIOD_DAYS:
                form.add_error(
                    "since", _("Choose a period of 1 to %(days)s days.") % {"days": MAX_PERIOD_DAYS}
                )
            else:
                services.export_request(
                    tenant=request.tenant,
                    requested_by=request.user,
                    since=since,
                    until=until,
                    format=form.cleaned_data["format"],
                    channel=form.cleaned_data["channel"],
                )
                messages.success(request, _("The export is being written. Reload this page to download it."))
                return redirect("dashboard:exports", tenant_id=request.tenant.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ExportFileView(TenantDashboardMixin, View):
    """A ready export's file, for the signed-in tenant admin (audited, as through the API)."""

    capability = Capability.VIEW_USAGE

    def get(self, request, tenant_id, export_id):
        export = selectors.export_get(tenant=request.tenant, export_id=export_id)
        if selectors.export_is_expired(export):
            return forbidden(
                request, _("This export has expired and its file was deleted. Request a new one."), 410
            )
        if export.status != Export.Status.READY:
            return forbidden(request, _("This export is not ready yet."), 409)
        path = services.export_download_record(export=export)
        content_type = (
            "text/csv; charset=utf-8" if export.format == Export.Format.CSV else "application/x-ndjson"
        )
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"conversations-{export.since}-{export.until}.{export.format}",
            content_type=content_type,
        )
