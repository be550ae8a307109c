from django.apps import AppConfig


class PlatformProjectConfig(AppConfig):
    """Registered as an app for its management commands (`serve`, `seed_demo`) and to connect the
    Celery signal handlers of observability.py in every process that loads Django (web, worker)."""

    name = "platform_project"
    verbose_name = "Platform"

    def ready(self):
        from platform_project.observability import connect_celery_signals, process_exit_register

        connect_celery_signals()
        process_exit_register()
