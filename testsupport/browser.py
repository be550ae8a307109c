"""The dashboard in Debian's Chromium, driven by Playwright (the `browser` fixture launches it)."""

from pathlib import Path

from testsupport.environment import ROOT
from testsupport.people import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
TIMEOUT_MS = 60_000


def sign_in(page, email: str):
    page.goto("/dashboard/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/t/**")
