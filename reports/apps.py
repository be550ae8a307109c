from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from reports.retention_settings import RetentionSettings
        from tenants.tenant_settings import tenant_settings_section_register

        tenant_settings_section_register("retention", RetentionSettings)
        # Exports are queued by name (services.WRITE_EXPORT_TASK): register the tasks in every process.
        import reports.tasks  # noqa: F401
