from django import forms
from django.contrib import admin

from llm.crypto import encrypt_secret
from llm.models import ProviderConfig, UsageDay
from llm.services import PROVIDER_FIELDS


class ProviderConfigForm(forms.ModelForm):
    # Write-only: the stored key is never rendered, not even encrypted.
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored key. It is encrypted at rest and never shown.",
    )
    base_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    clear_api_key = forms.BooleanField(label="Remove the stored API key", required=False)

    class Meta:
        model = ProviderConfig
        fields = ["tenant", "position", *PROVIDER_FIELDS]


@admin.register(ProviderConfig)
class ProviderConfigAdmin(admin.ModelAdmin):
    form = ProviderConfigForm
    list_display = ["tenant", "position", "kind", "model", "enabled", "has_api_key", "updated_at"]
    list_filter = ["kind", "enabled", "tenant"]
    search_fields = ["tenant__name", "model", "base_url"]
    list_select_related = ["tenant"]
    ordering = ["tenant__name", "position"]
    readonly_fields = ["has_api_key", "updated_at"]

    @admin.display(boolean=True, description="API key stored")
    def has_api_key(self, obj: ProviderConfig) -> bool:
        return obj.has_api_key

    def save_model(self, request, obj, form, change):
        key = form.cleaned_data.get("api_key")
        if key:
            obj.api_key_encrypted = encrypt_secret(key)
        elif form.cleaned_data.get("clear_api_key"):
            obj.api_key_encrypted = ""
        super().save_model(request, obj, form, change)


@admin.register(UsageDay)
class UsageDayAdmin(admin.ModelAdmin):
    list_display = ["tenant", "day", "prompt_tokens", "completion_tokens", "messages", "requests"]
    list_filter = ["tenant"]
    date_hierarchy = "day"
    list_select_related = ["tenant"]
    search_fields = ["tenant__name"]

    # Usage is recorded by the chat service only; operators read it.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
