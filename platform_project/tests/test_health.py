import pytest
from django.test import override_settings

from testsupport.people import PASSWORD, client_for

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


def test_readyz_is_503_when_the_vector_index_is_down(client, platform_admin):
    with override_settings(MILVUS_URI="http://127.0.0.1:9"):
        response = client_for(platform_admin).get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["vector_index"]["status"] == "down"
    assert body["checks"]["vector_index"]["error"]
    assert body["checks"]["database"]["status"] == "ok"


def test_readyz_shows_anyone_the_states_but_not_the_error_text(client, tenant_a):
    """The error text names hosts, ports and drivers: operators only. The states stay public,
    so a load balancer still reads them."""
    with override_settings(MILVUS_URI="http://127.0.0.1:9"):
        anonymous = client.get("/readyz")
        member = tenant_a.client("tenant_admin").get("/readyz")
    for response in (anonymous, member):
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["vector_index"]["status"] == "down"
        assert all("error" not in check for check in checks.values()), checks
        assert "127.0.0.1" not in response.content.decode()


def test_readyz_shows_operators_the_error_text_by_token_and_by_session(client, platform_admin):
    with override_settings(MILVUS_URI="http://127.0.0.1:9"):
        by_token = client_for(platform_admin).get("/readyz")
        assert client.login(email=platform_admin.email, password=PASSWORD)
        by_session = client.get("/readyz")
    for response in (by_token, by_session):
        assert response.status_code == 503
        assert response.json()["checks"]["vector_index"]["error"]


def test_readyz_ignores_a_forged_token(client):
    with override_settings(MILVUS_URI="http://127.0.0.1:9"):
        response = client.get("/readyz", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 503
    assert "error" not in response.json()["checks"]["vector_index"]
