"""System checks of the tenancy layer (run by `manage.py check --database default` and before
`migrate`)."""

from django.core.checks import Tags, Warning, register


@register(Tags.database)
def row_level_security_binds_the_role(app_configs, databases=None, **_kwargs):
    from tenants import rls

    return [
        Warning(
            "The database role bypasses row-level security (a superuser or BYPASSRLS role): "
            "tenant isolation rests on the application's filters alone.",
            hint="Connect as an ordinary role; it may own the tables (README, Architecture).",
            id="tenants.W001",
        )
        for alias in databases or ()
        if rls.role_bypasses_policies(alias)
    ]
