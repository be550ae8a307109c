import pytest
from django.core.management import call_command

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_createsuperuser_noinput_makes_a_platform_admin(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Root@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-passphrase")
    call_command("createsuperuser", interactive=False, verbosity=0)
    user = User.objects.get(email="root@example.com")
    assert user.is_platform_admin
    assert user.check_password("a-long-passphrase")


def test_seed_demo_is_idempotent_and_keeps_passwords(capsys):
    call_command("seed_demo")
    admin = User.objects.get(email="admin@demo.example.com")
    admin.set_password("changed-by-the-admin")
    admin.save()
    call_command("seed_demo")
    admin.refresh_from_db()
    assert admin.check_password("changed-by-the-admin")
    assert admin.memberships.get().role == "tenant_admin"
    assert "admin@demo.example.com" in capsys.readouterr().out
