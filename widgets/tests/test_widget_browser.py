"""The website widget in a real browser (Debian's Chromium driven by Playwright): a shop's own
page, served from another origin than the platform and with hostile CSS of its own, embeds the
one-tag snippet; a visitor asks in Traditional Chinese, watches the answer stream in with its
citation, rates it, comes back after a reload to the same conversation, asks for a person, and
reads the agent's reply live while the agent answers from the dashboard in a second browser.
A page of an origin the widget does not allow gets no session. Screenshots go to
test-artifacts/screenshots/widget-*.png, and with UPDATE_README_IMAGES=1 the answered panel also
to docs/images/widget.png (the README's picture)."""

import os
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from conversations.models import Conversation, Feedback, Message
from testsupport.browser import SCREENSHOTS, TIMEOUT_MS, sign_in
from testsupport.environment import ROOT
from testsupport.host_page import HostPageServer
from widgets import services
from widgets.api import embed_snippet
from widgets.models import Visitor, Widget

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

README_IMAGE = ROOT / "docs" / "images" / "widget.png"
QUESTION = "商品拆封後還可以退貨嗎？"
REPLY = "您好，我是客服小美，已幫您查詢訂單。"


@pytest.fixture
def shop():
    with HostPageServer() as server:
        yield server


def shop_widget(people, shop, server):
    widget, _secret = services.widget_create(
        tenant=people.tenant,
        name="官網客服",
        allowed_origins=[shop.origin],
        greeting="您好！我是智慧客服，有什麼可以幫您？",
    )
    # Exactly what the dashboard and the API give the enterprise to paste.
    shop.snippet = embed_snippet(widget, base_url=server.http_url)
    return widget


