"""Dashboard pages of curated answers: the list (search, filter, pagination), add, edit, delete,
the CSV import's row-by-row report and its refusals, the export; staff read, tenant admins
write, another tenant's pair is 404, bad input is a readable 4xx, never a 500."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from knowledge import faq_services
from knowledge.models import Faq
from tenants.models import AuditEvent
from testsupport.dashboard import dashboard_url, signed_in

pytestmark = pytest.mark.django_db

HOURS_ANSWER = "每天 9:00–18:00，國定假日休息。"


@pytest.fixture
def hours_faq(tenant_a):
    return faq_services.faq_create(
        tenant=tenant_a.tenant, question="營業時間？", alternatives=["幾點開門"], answer=HOURS_ANSWER
    )


def faq_url(name: str, people, faq) -> str:
    return dashboard_url(name, people, faq_id=faq.pk)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def csv_file(rows, *, encoding="utf-8-sig", name="faqs.csv") -> SimpleUploadedFile:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode(encoding), content_type="text/csv")


def test_an_admin_adds_a_pair_and_sees_it_listed(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    form = client.get(dashboard_url("faq-create", tenant_a))
    assert form.status_code == 200
    response = client.post(
        dashboard_url("faq-create", tenant_a),
        {
            "question": "  退貨要在幾天內申請？ ",
            "alternatives": "可以退貨嗎\n\n  退貨期限 \n可以退貨嗎",
            "answer": "商品到貨後七天內可申請退貨。",
            "enabled": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert messages_of(response) == ["The curated answer “退貨要在幾天內申請？” was added."]
    faq = Faq.objects.get(tenant=tenant_a.tenant)
    assert faq.question == "退貨要在幾天內申請？" and faq.enabled
    assert faq.alternatives == ["可以退貨嗎", "退貨期限"]
    html = response.content.decode()
    assert "退貨要在幾天內申請？" in html and "and 2 other ways to ask it" in html
    assert AuditEvent.objects.filter(tenant=tenant_a.tenant, action="faq.create").exists()


def test_the_new_form_is_prefilled_from_an_unanswered_question(tenant_a):
    response = signed_in(tenant_a.tenant_admin).get(
        dashboard_url("faq-create", tenant_a), {"question": "  火星 車票怎麼買 "}
    )
    assert response.context["form"].initial["question"] == "火星 車票怎麼買"
    assert 'value="火星 車票怎麼買"' in response.content.decode()


def test_an_admin_edits_disables_and_deletes_a_pair(tenant_a, hours_faq):
    client = signed_in(tenant_a.tenant_admin)
    page = client.get(faq_url("faq-edit", tenant_a, hours_faq))
    assert page.status_code == 200 and HOURS_ANSWER in page.content.decode()
    saved = client.post(
        faq_url("faq-edit", tenant_a, hours_faq),
        {
            "question": "營業時間？",
            "alternatives": "幾點開門\r\n幾點關門",
            "answer": "每天 10 點開門。\r\n週日休息。",
        },
    )
    assert saved.status_code == 302
    hours_faq.refresh_from_db()
    # Unchecked means disabled; the browser's CRLF line breaks are kept as plain ones.
    assert (hours_faq.answer, hours_faq.enabled) == ("每天 10 點開門。\n週日休息。", False)
    assert hours_faq.alternatives == ["幾點開門", "幾點關門"]

    deleted = client.post(faq_url("faq-delete", tenant_a, hours_faq), follow=True)
    assert messages_of(deleted) == [
        "The curated answer “營業時間？” was saved.",
        "The curated answer “營業時間？” was deleted.",
    ]
    assert not Faq.objects.filter(pk=hours_faq.pk).exists()
    assert {"faq.update", "faq.delete"} <= set(
        AuditEvent.objects.filter(tenant=tenant_a.tenant).values_list("action", flat=True)
    )


def test_bad_forms_are_400_with_the_reason_beside_the_field(tenant_a, hours_faq):
    client = signed_in(tenant_a.tenant_admin)
    empty = client.post(dashboard_url("faq-create", tenant_a), {"question": "", "answer": ""})
    assert empty.status_code == 400
    assert set(empty.context["form"].errors) == {"question", "answer"}
    duplicate = client.post(
        dashboard_url("faq-create", tenant_a), {"question": "营业时间", "answer": "另一個答案"}
    )
    assert duplicate.status_code == 400
    assert duplicate.context["form"].errors["question"] == [
        "A curated answer with this question already exists."
    ]
    too_many = client.post(
        faq_url("faq-edit", tenant_a, hours_faq),
        {"question": "營業時間？", "answer": "a", "alternatives": "\n".join(f"問法 {n}" for n in range(21))},
    )
    assert too_many.status_code == 400 and "alternatives" in too_many.context["form"].errors
    too_long = client.post(dashboard_url("faq-create", tenant_a), {"question": "問" * 501, "answer": "a"})
    assert too_long.status_code == 400
    assert Faq.objects.filter(tenant=tenant_a.tenant).count() == 1
    assert Faq.objects.get(pk=hours_faq.pk).answer == HOURS_ANSWER


def test_the_list_searches_filters_and_pages_in_few_queries(tenant_a, django_assert_max_num_queries):
    for number in range(30):
        Faq.objects.create(
            tenant=tenant_a.tenant,
            question=f"問題 {number}",
            question_key=f"问题{number}",
            answer=f"答案 {number}",
            enabled=number % 3 != 0,
        )
    client = signed_in(tenant_a.agent)
    with django_assert_max_num_queries(12):
        first = client.get(dashboard_url("faqs", tenant_a))
    assert len(first.context["page"].object_list) == 25
    assert first.context["page"].paginator.count == 30
    second = client.get(dashboard_url("faqs", tenant_a), {"page": 2})
    assert len(second.context["page"].object_list) == 5
    found = client.get(dashboard_url("faqs", tenant_a), {"search": "答案 7"})
    assert [faq.question for faq in found.context["page"]] == ["問題 7"]
    disabled = client.get(dashboard_url("faqs", tenant_a), {"enabled": "false"})
    assert disabled.context["page"].paginator.count == 10
    nothing = client.get(dashboard_url("faqs", tenant_a), {"search": "不存在的字"})
    assert "No curated answer matches these filters." in nothing.content.decode()
    # Nonsense filters are ignored, not a crash.
    assert client.get(dashboard_url("faqs", tenant_a), {"enabled": "maybe", "page": "x"}).status_code == 200


def test_agents_read_but_do_not_write(tenant_a, hours_faq):
    client = signed_in(tenant_a.agent)
    listed = client.get(dashboard_url("faqs", tenant_a))
    assert listed.status_code == 200 and "營業時間？" in listed.content.decode()
    assert "Add a curated answer" not in listed.content.decode()
    read = client.get(faq_url("faq-edit", tenant_a, hours_faq))
    assert read.status_code == 200 and read.context["can_edit"] is False
    assert all(field.disabled for field in read.context["form"].fields.values())
    assert client.get(dashboard_url("faq-export", tenant_a)).status_code == 200
    refused = [
        client.get(dashboard_url("faq-create", tenant_a)),
        client.post(dashboard_url("faq-create", tenant_a), {"question": "q", "answer": "a"}),
        client.post(faq_url("faq-edit", tenant_a, hours_faq), {"question": "q", "answer": "a"}),
        client.post(faq_url("faq-delete", tenant_a, hours_faq)),
        client.get(dashboard_url("faq-import", tenant_a)),
        client.post(
            dashboard_url("faq-import", tenant_a), {"file": csv_file([["question", "answer"], ["q", "a"]])}
        ),
    ]
    assert [response.status_code for response in refused] == [403] * len(refused)
    assert Faq.objects.get(pk=hours_faq.pk).answer == HOURS_ANSWER
    assert Faq.objects.filter(tenant=tenant_a.tenant).count() == 1


def test_end_users_see_none_of_it(tenant_a, hours_faq):
    client = signed_in(tenant_a.end_user)
    for name in ("faqs", "faq-export"):
        assert client.get(dashboard_url(name, tenant_a)).status_code == 403
    assert client.get(faq_url("faq-edit", tenant_a, hours_faq)).status_code == 403


def test_another_tenants_pair_is_404_and_untouched(tenant_a, tenant_b, hours_faq):
    client = signed_in(tenant_b.tenant_admin)
    on_b = {"tenant_id": tenant_b.tenant.pk, "faq_id": hours_faq.pk}
    assert client.get(reverse("dashboard:faq-edit", kwargs=on_b)).status_code == 404
    assert (
        client.post(reverse("dashboard:faq-edit", kwargs=on_b), {"question": "q", "answer": "a"}).status_code
        == 404
    )
    assert client.post(reverse("dashboard:faq-delete", kwargs=on_b)).status_code == 404
    # Tenant A's own pages are not found for B's admin at all.
    assert client.get(dashboard_url("faqs", tenant_a)).status_code == 404
    assert client.get(faq_url("faq-edit", tenant_a, hours_faq)).status_code == 404
    listed = client.get(dashboard_url("faqs", tenant_b))
    assert "營業時間？" not in listed.content.decode()
    exported = client.get(dashboard_url("faq-export", tenant_b)).content.decode("utf-8-sig")
    assert "營業時間" not in exported
    assert Faq.objects.get(pk=hours_faq.pk).answer == HOURS_ANSWER


def test_the_import_reports_each_row_created_updated_or_refused_and_why(tenant_a, hours_faq):
    rows = [
        ["問題", "答案", "其他問法"],
        ["退貨政策", "七天內可退貨。", "可以退貨嗎|退貨期限"],
        ["營業時間", "每天 10 點開門。", ""],
        ["", "沒有問題的答案", ""],
        ["只有問題", "", ""],
        ["問" * 501, "答案", ""],
    ]
    response = signed_in(tenant_a.tenant_admin).post(
        dashboard_url("faq-import", tenant_a), {"file": csv_file(rows, encoding="cp950")}
    )
    assert response.status_code == 200
    report = response.context["report"]
    assert (report["created"], report["updated"], report["refused"]) == (1, 1, 3)
    html = response.content.decode()
    assert "1 created, 1 updated, 3 refused." in html
    assert [(row["row"], row["status"]) for row in report["rows"]] == [
        (2, "created"),
        (3, "updated"),
        (4, "refused"),
        (5, "refused"),
        (6, "refused"),
    ]
    for text in (
        "The question is empty.",
        "The answer is empty.",
        "The question is longer than 500 characters.",
    ):
        assert text in html
    assert 'data-import-row="4" data-status="refused"' in html
    assert Faq.objects.get(pk=hours_faq.pk).answer == "每天 10 點開門。"
    assert Faq.objects.get(tenant=tenant_a.tenant, question="退貨政策").alternatives == [
        "可以退貨嗎",
        "退貨期限",
    ]


@pytest.mark.parametrize(
    ("upload", "status", "says"),
    [
        (None, 400, "This field is required."),
        (SimpleUploadedFile("empty.csv", b""), 400, "The submitted file is empty."),
        (
            SimpleUploadedFile("no-answer.csv", b"question,alternatives\nq,x\n"),
            400,
            "The first row must name the columns",
        ),
        (
            SimpleUploadedFile("no-header.csv", "營業時間？,9 點\n".encode()),
            400,
            "The first row must name the columns",
        ),
        (
            SimpleUploadedFile("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4),
            415,
            "Upload a CSV file",
        ),
        (
            SimpleUploadedFile("big.csv", b"question,answer\n" + b"q,a\n" * 600_000),
            413,
            "The file is too large",
        ),
    ],
    ids=["missing", "empty", "broken-header", "no-header", "binary", "too-large"],
)
def test_a_file_refused_as_a_whole_is_said_clearly(upload, status, says, tenant_a):
    data = {"file": upload} if upload is not None else {}
    response = signed_in(tenant_a.tenant_admin).post(dashboard_url("faq-import", tenant_a), data)
    assert response.status_code == status
    assert says in response.content.decode()
    assert not Faq.objects.filter(tenant=tenant_a.tenant).exists()


def test_the_import_says_so_in_traditional_chinese(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    client.cookies["django_language"] = "zh-hant"
    rows = [["question", "answer"], ["營業時間？", ""]]
    response = client.post(dashboard_url("faq-import", tenant_a), {"file": csv_file(rows)})
    html = response.content.decode()
    assert response.status_code == 200
    assert "匯入" in html and "Refused" not in html and "The answer is empty." not in html


def test_the_export_is_the_import_format_with_a_bom(tenant_a, hours_faq):
    response = signed_in(tenant_a.agent).get(dashboard_url("faq-export", tenant_a))
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["question", "answer", "alternatives"]
    assert rows[1][:3] == ["營業時間？", HOURS_ANSWER, "幾點開門"]
