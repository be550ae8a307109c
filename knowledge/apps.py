from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge"

    def ready(self):
        # The schema of the tenant settings section this app reads, for every writer of settings.
        from knowledge import (
            faq_settings,
            tasks,  # noqa: F401 - registers the Celery tasks, which ingestion queues by name
        )
        from knowledge.retrieval_settings import SETTINGS_KEY, RetrievalSettingsSchema
        from tenants.tenant_settings import tenant_settings_section_register

        tenant_settings_section_register(SETTINGS_KEY, RetrievalSettingsSchema)
        tenant_settings_section_register(faq_settings.SETTINGS_KEY, faq_settings.FaqSettingsSchema)
