"""Deleting a tenant removes what lives outside its database rows: its vectors in every
collection, its keyword statistics and its stored files, in a task queued on commit and audited;
the other tenant keeps all of its own."""

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import Client

from knowledge import vector_index
from knowledge.embedding import get_embedder
from knowledge.models import KeywordCorpus, TermFrequency
from tenants.models import AuditEvent, Tenant
from testsupport.documents import RETURNS_POLICY, WARRANTY, collection, stored_files, uploaded
from testsupport.environment import committed
from testsupport.people import client_for

pytestmark = pytest.mark.django_db


def vectors_of(tenant_id) -> int:
    return vector_index.count(collection=collection(), tenant_id=tenant_id)


def dense_search(tenant_id) -> list:
    query = get_embedder().embed_query("退貨 warranty")
    return vector_index.search_dense(
        collection=collection(), tenant_id=tenant_id, vector=np.asarray(query), limit=10
    )


def assert_tenant_data_gone(tenant_id) -> None:
    assert vectors_of(tenant_id) == 0
    assert dense_search(tenant_id) == []
    assert not (Path(settings.MEDIA_ROOT) / "tenants" / str(tenant_id)).exists()
    assert not KeywordCorpus.objects.filter(tenant_id=tenant_id).exists()
    assert not TermFrequency.objects.filter(tenant_id=tenant_id).exists()
    purge = AuditEvent.objects.get(action="tenant.purge", details__tenant_id=str(tenant_id))
    # Every collection of the platform is searched (other tests may have made more).
    assert collection() in purge.details["collections"]
    assert purge.details["files"] >= 1


def assert_tenant_data_intact(people, document) -> None:
    document.refresh_from_db()
    assert vectors_of(people.tenant.pk) == document.chunk_count > 0
    assert len(dense_search(people.tenant.pk)) == document.chunk_count
    assert len(stored_files(people.tenant)) == 1
    assert KeywordCorpus.objects.get(tenant=people.tenant).chunk_count == document.chunk_count
    assert TermFrequency.objects.filter(tenant=people.tenant).exists()


def test_deleting_a_tenant_removes_its_vectors_files_and_statistics(
    tenant_a, tenant_b, platform_admin, eager_ingestion
):
    uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    kept = uploaded(tenant_b, "warranty.txt", WARRANTY.encode())
    tenant_id = tenant_a.tenant.pk
    assert vectors_of(tenant_id) > 0 and stored_files(tenant_a.tenant)

    with committed():
        response = client_for(platform_admin).delete(f"/v1/tenants/{tenant_id}")
    assert response.status_code == 204
    assert not Tenant.objects.filter(pk=tenant_id).exists()
    assert AuditEvent.objects.filter(action="tenant.delete", details__name="Tenant A").exists()
    assert_tenant_data_gone(tenant_id)
    assert_tenant_data_intact(tenant_b, kept)


def test_deleting_a_tenant_in_the_django_admin_removes_its_data_too(
    tenant_a, tenant_b, platform_admin, eager_ingestion
):
    uploaded(tenant_a, "policy.txt", RETURNS_POLICY.encode())
    kept = uploaded(tenant_b, "warranty.txt", WARRANTY.encode())
    tenant_id = tenant_a.tenant.pk
    admin = Client()
    admin.force_login(platform_admin)
    with committed():
        response = admin.post(f"/admin/tenants/tenant/{tenant_id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Tenant.objects.filter(pk=tenant_id).exists()
    assert AuditEvent.objects.filter(action="tenant.delete", details__name="Tenant A").exists()
    assert_tenant_data_gone(tenant_id)
    assert_tenant_data_intact(tenant_b, kept)
