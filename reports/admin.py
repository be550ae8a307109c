from django.contrib import admin
from django.db.models import F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from llm.models import UsageDay
from reports.usage import tenant_usage
from tenants.admin import TenantAdmin
from tenants.models import Tenant

# --- Tenants with their usage ------------------------------------------------------------------
# Usage lives in llm and conversations, which `tenants` may not import: the tenant admin is
# extended here, at the left end of the import chain.


class TenantWithUsageAdmin(TenantAdmin):
    """The tenant admin, with this month's tokens against the plan's quota in the list (one
    subquery, no query per row) and the usage report on each tenant's page."""

    list_display = [*TenantAdmin.list_display, "tokens_this_month"]
    readonly_fields = [*TenantAdmin.readonly_fields, "usage_this_month"]

    def get_queryset(self, request):
        month_start = timezone.localdate().replace(day=1)
        tokens = (
            UsageDay.objects.filter(tenant=OuterRef("pk"), day__gte=month_start)
            .values("tenant")
            .annotate(total=Sum(F("prompt_tokens") + F("completion_tokens")))
            .values("total")
        )
        return super().get_queryset(request).annotate(month_tokens=Coalesce(Subquery(tokens), 0))

    @admin.display(description="Tokens this month / quota", ordering="month_tokens")
    def tokens_this_month(self, tenant) -> str:
        quota = tenant.plan.monthly_token_quota
        if not quota:
            return f"{tenant.month_tokens:,} / unlimited"
        return f"{tenant.month_tokens:,} / {quota:,} ({100 * tenant.month_tokens / quota:.0f}%)"

    @admin.display(description="Usage against the plan")
    def usage_this_month(self, tenant) -> str:
        if tenant.pk is None:
            return "-"
        report = tenant_usage(tenant=tenant, days=30)
        labels = {
            "monthly_tokens": "Tokens this month",
            "documents": "Documents",
            "storage_bytes": "Storage (bytes)",
        }
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (
                    label,
                    f"{report['quotas'][key]['used']:,}",
                    f"{report['quotas'][key]['limit']:,}" if report["quotas"][key]["limit"] else "unlimited",
                )
                for key, label in labels.items()
            ),
        )
        totals = report["totals"]
        return format_html(
            "<table><thead><tr><th></th><th>used</th><th>quota</th></tr></thead><tbody>{}</tbody></table>"
            "<p>Last 30 days: {} tokens, {} answers, {} conversations, {} documents added.</p>",
            rows,
            f"{totals['tokens']:,}",
            totals["messages"],
            totals["conversations"],
            totals["documents_added"],
        )


admin.site.unregister(Tenant)
admin.site.register(Tenant, TenantWithUsageAdmin)
