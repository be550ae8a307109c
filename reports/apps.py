from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from reports.retention_settings import RetentionSettings
        from tenants.tenant_settings import tenant_settings_section_register

        tenant_settings_section_register("retention", RetentionSettings)