def visitor_page(browser, *, locale="zh-TW", viewport=None):
    context = browser.new_context(locale=locale, viewport=viewport or {"width": 1100, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def shot(page, name: str):
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def watch_streamed_texts(page):
    """Record every text the first answer bubble shows, to tell a stream from a whole answer."""
    page.evaluate(
        """() => {
            window.seenTexts = new Set();
            const root = document.querySelector("[data-platform-widget]").shadowRoot;
            new MutationObserver(() => {
                const bubbles = root.querySelectorAll(".msg.assistant .body");
                if (bubbles.length > 1) window.seenTexts.add(bubbles[1].textContent);
            }).observe(root, {subtree: true, childList: true, characterData: true});
        }"""
    )


def test_a_visitor_on_a_shop_page_gets_an_answer_then_a_person(
    browser, live_asgi, tenant_a, knowledge_a, shop, settings
):
    # The offline answer comes at once: every delta its own frame, so that widget.js is seen
    # drawing a stream (coalesced frames are tested in conversations/tests/test_websocket.py).
    settings.CHAT_STREAM_COALESCE_MS = 0
    shop_widget(tenant_a, shop, live_asgi)
    page = visitor_page(browser)
    page.goto(f"{shop.origin}/products/laptop")
    launcher = page.get_by_role("button", name="線上客服")
    launcher.wait_for()
    # The page's CSS (red, serif, dashed yellow buttons) does not reach into the widget.
    style = launcher.evaluate(
        "node => [getComputedStyle(node).backgroundColor, getComputedStyle(node).letterSpacing]"
    )
    assert style == ["rgb(31, 111, 235)", "normal"]
    shot(page, "widget-closed")

    launcher.click()
    panel = page.get_by_role("dialog", name="線上客服")
    panel.get_by_text("您好！我是智慧客服，有什麼可以幫您？").wait_for()
    question = panel.get_by_label("請輸入您的問題…")
    assert question.evaluate("node => node === node.getRootNode().activeElement")
    shot(page, "widget-open")

    # A Traditional Chinese question; the answer streams in, then shows its source.
    watch_streamed_texts(page)
    question.fill(QUESTION)
    question.press("Enter")
    panel.locator(".msg.user", has_text=QUESTION).wait_for()
    answer = panel.locator(".msg.assistant", has=page.locator("details"))
    answer.wait_for()
    assert page.evaluate("() => window.seenTexts.size") >= 3, "the answer did not arrive as a stream"
    assert "七天" in answer.locator(".body").inner_text()
    sources = answer.locator("details")
    assert "資料來源" in sources.locator("summary").inner_text()
    passage = sources.locator("p").first
    assert not passage.is_visible()
    sources.locator("summary").click()
    assert passage.locator("strong").inner_text() == "returns"
    assert "未拆封" in passage.inner_text()
    conversation = Conversation.objects.get(channel="widget")
    assert conversation.contact == Visitor.objects.get().contact

    # Thumbs up, then changed to down: one rating, the last one.
    answer.get_by_role("button", name="有幫助", exact=True).click()
    panel.get_by_text("感謝您的回饋。").first.wait_for()
    assert answer.get_by_role("button", name="有幫助", exact=True).get_attribute("aria-pressed") == "true"
    assert Feedback.objects.get().rating == "up"
    answer.get_by_role("button", name="沒有幫助").click()
    answer.locator('button[aria-pressed="true"][aria-label="沒有幫助"]').wait_for()
    assert answer.get_by_role("button", name="有幫助", exact=True).get_attribute("aria-pressed") == "false"
    assert Feedback.objects.get().rating == "down"
    shot(page, "widget-answering")
    if os.environ.get("UPDATE_README_IMAGES") == "1":
        # Only on request: a test run must not rewrite a tracked file.
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_IMAGE))

    # A reload (or a visit next week) continues the same visitor and conversation.
    page.reload()
    page.get_by_role("button", name="線上客服").click()
    panel.locator(".msg.user", has_text=QUESTION).wait_for()
    again = panel.locator(".msg.assistant", has=page.locator("details"))
    again.wait_for()
    assert "七天" in again.locator(".body").inner_text()
    assert again.locator('button[aria-pressed="true"][aria-label="沒有幫助"]').count() == 1
    assert Visitor.objects.count() == 1 and Conversation.objects.count() == 1

    # Talk to a person: a notice while waiting.
    panel.get_by_role("button", name="轉接真人客服").click()
    panel.get_by_text("已為您轉接真人客服，請稍候，您可以繼續留言。").wait_for()
    conversation.refresh_from_db()
    assert conversation.status == "handoff"

    # An agent signed in to the dashboard in another browser takes it from the inbox, marked as
    # from the website, and replies.
    agent_context = browser.new_context(base_url=live_asgi.http_url, viewport={"width": 1280, "height": 860})
    agent_context.set_default_timeout(TIMEOUT_MS)
    agent = agent_context.new_page()
    sign_in(agent, tenant_a.agent.email)
    agent.get_by_role("link", name="Agent inbox").click()
    item = agent.locator(f'[data-queue-item="{conversation.pk}"]')
    assert "Website" in item.inner_text()
    item.click()
    agent.locator(".bubble-user", has_text=QUESTION).wait_for()
    agent.get_by_role("button", name="Take over").click()
    agent.get_by_label("Reply").fill(REPLY)
    agent.get_by_role("button", name="Send reply").click()
    agent.locator(".bubble-agent", has_text=REPLY).wait_for()

    # The visitor reads it live, without a reload.
    panel.get_by_text("真人客服已加入對話。").wait_for()
    reply = panel.locator(".msg.agent", has_text=REPLY)
    reply.wait_for()
    assert "@" not in reply.locator(".who").inner_text()
    shot(page, "widget-handed-off")
    assert Message.objects.filter(conversation=conversation, role="agent", content=REPLY).exists()
    agent_context.close()
    page.context.close()


def test_a_page_of_an_origin_the_widget_does_not_allow_gets_no_session(browser, live_asgi, tenant_a, shop):
    shop_widget(tenant_a, shop, live_asgi)
    with HostPageServer(title="別人的網站") as elsewhere:
        elsewhere.snippet = shop.snippet  # the key copied onto a site it was not made for
        page = visitor_page(browser)
        page.goto(elsewhere.origin)
        page.get_by_role("button", name="線上客服").click()
        panel = page.get_by_role("dialog", name="線上客服")
        panel.get_by_text("此網頁目前無法使用線上客服。").wait_for()
        assert panel.get_by_label("請輸入您的問題…").is_disabled()
        shot(page, "widget-unavailable")
        page.context.close()
    assert not Visitor.objects.exists()


