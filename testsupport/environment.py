"""Where the tests run: the repository, the services a test needs, commits inside a test's
transaction, waiting for what happens in another thread or process, and settings loaded afresh."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def require_service(name: str, reason: str) -> None:
    """Skip a test whose service is missing on a bare machine; in CI (REQUIRE_SERVICES=1)
    a missing service is a failure, never a silent skip."""
    message = f"service unavailable: {name}: {reason}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def committed():
    """Run the on-commit callbacks (such as queuing ingestion) of what happens inside, as a
    real commit would; tests otherwise run in a transaction that is never committed."""
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def wait_for(predicate, *, seconds: float, step: float = 0.2):
    """Poll `predicate` until it returns something true (returned) or `seconds` pass (None)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def load_settings(*, show: str = "settings.DEBUG", **environment) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter with this environment (without the test run's
    DEBUG and SECRET_KEY) and print `show`: settings are read once, at start-up."""
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "SECRET_KEY"}}
    env.update(environment)
    return subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; print({show})",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "platform_project.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
