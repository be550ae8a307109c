"""The dashboard's Content-Security-Policy: scripts, styles and connections from the platform's
own origin only, so that an injected <script>, event handler or style cannot run. The templates
must satisfy it: no inline script, no inline event handler, no inline style."""

import re

import pytest

from testsupport.environment import ROOT
from testsupport.people import PASSWORD

pytestmark = pytest.mark.django_db

TEMPLATES = ROOT / "templates"
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
JSON_DATA = re.compile(r"""type=["']application/json["']""", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"""\son[a-z]+\s*=\s*["']""", re.IGNORECASE)
INLINE_STYLE = re.compile(r"""<style\b|\sstyle\s*=\s*["']""", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


def template_files():
    return sorted(TEMPLATES.rglob("*.html"))


def test_no_template_has_inline_script_event_handlers_or_styles():
    offences = []
    for template in template_files():
        text = template.read_text()
        for pattern, what in [
            (INLINE_SCRIPT, "inline <script>"),
            (EVENT_HANDLER, "inline event handler"),
            (INLINE_STYLE, "inline style"),
            (JAVASCRIPT_URL, "javascript: URL"),
        ]:
            for match in pattern.finditer(text):
                if what == "inline <script>" and JSON_DATA.search(match.group(0)):
                    continue  # data, never executed: allowed by the policy
                line = text.count("\n", 0, match.start()) + 1
                offences.append(f"{template.relative_to(ROOT)}:{line}: {what}")
    assert template_files()
    assert offences == []


@pytest.mark.parametrize("path", ["/dashboard/login/", "/dashboard/password/"])
def test_dashboard_pages_carry_a_strict_policy(client, tenant_a, path):
    client.login(email=tenant_a.tenant_admin.email, password=PASSWORD)
    response = client.get(path, follow=True)
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]


def test_every_tenant_dashboard_page_carries_the_policy(client, tenant_a):
    client.login(email=tenant_a.tenant_admin.email, password=PASSWORD)
    base = f"/dashboard/t/{tenant_a.tenant.pk}"
    for path in [
        "/",
        "/documents/",
        "/conversations/",
        "/inbox/",
        "/members/",
        "/usage/",
        "/settings/",
        "/widgets/",
        "/widgets/new/",
        "/widgets/preview/",
        "/line/",
        "/faqs/",
        "/faqs/new/",
        "/faqs/import/",
        "/analytics/unanswered/",
    ]:
        response = client.get(base + path)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response["Content-Security-Policy"], path


def test_the_api_docs_relax_only_their_own_page(client):
    docs = client.get("/v1/docs/")
    assert docs.status_code == 200
    assert not INLINE_SCRIPT.search(docs.content.decode().replace('type="application/json"', "")), (
        "the docs page must load its script from a URL"
    )
    policy = directives(docs["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    login = client.get("/dashboard/login/")
    assert "'unsafe-inline'" not in login["Content-Security-Policy"]
