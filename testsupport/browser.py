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


def new_page(browser, server, locale="en-US"):
    """A page of its own browser context (cookies, language) on the live server."""
    context = browser.new_context(
        base_url=server.http_url, locale=locale, viewport={"width": 1280, "height": 860}
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def shot(page, name: str):
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
