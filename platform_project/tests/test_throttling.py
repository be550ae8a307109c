"""Sign-ups are throttled per client address, uploads per tenant: 429 with Retry-After."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tenants.throttling import RegistrationThrottle
from testsupport.api import assert_error

pytestmark = pytest.mark.django_db


def test_sign_ups_past_the_rate_are_refused_with_retry_after(anonymous, tenant_a, monkeypatch):
    monkeypatch.setattr(RegistrationThrottle, "rate", "2/hour", raising=False)

    def register(number):
        body = {
            "email": f"customer{number}@example.com",
            "password": "a-long-passphrase-2026",
            "name": "顧客",
            "tenant_id": str(tenant_a.tenant.pk),
            "role": "end_user",
        }
        return anonymous.post("/v1/auth/register", body, format="json")

    assert [register(n).status_code for n in range(2)] == [201, 201]
    refused = register(3)
    assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) > 0


def test_uploads_are_counted_per_tenant(tenant_a, tenant_b, milvus_uri):
    for people in (tenant_a, tenant_b):
        people.tenant.plan.upload_files_per_hour = 1
        people.tenant.plan.save()

    def upload(people, name):
        return people.client("tenant_admin").post(
            f"/v1/tenants/{people.tenant.pk}/documents/upload",
            {"file": SimpleUploadedFile(name, f"{name}: returns within seven days.".encode())},
            format="multipart",
        )

    assert upload(tenant_a, "first.txt").status_code == 202
    assert_error(upload(tenant_a, "second.txt"), 429, "rate_limited")
    assert upload(tenant_b, "first.txt").status_code == 202  # another tenant's bucket
