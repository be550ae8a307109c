from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.admin_site import AdminSetPasswordForm
from accounts.models import Invitation, User
from tenants.revocation import access_changed


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    change_password_form = AdminSetPasswordForm  # revokes the person's refresh tokens
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_active", "memberships__role"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name"]}),
        (
            "Platform access",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]})]

    # Edits here bypass the services: announce them, so that the user's open sockets look again.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and {"is_active", "is_staff", "is_superuser"} & set(form.changed_data):
            access_changed(user_id=obj.pk)

    def delete_model(self, request, obj):
        access_changed(user_id=obj.pk)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            access_changed(user_id=user.pk)
        super().delete_queryset(request, queryset)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "tenant", "role", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["email", "tenant__name"]
    readonly_fields = ["token_hash", "created_at", "accepted_at"]
    list_select_related = ["tenant"]
