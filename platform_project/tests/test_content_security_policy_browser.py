"""The Content-Security-Policy in a real browser: every main dashboard page, the Django admin and
the API docs load and work under it, and Chromium reports no violation (a blocked script, style,
image or connection) on any of them."""

import pytest

from conversations.models import Conversation, Message
from testsupport.browser import TIMEOUT_MS, sign_in
from testsupport.documents import a_ready_document
from testsupport.people import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WATCH_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


class PolicyWatch:
    """A browser context that records every CSP violation its pages report, through the DOM's
    securitypolicyviolation events and Chromium's console messages."""

    def __init__(self, chromium, server):
        self.context = chromium.new_context(base_url=server.http_url, viewport={"width": 1280, "height": 860})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.add_init_script(WATCH_VIOLATIONS)
        self.console: list[str] = []
        self.page = self.context.new_page()
        self.page.on(
            "console",
            lambda message: (
                self.console.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )

    def visit(self, path: str, *, ready: str = "main h1", status: int = 200) -> None:
        response = self.page.goto(path)
        assert response.status == status, path
        assert "script-src 'self'" in response.headers.get("content-security-policy", ""), path
        self.page.locator(ready).first.wait_for()
        self.assert_no_violation(path)

    def assert_no_violation(self, where: str) -> None:
        reported = self.page.evaluate("() => window.cspViolations")
        assert reported == [], f"{where}: {reported}"
        assert self.console == [], f"{where}: {self.console}"


def test_the_dashboard_admin_and_docs_run_under_the_policy_without_violations(
    browser,  # noqa: F811
    live_asgi,
    tenant_a,
    platform_admin,
):
    tenant_id = tenant_a.tenant.pk
    a_ready_document(tenant_a.tenant)
    conversation = Conversation.objects.create(
        tenant=tenant_a.tenant, user=tenant_a.end_user, title="退貨", status="handoff"
    )
    Message.objects.create(tenant=tenant_a.tenant, conversation=conversation, role="user", content="我要退貨")

    watch = PolicyWatch(browser, live_asgi)
    watch.visit("/dashboard/login/")
    sign_in(watch.page, tenant_a.tenant_admin.email)
    watch.assert_no_violation("sign-in")
    base = f"/dashboard/t/{tenant_id}"
    for path in [
        "/",
        "/documents/",
        "/knowledge/search/",
        "/conversations/",
        f"/conversations/{conversation.pk}/",
        "/members/",
        "/settings/",
        "/settings/retrieval/",
        "/usage/",
        "/analytics/",
        "/exports/",
    ]:
        watch.visit(base + path)
    watch.visit(base + "/", ready=".meter svg")  # the quota meters, drawn without inline style

    # The live pages: their scripts run and their WebSockets connect under connect-src 'self'.
    watch.visit(base + "/chat/", ready="[data-connection]")
    watch.page.locator("[data-connection]", has_text="Connected").wait_for()
    watch.assert_no_violation("live chat")
    watch.visit(base + "/inbox/", ready="[data-connection]")
    watch.page.locator("[data-connection]", has_text="Live").wait_for()
    watch.assert_no_violation("inbox")

    # A confirmation dialog (dashboard.js) still opens, and the language switch still submits.
    watch.visit(base + "/documents/")
    watch.page.locator("form[data-confirm] button").first.click()
    watch.page.locator("#confirm-dialog[open]").wait_for()
    watch.page.get_by_role("button", name="Cancel").click()
    watch.page.get_by_label("Language").select_option("zh-hant")
    watch.page.get_by_role("heading", name="文件").wait_for()
    watch.assert_no_violation("language switch")

    # The error page a browser gets.
    watch.visit(base + "/no-such-page/", ready="h1", status=404)
    watch.context.close()

    # The operator's tools: the Django admin and the interactive API docs.
    operator = PolicyWatch(browser, live_asgi)
    operator.visit("/admin/login/", ready="#login-form")
    operator.page.get_by_label("Email").fill(platform_admin.email)
    operator.page.get_by_label("Password").fill(PASSWORD)
    operator.page.locator("input[type=submit]").click()
    operator.page.locator("#site-name").wait_for()
    operator.assert_no_violation("admin sign-in")
    operator.visit("/admin/tenants/tenant/", ready="#result_list")
    operator.visit(f"/admin/tenants/tenant/{tenant_id}/change/", ready="#content-main form")
    operator.visit("/v1/docs/", ready=".swagger-ui .information-container .title")
    operator.page.locator(".opblock").first.wait_for()
    operator.assert_no_violation("API docs")
    operator.context.close()
