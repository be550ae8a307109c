from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate


def _drop_row_level_security(sender, using="default", **_kwargs) -> None:
    from tenants import rls

    rls.drop_policies(using)


def _apply_row_level_security(sender, using="default", **_kwargs) -> None:
    from tenants import rls

    rls.apply_policies(using)


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from tenants import (
            checks,  # noqa: F401 - registers the system checks
            schema,  # noqa: F401 - registers the OpenAPI auth extension
            tasks,  # noqa: F401 - registers the Celery tasks, which services queue by name
        )

        # Off during migrate (a policy pins the columns it uses), on again once every app's
        # tables exist (see tenants/rls.py).
        pre_migrate.connect(_drop_row_level_security, sender=self, dispatch_uid="tenants_rls_off")
        post_migrate.connect(_apply_row_level_security, sender=self, dispatch_uid="tenants_rls")
