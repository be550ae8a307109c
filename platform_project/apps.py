from django.apps import AppConfig


class PlatformProjectConfig(AppConfig):
    """Registered as an app only for its management commands (`serve`, `seed_demo`)."""

    name = "platform_project"
    verbose_name = "Platform"
