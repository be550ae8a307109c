from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _apply_row_level_security(sender, using="default", **_kwargs) -> None:
    from tenants import rls

    rls.apply_policies(using)


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from tenants import schema  # noqa: F401 - registers the OpenAPI auth extension

        # After every migrate, once every app's tables exist (see tenants/rls.py).
        post_migrate.connect(_apply_row_level_security, sender=self, dispatch_uid="tenants_rls")
