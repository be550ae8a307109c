"""The production image (Dockerfile) must not run in development mode: Docker cannot run here,
so its ENV is read from the file and the settings are loaded with it in a fresh interpreter."""

import io
import re
import shlex

from platform_project.management.commands.serve import Command as ServeCommand
from testsupport.environment import ROOT, load_settings


def dockerfile_environment() -> dict[str, str]:
    """The variables the image's ENV instructions set (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    environment: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().upper().startswith("ENV "):
            for word in shlex.split(line.strip()[4:]):
                name, _, value = word.partition("=")
                environment[name] = value
    return environment


def test_the_image_defaults_to_debug_off():
    assert dockerfile_environment().get("DEBUG", "").lower() == "false"


def test_the_image_refuses_to_start_without_a_real_secret_key():
    environment = {
        name: value for name, value in dockerfile_environment().items() if name in {"DEBUG", "SECRET_KEY"}
    }
    result = load_settings(**environment)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_the_image_starts_with_a_real_secret_key(tmp_path):
    environment = {name: value for name, value in dockerfile_environment().items() if name == "DEBUG"}
    result = load_settings(**environment, SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_image_collects_static_files_as_production_serves_them():
    """collectstatic must write the manifest that DEBUG-off serving reads, so the build step
    runs with DEBUG off too (and a throwaway key), never with DEBUG on."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    collect = next(line for line in text.splitlines() if line.startswith("RUN") and "collectstatic" in line)
    assert "DEBUG=true" not in collect.replace(" ", "")
    assert "DEBUG=false" in collect


def test_serve_announces_development_mode_and_its_public_secret_key(settings):
    settings.DEBUG = True
    output = io.StringIO()
    ServeCommand(stdout=output).announce_mode()
    assert "development mode" in output.getvalue()
    assert "development secret key" in output.getvalue()
    assert "not for production" in output.getvalue()


def test_serve_says_nothing_of_development_in_production(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = "k" * 50
    output = io.StringIO()
    ServeCommand(stdout=output).announce_mode()
    assert "development" not in output.getvalue()
