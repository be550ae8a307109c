from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps  # not its class: that one says `default = True`


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"


class PlatformAdminConfig(admin_apps.AdminConfig):
    """Django's admin app, whose default site is the platform's: its sign-in goes through the
    platform's limiter (accounts/admin_site.py)."""

    default = False
    default_site = "accounts.admin_site.PlatformAdminSite"
