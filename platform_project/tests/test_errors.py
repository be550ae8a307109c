import json

import pytest
from django.test import RequestFactory

from platform_project.errors import server_error
from testsupport.api import assert_error
from testsupport.people import client_for

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_404_in_the_error_format(client):
    assert_error(client.get("/v1/no-such-thing"), 404, "not_found")


def test_unknown_tenant_id_shape_is_404(tenant_a):
    assert_error(tenant_a.client("tenant_admin").get("/v1/tenants/not-a-uuid/members"), 404, "not_found")


def test_wrong_method_is_405(anonymous):
    assert_error(anonymous.get("/v1/auth/login"), 405, "method_not_allowed")


def test_oversized_json_body_is_413(anonymous, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"email": "a@example.com", "password": "x" * 5000})
    response = anonymous.post("/v1/auth/login", data=body, content_type="application/json")
    assert_error(response, 413, "payload_too_large")


def test_server_errors_answer_in_the_error_format():
    response = server_error(RequestFactory().get("/v1/tenants"))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "server_error"


def test_browsers_get_an_html_error_page_outside_the_api(client):
    response = client.get("/dashboard-nowhere/", HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert b"<html" in response.content


def test_chinese_text_is_returned_unescaped(platform_admin):

    response = client_for(platform_admin).post("/v1/tenants", {"name": "好公司"}, format="json")
    assert "好公司".encode() in response.content


@pytest.mark.parametrize(
    "path", ["/v1/no-such-thing", "/v1/tenants/not-a-uuid/members", "/v1/auth/login/extra"]
)
def test_unknown_api_paths_answer_the_error_format_with_debug_on(client, settings, path):
    """Django's HTML debug page (every URL pattern listed) is for the dashboard in development,
    never an API client's answer."""
    settings.DEBUG = True
    response = client.get(path)
    assert_error(response, 404, "not_found")
    assert b"URLconf" not in response.content


def test_an_api_path_missing_its_slash_is_still_redirected(client, settings):
    settings.DEBUG = True
    response = client.get("/v1/docs")
    assert response.status_code == 301
    assert response["Location"] == "/v1/docs/"


def test_browsers_still_get_the_debug_page_outside_the_api_with_debug_on(client, settings):
    settings.DEBUG = True
    response = client.get("/dashboard-nowhere/", HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert b"URLconf" in response.content
