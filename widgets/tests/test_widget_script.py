"""`/widget.js` is served by the platform, small, and usable from any site."""

import gzip

import pytest

pytestmark = pytest.mark.django_db


def test_the_script_is_served_as_javascript_small_and_loadable_from_other_sites(anonymous):
    response = anonymous.get("/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    body = response.content
    assert b"attachShadow" in body and b"PlatformWidget" in body and b"/ws/widget/" in body
    assert len(gzip.compress(body, 9)) < 12_000
