"""Curated answers and unanswered questions in a real browser (Debian's Chromium driven by
Playwright) against the live ASGI server: a tenant admin adds a curated answer, asks it in the
dashboard's live chat and gets it word for word; asks what the knowledge lacks and finds the
question in the unanswered list, writes its curated answer from there, and imports a CSV with a
bad row. Screenshots: test-artifacts/screenshots/faq-*.png."""

import pytest

from conversations.models import Message
from knowledge.models import Faq
from testsupport.browser import new_page, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

QUESTION = "What are your opening hours?"
ANSWER = "We are open from 9:00 to 18:00, Monday to Saturday.\nClosed on national holidays."
UNANSWERABLE = "Can I park a rocket at your store on Mars?"
ROCKET_ANSWER = "We have no store on Mars, and no rocket parking anywhere."


def ask(page, question: str, index: int) -> str:
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Send", exact=True).click()
    answer = page.locator(".bubble-assistant[data-done]").nth(index)
    answer.wait_for()
    return answer.locator(".bubble-text").inner_text()


def test_a_curated_answer_is_given_verbatim_and_an_unanswered_question_is_listed(
    browser, live_asgi, tenant_a
):
    tenant_id = tenant_a.tenant.pk
    admin = new_page(browser, live_asgi)
    sign_in(admin, tenant_a.tenant_admin.email)

    # Add the curated answer.
    admin.get_by_role("link", name="Curated answers", exact=True).click()
    admin.get_by_text("No curated answers yet.").wait_for()
    admin.get_by_role("link", name="Add a curated answer").click()
    admin.get_by_label("Question").fill(QUESTION)
    admin.get_by_label("Other ways to ask it").fill("When do you open?\nWhen are you open?")
    admin.get_by_label("Answer").fill(ANSWER)
    admin.get_by_role("button", name="Save").click()
    admin.get_by_text(f"The curated answer “{QUESTION}” was added.").wait_for()
    row = admin.locator("tr", has_text=QUESTION)
    assert "and 2 other ways to ask it" in row.inner_text()
    shot(admin, "faq-list")

    # Ask it in the live chat: the curated text, word for word.
    admin.get_by_role("link", name="Live chat").click()
    admin.get_by_text("Connected", exact=True).wait_for()
    assert ask(admin, "what are your opening hours", 0) == ANSWER
    shot(admin, "faq-live-chat")
    faq = Faq.objects.get(tenant=tenant_a.tenant)
    given = Message.objects.filter(tenant=tenant_a.tenant, role="assistant").get()
    assert (given.grounding, given.faq_id, given.content) == ("faq", faq.pk, ANSWER)

    # Something the knowledge lacks: answered without knowledge, then listed as unanswered.
    ask(admin, UNANSWERABLE, 1)
    last = Message.objects.filter(tenant=tenant_a.tenant, role="assistant").order_by("-created_at").first()
    assert last.grounding == "no_knowledge"
    admin.locator("#sidebar").get_by_role("link", name="Unanswered questions").click()
    entry = admin.locator(f'tr[data-unanswered-question="{UNANSWERABLE}"]')
    entry.wait_for()
    assert QUESTION not in admin.locator("[data-unanswered]").inner_text()
    shot(admin, "faq-unanswered")

    # One click to write its curated answer, prefilled with the question.
    entry.get_by_role("link", name="Write a curated answer for this").click()
    assert admin.get_by_label("Question").input_value() == UNANSWERABLE
    admin.get_by_label("Answer").fill(ROCKET_ANSWER)
    admin.get_by_role("button", name="Save").click()
    admin.get_by_text(f"The curated answer “{UNANSWERABLE}” was added.").wait_for()
    admin.locator("#sidebar").get_by_role("link", name="Unanswered questions").click()
    entry.get_by_text("Now answered").wait_for()

    # An import with a bad row: a report row by row.
    admin.goto(f"/dashboard/t/{tenant_id}/faqs/import/")
    csv_text = (
        "question,answer,alternatives\n"
        "Do you ship abroad?,We ship to Taiwan only.,Do you deliver overseas?\n"
        f"{QUESTION},We are open from 10:00 to 19:00.,\n"
        "A question without an answer,,\n"
    )
    admin.set_input_files(
        "#id_file", files=[{"name": "answers.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}]
    )
    admin.get_by_role("button", name="Import", exact=True).click()
    admin.get_by_text("1 created, 1 updated, 1 refused.").wait_for()
    refused = admin.locator('[data-import-row="4"]')
    assert "Refused" in refused.inner_text() and "The answer is empty." in refused.inner_text()
    shot(admin, "faq-import")
    assert Faq.objects.filter(tenant=tenant_a.tenant).count() == 3

    # The same list in Traditional Chinese.
    admin.goto(f"/dashboard/t/{tenant_id}/faqs/")
    admin.get_by_label("Language").select_option("zh-hant")
    admin.wait_for_load_state()
    admin.get_by_role("heading", name="標準答案").wait_for()
    shot(admin, "faq-list-zh-hant")
    admin.context.close()
