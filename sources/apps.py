from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "sources"
    verbose_name = "Web sources"

    def ready(self):
        from sources import tasks  # noqa: F401 - registers the Celery tasks, queued by name
