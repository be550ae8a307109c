from django.contrib import admin

from sources.models import CrawlRun, WebSource


@admin.register(WebSource)
class WebSourceAdmin(admin.ModelAdmin):
    list_display = ("url", "tenant", "schedule", "max_pages", "created_at")
    list_filter = ("schedule",)
    search_fields = ("url", "name")
    raw_id_fields = ("tenant",)


@admin.register(CrawlRun)
class CrawlRunAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "tenant", "status", "trigger", "created_at", "finished_at")
    list_filter = ("status",)
    raw_id_fields = ("tenant", "source")
