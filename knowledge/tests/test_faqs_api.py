"""Curated answers through the API: staff read, tenant admins write, CSV import and export."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge import faq_services
from knowledge.models import Faq
from tenants.models import AuditEvent

pytestmark = pytest.mark.django_db


def url(people, suffix: str = "") -> str:
    return f"/v1/tenants/{people.tenant.pk}/faqs{suffix}"


def upload(people, data: bytes, role: str = "tenant_admin", name: str = "faq.csv"):
    return people.client(role).post(
        url(people, "/import"),
        {"file": SimpleUploadedFile(name, data, content_type="text/csv")},
        format="multipart",
    )


def test_an_admin_adds_a_pair_and_staff_read_it(tenant_a):
    response = tenant_a.client("tenant_admin").post(
        url(tenant_a),
        {
            "question": " 營業時間？ ",
            "alternatives": ["幾點開門", "", "營業時間"],
            "answer": "每天 9:00–18:00。",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["question"] == "營業時間？" and body["alternatives"] == ["幾點開門"]
    assert body["enabled"] is True and body["hit_count"] == 0
    faq = Faq.objects.get(pk=body["id"])
    assert faq.embedding_model and len(bytes(faq.embeddings)) > 0  # indexed for dense matching
    assert AuditEvent.objects.filter(action="faq.create", target_id=str(faq.pk)).exists()

    listed = tenant_a.client("agent").get(url(tenant_a))
    assert listed.status_code == 200 and [item["id"] for item in listed.json()["results"]] == [faq.pk]
    assert tenant_a.client("agent").get(url(tenant_a, f"/{faq.pk}")).json()["answer"] == "每天 9:00–18:00。"


def test_the_same_question_in_simplified_is_a_duplicate(tenant_a):
    faq_services.faq_create(tenant=tenant_a.tenant, question="營業時間？", answer="9 點")
    response = tenant_a.client("tenant_admin").post(
        url(tenant_a), {"question": "营业时间", "answer": "10 點"}, format="json"
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "duplicate"


def test_an_admin_changes_and_deletes_a_pair_with_audit(tenant_a):
    faq = faq_services.faq_create(tenant=tenant_a.tenant, question="營業時間？", answer="9 點")
    client = tenant_a.client("tenant_admin")
    changed = client.patch(url(tenant_a, f"/{faq.pk}"), {"enabled": False, "answer": "10 點"}, format="json")
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert changed.json()["answer"] == "10 點"
    assert client.delete(url(tenant_a, f"/{faq.pk}")).status_code == 204
    assert not Faq.objects.filter(pk=faq.pk).exists()
    assert {"faq.update", "faq.delete"} <= set(AuditEvent.objects.values_list("action", flat=True))


@pytest.mark.parametrize("role", ["agent", "end_user"])
def test_only_admins_write(role, tenant_a):
    faq = faq_services.faq_create(tenant=tenant_a.tenant, question="營業時間？", answer="9 點")
    client = tenant_a.client(role)
    assert client.post(url(tenant_a), {"question": "q", "answer": "a"}, format="json").status_code == 403
    assert client.patch(url(tenant_a, f"/{faq.pk}"), {"answer": "x"}, format="json").status_code == 403
    assert client.delete(url(tenant_a, f"/{faq.pk}")).status_code == 403
    assert upload(tenant_a, b"question,answer\nq,a\n", role=role).status_code == 403
    assert Faq.objects.get(pk=faq.pk).answer == "9 點"


def test_end_users_do_not_read_the_pairs(tenant_a):
    assert tenant_a.client("end_user").get(url(tenant_a)).status_code == 403
    assert tenant_a.client("end_user").get(url(tenant_a, "/export")).status_code == 403


def test_tenant_b_never_reaches_tenant_a_pairs(tenant_a, tenant_b):
    faq = faq_services.faq_create(tenant=tenant_a.tenant, question="營業時間？", answer="9 點")
    admin_b = tenant_b.client("tenant_admin")
    on_b = f"/v1/tenants/{tenant_b.tenant.pk}/faqs"
    assert admin_b.get(f"{on_b}/{faq.pk}").status_code == 404
    assert admin_b.patch(f"{on_b}/{faq.pk}", {"answer": "x"}, format="json").status_code == 404
    assert admin_b.delete(f"{on_b}/{faq.pk}").status_code == 404
    assert admin_b.get(on_b).json()["count"] == 0
    assert admin_b.get(url(tenant_a)).status_code == 404
    assert Faq.objects.get(pk=faq.pk).answer == "9 點"


def test_bad_input_is_400(tenant_a):
    client = tenant_a.client("tenant_admin")
    missing = client.post(url(tenant_a), {"question": "營業時間？"}, format="json")
    assert missing.status_code == 400 and "answer" in missing.json()["error"]["details"]
    too_long = client.post(url(tenant_a), {"question": "問" * 501, "answer": "a"}, format="json")
    assert too_long.status_code == 400


CSV_ROWS = [
    ["question", "answer", "alternatives"],
    ["營業時間？", "每天 9:00–18:00。", "幾點開門|幾點關門"],
    ["退貨政策", "七天內可退貨，運費由本公司負擔。", ""],
    ["", "沒有問題的答案", ""],
    ["只有問題", "", ""],
]


def csv_text(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp950"])
def test_csv_import_reports_each_row_in_utf8_with_or_without_bom_and_big5(encoding, tenant_a):
    faq_services.faq_create(tenant=tenant_a.tenant, question="退貨政策？", answer="舊的答案")
    response = upload(tenant_a, csv_text(CSV_ROWS).encode(encoding))
    assert response.status_code == 200, response.content
    report = response.json()
    assert (report["created"], report["updated"], report["refused"]) == (1, 1, 2)
    assert [(row["row"], row["status"]) for row in report["rows"]] == [
        (2, "created"),
        (3, "updated"),
        (4, "refused"),
        (5, "refused"),
    ]
    assert report["rows"][2]["error"] and report["rows"][3]["error"]
    hours = Faq.objects.get(tenant=tenant_a.tenant, question="營業時間？")
    assert hours.alternatives == ["幾點開門", "幾點關門"] and hours.answer == "每天 9:00–18:00。"
    assert Faq.objects.get(tenant=tenant_a.tenant, question="退貨政策？").answer.startswith("七天內可退貨")
    assert AuditEvent.objects.filter(action="faq.import", tenant=tenant_a.tenant).exists()


def test_csv_import_refuses_a_file_that_is_not_text_or_lacks_the_columns(tenant_a):
    binary = upload(tenant_a, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, name="x.csv")
    assert binary.status_code == 415 and binary.json()["error"]["code"] == "unsupported_file_type"
    no_header = upload(tenant_a, b"foo,bar\n1,2\n")
    assert no_header.status_code == 400
    too_large = upload(tenant_a, b"question,answer\n" + b"a,b\n" * (600 * 1024))
    assert too_large.status_code == 413
    assert Faq.objects.count() == 0


def test_export_is_csv_with_a_bom_that_excel_reads_back(tenant_a, tenant_b):
    faq_services.faq_create(
        tenant=tenant_a.tenant, question="營業時間？", answer="每天 9:00–18:00。", alternatives=["幾點開門"]
    )
    faq_services.faq_create(tenant=tenant_b.tenant, question="B 的問題", answer="B 的答案")
    response = tenant_a.client("agent").get(url(tenant_a, "/export"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["question", "answer", "alternatives"]
    assert rows[1][:3] == ["營業時間？", "每天 9:00–18:00。", "幾點開門"] and len(rows) == 2
    # What was exported imports again unchanged.
    again = upload(tenant_a, response.content)
    assert again.json()["updated"] == 1 and again.json()["created"] == 0
