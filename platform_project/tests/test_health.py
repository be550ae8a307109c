import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client, milvus_uri):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert set(checks) == {"database", "cache", "broker", "vector_index"}
    assert all(check["status"] == "ok" for check in checks.values()), checks


def test_readyz_is_503_when_the_vector_index_is_down(client):
    with override_settings(MILVUS_URI="http://127.0.0.1:9"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["vector_index"]["status"] == "down"
    assert body["checks"]["vector_index"]["error"]
    assert body["checks"]["database"]["status"] == "ok"
