"""`make run`'s demo: `seed_demo` gives the demo tenant a website widget allowed on the platform's
own pages, a first document to answer from, and prints where to try the widget and the snippet
to paste; `/widget/demo/` embeds only a widget that allows the platform's own origin."""

import pytest
from django.core.management import call_command

from knowledge.models import Document
from tenants.models import Tenant
from widgets import services
from widgets.models import Widget

pytestmark = pytest.mark.django_db


def seed(capsys, monkeypatch, port: str) -> str:
    monkeypatch.setenv("PORT", port)
    call_command("seed_demo")
    return capsys.readouterr().out


def test_seed_demo_makes_one_widget_and_one_document_and_prints_how_to_try_them(capsys, monkeypatch):
    first = seed(capsys, monkeypatch, "8765")
    widget = Widget.objects.get()
    assert widget.tenant == Tenant.objects.get(name="示範企業 Demo Co.")
    assert widget.enabled and widget.allowed_origins == ["http://127.0.0.1:8765", "http://localhost:8765"]
    assert "Tenant admin:    admin@demo.example.com / demo-admin-2026" in first
    assert f"http://127.0.0.1:8765/widget/demo/?key={widget.public_key}" in first
    assert (
        f'<script src="http://127.0.0.1:8765/widget.js" data-key="{widget.public_key}" async></script>'
        in first
    )
    assert "http://127.0.0.1:8765, http://localhost:8765" in first
    document = Document.objects.get()
    assert document.tenant == widget.tenant and document.title == "示範企業客服須知"
    assert document.status == "pending" and f"Demo document:   {document.title}" in first

    again = seed(capsys, monkeypatch, "8765")
    assert Widget.objects.get().allowed_origins == widget.allowed_origins
    assert Document.objects.count() == 1
    assert f"/widget/demo/?key={widget.public_key}" in again

    # Served on another port: the same widget, allowed there too.
    moved = seed(capsys, monkeypatch, "9000")
    assert Widget.objects.get().public_key == widget.public_key
    assert Widget.objects.get().allowed_origins[2:] == ["http://127.0.0.1:9000", "http://localhost:9000"]
    assert f"http://127.0.0.1:9000/widget/demo/?key={widget.public_key}" in moved


def test_the_demo_page_embeds_a_widget_allowed_on_the_platforms_own_origin(client, tenant_a):
    widget, _secret = services.widget_create(
        tenant=tenant_a.tenant, name="官網客服", allowed_origins=["http://testserver"]
    )
    response = client.get(f"/widget/demo/?key={widget.public_key}")
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<script src="http://testserver/widget.js" data-key="{widget.public_key}" async></script>' in page
    assert "&lt;script src=" in page  # the snippet to copy, shown as text
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("case", ["elsewhere", "disabled", "unknown", "malformed", "missing"])
def test_the_demo_page_shows_no_other_widget(client, tenant_a, case):
    widget, _secret = services.widget_create(
        tenant=tenant_a.tenant,
        name="官網客服",
        allowed_origins=["https://shop.example.com.tw" if case == "elsewhere" else "http://testserver"],
        enabled=case != "disabled",
    )
    key = {"unknown": "pk_" + "x" * 32, "malformed": "<script>", "missing": ""}.get(case, widget.public_key)
    response = client.get("/widget/demo/", {"key": key})
    assert response.status_code == 404
    assert widget.public_key not in response.content.decode()
