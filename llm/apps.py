from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "llm"
    verbose_name = "LLM providers"

    def ready(self):
        # The schema of the tenant settings section this app reads, for every writer of settings.
        from llm.assistant import SETTINGS_KEY, AssistantSettingsSchema
        from tenants.tenant_settings import tenant_settings_section_register

        tenant_settings_section_register(SETTINGS_KEY, AssistantSettingsSchema)
