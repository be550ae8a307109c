"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against the live
ASGI server: sign in, upload by drag and drop and watch the list refresh itself, ask the bot in
live chat and watch the answer stream with its citation, answer a handed-off customer as an
agent in a second browser, switch to Traditional Chinese. Each page is saved as a screenshot
under test-artifacts/screenshots/, and with UPDATE_README_IMAGES=1 the overview also as
docs/images/dashboard.png (the README's picture)."""

import json
import os

import pytest

from accounts.services import token_pair_for
from conversations.models import Message
from knowledge.models import Document
from tenants.models import Membership
from testsupport.browser import TIMEOUT_MS, new_page, shot, sign_in
from testsupport.documents import RETURNS_POLICY, WARRANTY
from testsupport.environment import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

README_IMAGE = ROOT / "docs" / "images" / "dashboard.png"


def drop_file(page, name: str, content: str):
    """Drop a file on the upload zone as a person dragging it from their desktop would."""
    page.evaluate(
        """([name, content]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([content], name, {type: "text/plain"}));
            const zone = document.querySelector("[data-dropzone]");
            zone.dispatchEvent(new DragEvent("dragenter", {dataTransfer: transfer, bubbles: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
        }""",
        [name, content],
    )


def end_user_socket(server, people):
    from websockets.sync.client import connect

    membership = Membership.objects.get(user=people.end_user, tenant=people.tenant)
    access, _refresh = token_pair_for(user=people.end_user, membership=membership)
    return connect(f"{server.ws_url}/ws/tenants/{people.tenant.pk}/chat/?token={access}")


def receive_until(socket, kind: str) -> dict:
    while True:
        event = json.loads(socket.recv(timeout=60))
        if event["type"] == kind:
            return event


def test_a_tenant_admin_and_an_agent_work_through_the_dashboard(
    browser, live_asgi, tenant_a, eager_ingestion, settings
):
    # The offline answer comes at once: every delta its own frame, so that the page is seen
    # drawing a stream (coalesced frames are tested in conversations/tests/test_websocket.py).
    settings.CHAT_STREAM_COALESCE_MS = 0
    server = live_asgi
    tenant_id = tenant_a.tenant.pk
    admin = new_page(browser, server)

    admin.goto("/dashboard/login/")
    shot(admin, "login")
    sign_in(admin, tenant_a.tenant_admin.email)
    assert admin.get_by_test_id("tenant-name").inner_text() == "Tenant A"

    # Upload by drag and drop; ingestion runs eagerly, so the file is ready when the page returns.
    admin.get_by_role("link", name="Documents", exact=True).click()
    admin.get_by_text("No documents yet.").wait_for()
    drop_file(admin, "warranty.md", WARRANTY)
    assert admin.locator("[data-file-list] li").inner_text().startswith("warranty.md")
    admin.get_by_role("button", name="Upload", exact=True).click()
    admin.get_by_text("warranty.md: uploaded; it is being indexed.").wait_for()
    # Each file's outcome stays listed until the admin asks for the refreshed list.
    admin.get_by_role("button", name="Show the documents").click()
    row = admin.locator("tr", has_text="warranty")
    assert row.locator('[data-field="status"]').inner_text() == "Ready"

    # A document still processing: its row refreshes itself until it is ready.
    admin.set_input_files(
        "#upload-files",
        files=[{"name": "returns.txt", "mimeType": "text/plain", "buffer": RETURNS_POLICY.encode()}],
    )
    admin.get_by_role("button", name="Upload", exact=True).click()
    admin.get_by_text("returns.txt: uploaded; it is being indexed.").wait_for()
    returns = Document.objects.get(tenant=tenant_a.tenant, filename="returns.txt")
    Document.objects.filter(pk=returns.pk).update(status="processing", stage="embedding", progress=0.4)
    admin.reload()
    returns_row = admin.locator(f'tr[data-document-id="{returns.pk}"]')
    assert returns_row.locator('[data-field="status"]').inner_text() == "Processing"
    shot(admin, "documents")
    Document.objects.filter(pk=returns.pk).update(status="ready", stage="done", progress=1.0)
    returns_row.locator('[data-field="status"]', has_text="Ready").wait_for()

    # Deleting asks first: cancelling keeps the document, confirming deletes it.
    returns_row.get_by_role("button", name="Delete").click()
    dialog = admin.locator("#confirm-dialog")
    assert "returns" in dialog.locator("#confirm-text").inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    assert Document.objects.filter(pk=returns.pk).exists()
    returns_row.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Confirm").click()
    admin.get_by_text("“returns” was deleted.").wait_for()
    assert not Document.objects.filter(pk=returns.pk).exists()

    # The search tester shows the three modes.
    admin.goto(f"/dashboard/t/{tenant_id}/knowledge/search/?query=How+long+is+the+warranty%3F")
    admin.locator('[data-mode="hybrid"] summary', has_text="warranty").first.wait_for()
    shot(admin, "search-tester")

    # Live chat: the answer streams in, then its citation opens the passage.
    admin.get_by_role("link", name="Live chat").click()
    admin.get_by_text("Connected", exact=True).wait_for()
    admin.evaluate(
        """() => {
            window.seenTexts = new Set();
            new MutationObserver(() => {
                const bubble = document.querySelector(".bubble-assistant .bubble-text");
                if (bubble) window.seenTexts.add(bubble.textContent);
            }).observe(document.querySelector("[data-chat-thread]"), {subtree: true, childList: true, characterData: true});
        }"""
    )
    admin.get_by_label("Your question").fill("How long is the warranty?")
    admin.get_by_role("button", name="Send", exact=True).click()
    answer = admin.locator(".bubble-assistant[data-done]")
    answer.wait_for()
    assert admin.evaluate("() => window.seenTexts.size") >= 3, "the answer did not arrive as a stream"
    citation = answer.locator("details.citation").first
    assert "warranty" in citation.locator("summary").inner_text()
    citation.locator("summary").click()
    assert "two-year limited warranty" in citation.locator(".passage").inner_text()
    shot(admin, "live-chat")

    # An agent, in a second browser, keeps the inbox open; a customer asks for a human.
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0  # the bot finds nothing: the customer wants a person
    agent = new_page(browser, server)
    sign_in(agent, tenant_a.agent.email)
    agent.get_by_role("link", name="Agent inbox").click()
    agent.get_by_text("Nobody is waiting.").wait_for()
    agent.locator("[data-connection]", has_text="Live").wait_for()
    with end_user_socket(server, tenant_a) as customer:
        customer.send(json.dumps({"type": "message", "message": "My order never arrived."}))
        conversation_id = receive_until(customer, "done")["conversation_id"]
        customer.send(json.dumps({"type": "handoff", "conversation_id": conversation_id}))
        receive_until(customer, "status")
        # The queue updates live, without a reload.
        agent.locator(f'[data-queue-item="{conversation_id}"]').click()
        agent.locator(".bubble-user", has_text="My order never arrived.").wait_for()
        agent.get_by_label("Reply").fill("您好，我來幫您查詢訂單。")
        agent.get_by_role("button", name="Send reply").click()
        agent.locator(".bubble-agent", has_text="您好，我來幫您查詢訂單。").wait_for()
        received = receive_until(customer, "agent_message")
        assert received["message"]["content"] == "您好，我來幫您查詢訂單。"
        # The queue shows who holds it now (and, on SQLite, is done reading before the next write).
        agent.locator(f'[data-queue-item="{conversation_id}"]', has_text=tenant_a.agent.email).wait_for()
        # The customer's next message reaches the agent's open conversation live.
        customer.send(
            json.dumps({"type": "message", "message": "謝謝！", "conversation_id": conversation_id})
        )
        agent.locator(".bubble-user", has_text="謝謝！").wait_for()
    shot(agent, "inbox")
    agent.context.close()

    # The admin reviews the conversation, then the other pages.
    admin.goto(f"/dashboard/t/{tenant_id}/conversations/")
    shot(admin, "conversations")
    admin.locator("table a", has_text="My order never arrived.").click()
    admin.get_by_text("您好，我來幫您查詢訂單。").wait_for()
    shot(admin, "conversation-detail")
    for name, path in [
        ("members", "members/"),
        ("settings", "settings/"),
        ("settings-retrieval", "settings/retrieval/"),
        ("usage", "usage/"),
        ("widgets-empty", "widgets/"),
    ]:
        admin.goto(f"/dashboard/t/{tenant_id}/{path}")
        admin.locator("main h1").wait_for()
        shot(admin, name)
    admin.goto(f"/dashboard/t/{tenant_id}/")
    admin.locator(".chart svg").wait_for()
    shot(admin, "overview")
    if os.environ.get("UPDATE_README_IMAGES") == "1":
        # Only on request: a test run must not rewrite a tracked file.
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        admin.screenshot(path=str(README_IMAGE))

    # The language switch: the whole dashboard in Traditional Chinese.
    admin.get_by_label("Language").select_option("zh-hant")
    admin.wait_for_load_state()
    admin.get_by_role("heading", name="總覽").wait_for()
    assert admin.locator("html").get_attribute("lang") == "zh-hant"
    assert admin.get_by_role("link", name="文件").is_visible()
    shot(admin, "overview-zh-hant")
    admin.goto(f"/dashboard/t/{tenant_id}/documents/")
    admin.get_by_role("heading", name="文件").wait_for()
    shot(admin, "documents-zh-hant")
    admin.context.close()


def test_a_phone_sized_screen_gets_a_drawer_menu(browser, live_asgi, tenant_a):
    context = browser.new_context(base_url=live_asgi.http_url, viewport={"width": 390, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, tenant_a.agent.email)
    sidebar = page.locator("#sidebar")
    assert not sidebar.get_by_role("link", name="Documents").is_visible() or sidebar.bounding_box()["x"] < 0
    page.get_by_role("button", name="Menu").click()
    page.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().x >= 0")
    # Agents see no member, usage or upload pages.
    assert sidebar.get_by_role("link", name="Members").count() == 0
    assert sidebar.get_by_role("link", name="Usage").count() == 0
    shot(page, "mobile-menu")
    context.close()


def test_live_chat_renews_its_socket_token_and_stays_in_its_own_conversation(
    browser, live_asgi, tenant_a, settings
):
    """The socket token lives seconds here: the page renews it on the open socket (no
    reconnection), and a customer's handoff heard meanwhile does not redirect the agent's
    next question into the customer's conversation."""
    settings.SOCKET_TOKEN_SECONDS = 4
    settings.CHAT_MIN_KEYWORD_COVERAGE = 2.0
    page = new_page(browser, live_asgi)
    sockets, renewals = [], []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.on(
        "websocket",
        lambda socket: socket.on(
            "framereceived", lambda payload: renewals.append(payload) if '"renewed"' in str(payload) else None
        ),
    )
    sign_in(page, tenant_a.agent.email)
    page.get_by_role("link", name="Live chat").click()
    page.get_by_text("Connected", exact=True).wait_for()
    page.get_by_label("Your question").fill("Hello, is anyone there?")
    page.get_by_role("button", name="Send", exact=True).click()
    page.locator(".bubble-assistant[data-done]").wait_for()

    with end_user_socket(live_asgi, tenant_a) as customer:
        customer.send(json.dumps({"type": "message", "message": "My order never arrived."}))
        customer_conversation = receive_until(customer, "done")["conversation_id"]
        customer.send(json.dumps({"type": "handoff", "conversation_id": customer_conversation}))
        receive_until(customer, "status")

    # Well past the first token's expiry: the page has renewed it on the open socket.
    page.wait_for_timeout(7000)
    page.get_by_label("Your question").fill("And the warranty?")
    page.get_by_role("button", name="Send", exact=True).click()
    page.locator(".bubble-assistant[data-done]").nth(1).wait_for()

    assert len(renewals) >= 2, renewals
    assert len(sockets) == 1, "the socket was closed and reopened"
    assert not page.locator(".bubble-system").count()
    customer_messages = Message.objects.filter(conversation_id=customer_conversation, role="user")
    assert list(customer_messages.values_list("content", flat=True)) == ["My order never arrived."]
    own = Message.objects.filter(author=tenant_a.agent, role="user")
    assert own.count() == 2 and own.values("conversation_id").distinct().count() == 1
    page.context.close()
