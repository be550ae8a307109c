import subprocess
import sys

import pytest

from testsupport.environment import ROOT


def test_the_openapi_schema_is_valid_and_warning_free():
    result = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_schema_describes_every_contract_endpoint(client):
    response = client.get("/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = set(response.json()["paths"]) if response["Content-Type"].startswith("application/json") else None
    if paths is None:
        import yaml

        paths = set(yaml.safe_load(response.content)["paths"])
    for path in [
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/auth/me",
        "/v1/auth/invitations/accept",
        "/v1/auth/password/reset",
        "/v1/auth/password/reset/confirm",
        "/v1/tenants",
        "/v1/tenants/{tenant_id}",
        "/v1/tenants/{tenant_id}/members",
        "/v1/tenants/{tenant_id}/members/{id}",
        "/v1/tenants/{tenant_id}/invitations",
        "/v1/tenants/{tenant_id}/invitations/{id}",
    ]:
        assert path in paths, sorted(paths)


@pytest.mark.django_db
def test_docs_page_loads_its_assets_locally(client):
    response = client.get("/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
