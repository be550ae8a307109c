"""Settings are read once at start-up, so each case starts a fresh interpreter."""

import os
import subprocess
import sys

import pytest

from testsupport.environment import ROOT, load_settings


@pytest.mark.parametrize("secret", [None, "", "short", "insecure-development-key-do-not-use-in-production"])
def test_production_refuses_to_start_without_a_real_secret_key(secret):
    environment = {"DEBUG": "false"}
    if secret is not None:
        environment["SECRET_KEY"] = secret
    result = load_settings(**environment)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_real_secret_key():
    result = load_settings(DEBUG="false", SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DEBUG", "maybe"), ("ACCESS_TOKEN_MINUTES", "ten"), ("ACCESS_TOKEN_MINUTES", "60")],
)
def test_malformed_values_fail_loudly_naming_the_variable(variable, value):
    result = load_settings(**{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr


def test_production_hashes_with_argon2_and_sets_secure_cookies_and_headers():
    shown = (
        "settings.PASSWORD_HASHERS[0], settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
        "settings.SECURE_CONTENT_TYPE_NOSNIFF, settings.X_FRAME_OPTIONS, settings.SECURE_HSTS_SECONDS, "
        "settings.CORS_ALLOWED_ORIGINS"
    )
    result = load_settings(
        show=shown,
        DEBUG="false",
        SECRET_KEY="k" * 50,
        SECURE_HSTS_SECONDS="31536000",
        CORS_ALLOWED_ORIGINS="https://shop.example.com.tw",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "True",
        "True",
        "True",
        "DENY",
        "31536000",
        "['https://shop.example.com.tw']",
    ]


CONCURRENT_WRITERS = """
import threading
import django
django.setup()
from django.db import connection, transaction

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS counter (n INTEGER)")
    cursor.execute("INSERT INTO counter VALUES (0)")
errors = []

def writer():
    try:
        for _ in range(20):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT n FROM counter")  # read first, then write: the upgrade
                cursor.execute("UPDATE counter SET n = n + 1")
    except Exception as error:
        errors.append(error)
    finally:
        connection.close()

threads = [threading.Thread(target=writer) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with connection.cursor() as cursor:
    cursor.execute("SELECT n FROM counter")
    print(cursor.fetchone()[0], len(errors))
"""


def test_the_embedded_sqlite_queues_concurrent_writers_instead_of_failing(tmp_path):
    """Concurrent chats write at once: on SQLite a read-then-write transaction would fail with
    "database is locked"; the settings make writers queue instead."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    result = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "-c", CONCURRENT_WRITERS],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "platform_project.settings", "VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["160", "0"]
