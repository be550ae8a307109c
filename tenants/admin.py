from django.contrib import admin, messages

from tenants import services
from tenants.models import AuditEvent, Membership, Plan, Tenant
from tenants.revocation import access_changed


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "max_documents",
        "max_storage_bytes",
        "max_upload_bytes",
        "monthly_token_quota",
        "requests_per_minute",
        "upload_files_per_hour",
        "upload_bytes_per_hour",
        "max_web_pages",
        "max_ocr_pages",
        "is_default",
    ]
    search_fields = ["code", "name"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "status", "allow_signup", "created_at"]
    list_filter = ["plan", "status", "allow_signup"]
    search_fields = ["name", "slug", "description", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    list_select_related = ["plan"]
    inlines = [MembershipInline]
    actions = ["suspend", "reactivate"]

    # Deleting here goes through the service, as the API does: audited, and the tenant's vectors
    # and files are purged after the commit.
    def delete_model(self, request, obj):
        services.tenant_delete(tenant=obj)

    def delete_queryset(self, request, queryset):
        for tenant in queryset:
            services.tenant_delete(tenant=tenant)

    # Edits here bypass the services: announce them, so that open sockets look again.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "status" in form.changed_data:
            access_changed(tenant_id=obj.pk)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is Membership:
            for membership in [*formset.deleted_objects, *(obj for obj, _ in formset.changed_objects)]:
                access_changed(membership=membership)

    @admin.action(description="Suspend the selected tenants (their users are locked out)")
    def suspend(self, request, queryset):
        for tenant in queryset:
            services.tenant_suspend(tenant=tenant)
        self.message_user(request, f"Suspended {queryset.count()} tenant(s).", messages.SUCCESS)

    @admin.action(description="Reactivate the selected tenants")
    def reactivate(self, request, queryset):
        for tenant in queryset:
            services.tenant_reactivate(tenant=tenant)
        self.message_user(request, f"Reactivated {queryset.count()} tenant(s).", messages.SUCCESS)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__email", "tenant__name"]
    autocomplete_fields = ["user", "tenant"]
    list_select_related = ["user", "tenant"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            access_changed(membership=obj)  # the role, or the user or tenant it joins, changed

    def delete_model(self, request, obj):
        access_changed(membership=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            access_changed(membership=membership)
        super().delete_queryset(request, queryset)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The trail is evidence: operators read it, nobody edits or deletes it here."""

    list_display = [
        "created_at",
        "tenant_name",
        "actor_email",
        "action",
        "target_type",
        "target_id",
        "ip_address",
    ]
    list_filter = ["action", "tenant"]
    search_fields = ["actor_email", "tenant_name", "action", "target_id"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
