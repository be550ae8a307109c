"""The operators' view of the LINE channels: channels (secrets never shown, not even encrypted;
only `enabled` may be changed, through the audited service), and read-only users, events and
deliveries for support ("why did my customer get no answer?"). Tenant admins connect channels
from the dashboard or the API."""

from django.contrib import admin

from line_channel import services
from line_channel.models import LineChannel, LineDelivery, LineEvent, LineUser


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LineChannel)
class LineChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "channel_id", "enabled", "needs_attention", "language", "created_at"]
    list_filter = ["enabled", "needs_attention", "language", "allow_groups", "tenant"]
    search_fields = ["name", "channel_id", "tenant__name"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    # The encrypted credentials are left out of every page.
    fields = [
        "id",
        "tenant",
        "name",
        "channel_id",
        "secrets_stored",
        "enabled",
        "needs_attention",
        "attention_reason",
        "greeting",
        "handoff_keywords",
        "language",
        "allow_groups",
        "created_at",
        "updated_at",
    ]
    readonly_fields = [name for name in fields if name != "enabled"]

    @admin.display(boolean=True, description="Secret and access token stored")
    def secrets_stored(self, obj: LineChannel) -> bool:
        return bool(obj.channel_secret_encrypted and obj.access_token_encrypted)

    def has_add_permission(self, request) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        # Through the service, so that the change is audited like the tenant's own.
        stored = LineChannel.objects.get(pk=obj.pk)
        services.line_channel_update(channel=stored, enabled=form.cleaned_data["enabled"])

    def delete_model(self, request, obj):
        services.line_channel_delete(channel=obj)

    def delete_queryset(self, request, queryset):
        for channel in queryset:
            services.line_channel_delete(channel=channel)


@admin.register(LineUser)
class LineUserAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "channel", "tenant", "source_type", "following", "created_at"]
    list_filter = ["source_type", "following", "tenant"]
    search_fields = ["display_name", "line_user_id", "channel__name"]
    list_select_related = ["channel", "tenant"]


@admin.register(LineEvent)
class LineEventAdmin(ReadOnlyAdmin):
    list_display = ["webhook_event_id", "event_type", "status", "channel", "tenant", "received_at"]
    list_filter = ["status", "event_type", "tenant"]
    search_fields = ["webhook_event_id", "channel__name", "error"]
    list_select_related = ["channel", "tenant"]
    date_hierarchy = "received_at"


@admin.register(LineDelivery)
class LineDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "status", "attempts", "channel", "tenant", "sent_at"]
    list_filter = ["status", "kind", "tenant"]
    search_fields = ["channel__name", "error", "line_user__line_user_id"]
    list_select_related = ["channel", "tenant"]
    date_hierarchy = "created_at"
