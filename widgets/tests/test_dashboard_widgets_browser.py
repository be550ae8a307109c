"""The widget pages in Chromium against the live ASGI server: create a widget while the framed
preview follows the greeting and language being typed (widget.js itself, in its preview mode,
under the strict policy), copy the secret shown once, delete through the confirm dialog.
Screenshots: test-artifacts/screenshots/widget*.png."""

import pytest

from testsupport.browser import SCREENSHOTS, TIMEOUT_MS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_an_admin_creates_previews_and_deletes_a_widget(browser, live_asgi, tenant_a):
    context = browser.new_context(
        base_url=live_asgi.http_url, locale="en-US", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    refused = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security" in message.text else None,
    )
    sign_in(page, tenant_a.tenant_admin.email)

    page.locator("#sidebar").get_by_role("link", name="Website widget").click()
    page.get_by_role("link", name="New widget").first.click()
    page.get_by_label("Name").fill("官網客服")
    page.get_by_label("Allowed origins").fill("https://shop.example.com.tw\nhttp://localhost:8080")
    page.get_by_label("Greeting").fill("您好！請問需要什麼協助？")
    page.locator("#id_locale").select_option("zh-Hant")
    # The preview follows the form before anything is saved: greeting and language.
    preview = page.frame_locator("iframe[data-widget-preview]")
    preview.locator(".msg.assistant", has_text="您好！請問需要什麼協助？").wait_for()
    assert preview.locator(".launcher").inner_text() == "關閉對話"
    # widget.js's own styles apply in the framed page (constructed style sheets, no inline style).
    assert preview.locator(".launcher").evaluate("node => getComputedStyle(node).position") == "fixed"
    # Nothing leaves the preview: a message there is answered by a notice only.
    preview.locator("textarea").fill("hello")
    preview.locator("form button").click()
    preview.get_by_text("預覽模式：此處的訊息不會送出。").wait_for()
    page.get_by_label("Identity verification").check()
    page.get_by_role("button", name="Create widget").click()

    secret = page.locator("[data-identity-secret]")
    secret.wait_for()
    assert secret.input_value().startswith("whsec_")
    page.locator("[data-identity-secret-card]").get_by_role("button", name="Copy").click()
    page.locator("[data-identity-secret-card]").get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret.input_value()
    assert "data-key=" in page.locator("[data-snippet]").input_value()
    page.frame_locator("iframe[data-widget-preview]").locator(".msg.assistant").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "widget-detail.png"), full_page=True)

    page.reload()  # the secret is not shown again (a plain GET of the page)
    assert page.locator("[data-identity-secret]").count() == 0

    page.locator("#sidebar").get_by_role("link", name="Website widget").click()
    page.get_by_role("cell", name="官網客服").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "widgets.png"), full_page=True)

    # The same page in Traditional Chinese, then deleted through the confirm dialog.
    page.get_by_role("link", name="官網客服").click()
    page.get_by_label("Language").select_option("zh-hant")
    page.get_by_role("heading", name="放到您的網站").wait_for()
    page.frame_locator("iframe[data-widget-preview]").locator(".msg.assistant").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "widget-detail-zh-hant.png"), full_page=True)
    page.get_by_role("button", name="刪除小工具").click()
    page.locator("#confirm-dialog").get_by_role("button", name="確認").click()
    page.get_by_text("尚無小工具。").wait_for()
    assert refused == []
    context.close()