def test_the_panel_fills_a_phone_screen_and_speaks_english_to_an_english_browser(
    browser, live_asgi, tenant_a, shop
):
    shop_widget(tenant_a, shop, live_asgi)
    page = visitor_page(browser, locale="en-US", viewport={"width": 390, "height": 780})
    page.goto(shop.origin)
    page.get_by_role("button", name="Chat with us").click()
    panel = page.get_by_role("dialog", name="Customer service")
    panel.get_by_text("您好！我是智慧客服，有什麼可以幫您？").wait_for()
    box = panel.bounding_box()
    assert box["x"] == 0 and box["width"] == 390 and box["height"] == 780
    assert panel.get_by_role("button", name="Send").is_visible()
    assert panel.get_by_role("button", name="Close chat").is_visible()
    shot(page, "widget-phone")
    # Escape closes the panel and gives the focus back to the launcher.
    page.keyboard.press("Escape")
    assert panel.is_hidden()
    page.context.close()


def test_the_answer_comes_over_server_sent_events_when_websockets_are_blocked(
    browser, live_asgi, tenant_a, knowledge_a, shop
):
    shop_widget(tenant_a, shop, live_asgi)
    page = visitor_page(browser)
    # A proxy that refuses WebSockets: every socket to the platform closes at once.
    page.route_web_socket(f"{live_asgi.ws_url}/ws/widget/**", lambda socket: socket.close(code=1011))
    streams = []
    page.on("request", lambda request: streams.append(request.url) if "/chat/stream" in request.url else None)
    page.goto(shop.origin)
    page.get_by_role("button", name="線上客服").click()
    panel = page.get_by_role("dialog", name="線上客服")
    panel.get_by_text("您好！我是智慧客服，有什麼可以幫您？").wait_for()
    question = panel.get_by_label("請輸入您的問題…")
    question.fill("運費怎麼算？")
    question.press("Enter")
    answer = panel.locator(".msg.assistant", has=page.locator("details"))
    answer.wait_for()
    assert "運費" in answer.locator(".body").inner_text()
    assert streams == [f"{live_asgi.http_url}/v1/widget/chat/stream"]
    # The conversation goes on over the stream.
    question.fill("離島運費多少？")
    question.press("Enter")
    panel.locator(".msg.assistant", has=page.locator("details")).nth(1).wait_for()
    assert Conversation.objects.get().messages.filter(role="user").count() == 2
    page.context.close()


def test_the_demo_page_of_make_run_answers_under_the_platforms_own_policy(
    browser, live_asgi, eager_ingestion, monkeypatch, capsys
):
    """`seed_demo` as `make run` runs it, on the live server's port: the printed demo page loads,
    the widget gets a session on the platform's own origin (its strict CSP included) and answers
    from the demo document."""
    monkeypatch.setenv("PORT", str(urlsplit(live_asgi.http_url).port))
    call_command("seed_demo")
    widget = Widget.objects.get()
    demo_url = f"{live_asgi.http_url}/widget/demo/?key={widget.public_key}"
    assert demo_url in capsys.readouterr().out
    page = visitor_page(browser)
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security" in message.text else None,
    )
    page.goto(demo_url)
    page.get_by_role("button", name="線上客服").click()
    panel = page.get_by_role("dialog", name="線上客服")
    panel.get_by_text("您好！我是示範企業的智慧客服，請問有什麼可以幫您？").wait_for()
    question = panel.get_by_label("請輸入您的問題…")
    question.fill("退貨要幾天內申請？")
    question.press("Enter")
    answer = panel.locator(".msg.assistant", has=page.locator("details"))
    answer.wait_for()
    assert "七天" in answer.locator(".body").inner_text()
    assert answer.locator("details strong").text_content() == "示範企業客服須知"
    assert violations == []
    shot(page, "widget-demo-page")
    page.context.close()
