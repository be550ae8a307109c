"""The dashboard's widget pages: tenant admins list, create, edit, delete and rotate; the form
validates as the API does; the identity secret is shown once; the snippet; the live preview
framed under the strict policy; agents and end users refused, other tenants' widgets absent."""

import hashlib
import hmac

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session

from tenants.errors import TooManyRequests
from tenants.models import AuditEvent
from testsupport.dashboard import dashboard_url, signed_in
from widgets import limits, services, views
from widgets.api import WidgetInput
from widgets.forms import WidgetForm
from widgets.models import Widget

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example.com.tw"


def form_data(**changes) -> dict:
    data = {
        "name": "官網客服",
        "allowed_origins": f"{SHOP}\nhttp://localhost:8080",
        "greeting": "您好！請問需要什麼協助？",
        "locale": "zh-Hant",
        "enabled": "on",
        "daily_message_cap": "500",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def widget_of(people, name="官網客服", **fields) -> Widget:
    widget, _secret = services.widget_create(
        tenant=people.tenant, name=name, allowed_origins=[SHOP], greeting="您好！", **fields
    )
    return widget


def audited(people, action: str) -> int:
    return AuditEvent.objects.filter(tenant=people.tenant, action=action).count()


def in_any_session(text: str) -> bool:
    sessions = list(Session.objects.all())
    assert sessions  # the dashboard's sessions are in the database: this looks where they are
    return any(text in str(session.get_decoded()) or text in session.session_data for session in sessions)


# --- the list ---------------------------------------------------------------------------------


def test_admin_lists_the_tenants_widgets_with_todays_messages_against_the_cap(tenant_a, tenant_b):
    widget = widget_of(tenant_a, daily_message_cap=40)
    unlimited = widget_of(tenant_a, name="Unlimited", daily_message_cap=0, identity_verification=True)
    widget_of(tenant_b, name="B shop")
    visitor, _token = services.visitor_session_open(
        widget=widget, visitor_id=None, visitor_hash=None, resume_token=None
    )
    for _message in range(3):
        limits.visitor_message_admit(visitor=visitor)
    unlimited_visitor, _token = services.visitor_session_open(
        widget=unlimited, visitor_id=None, visitor_hash=None, resume_token=None
    )
    limits.visitor_message_admit(visitor=unlimited_visitor)  # counted too, though nothing caps it

    response = signed_in(tenant_a.tenant_admin).get(dashboard_url("widgets", tenant_a))

    assert response.status_code == 200
    html = response.content.decode()
    assert "官網客服" in html and "Unlimited" in html and "B shop" not in html
    assert SHOP in html
    rows = {row.pk: row for row in response.context["widgets"]}
    assert rows[widget.pk].messages_today == 3
    assert rows[unlimited.pk].messages_today == 1
    assert "3 of 40" in html and "1 (no cap)" in html
    assert html.count('badge badge-ok">Enabled') == 2
    assert ">On<" in html and ">Off<" in html


def test_a_widget_at_its_cap_says_so(tenant_a):
    widget = widget_of(tenant_a, daily_message_cap=2)
    visitor, _token = services.visitor_session_open(
        widget=widget, visitor_id=None, visitor_hash=None, resume_token=None
    )
    limits.visitor_message_admit(visitor=visitor)
    limits.visitor_message_admit(visitor=visitor)
    with pytest.raises(TooManyRequests):
        limits.visitor_message_admit(visitor=visitor)
    html = signed_in(tenant_a.tenant_admin).get(dashboard_url("widgets", tenant_a)).content.decode()
    assert "2 of 2" in html and "Cap reached" in html


def test_the_list_is_paginated_in_a_constant_number_of_queries(tenant_a, django_assert_max_num_queries):
    for number in range(27):
        widget_of(tenant_a, name=f"Widget {number:02d}")
    client = signed_in(tenant_a.tenant_admin)
    client.get(dashboard_url("widgets", tenant_a))  # the session and language settle
    with django_assert_max_num_queries(8):
        first = client.get(dashboard_url("widgets", tenant_a))
    assert len(first.context["widgets"]) == 25
    second = client.get(dashboard_url("widgets", tenant_a) + "?page=2")
    assert [widget.name for widget in second.context["widgets"]] == ["Widget 25", "Widget 26"]
    assert "Page 2 of 2" in second.content.decode()


def test_the_sidebar_shows_the_widget_page_to_admins_only(tenant_a):
    url = dashboard_url("widgets", tenant_a)
    admin = signed_in(tenant_a.tenant_admin).get(dashboard_url("overview", tenant_a))
    agent = signed_in(tenant_a.agent).get(dashboard_url("overview", tenant_a))
    assert url in {item["url"] for item in admin.context["navigation"]}
    assert url not in {item["url"] for item in agent.context["navigation"]}


# --- create and edit ----------------------------------------------------------------------------


def test_admin_creates_a_widget_and_sees_its_snippet(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    assert client.get(dashboard_url("widget-create", tenant_a)).status_code == 200

    response = client.post(
        dashboard_url("widget-create", tenant_a),
        form_data(allowed_origins=f"HTTPS://Shop.Example.com.tw:443/\n\n{SHOP}\nhttp://localhost:8080"),
    )

    widget = Widget.objects.get(tenant=tenant_a.tenant)
    assert response.status_code == 302
    assert response["Location"] == dashboard_url("widget", tenant_a, widget_id=widget.pk)
    assert widget.allowed_origins == [SHOP, "http://localhost:8080"]
    assert (widget.greeting, widget.locale, widget.daily_message_cap) == (
        "您好！請問需要什麼協助？",
        "zh-Hant",
        500,
    )
    assert widget.enabled and not widget.identity_verification
    assert audited(tenant_a, "widget.create") == 1

    page = client.get(response["Location"])
    html = page.content.decode()
    snippet = f'<script src="http://testserver/widget.js" data-key="{widget.public_key}" data-locale="zh-Hant" async></script>'
    assert page.context["snippet"] == snippet
    assert "&lt;script src=&quot;http://testserver/widget.js&quot;" in html  # shown, not run
    assert 'data-copy="#widget-snippet"' in html
    assert "visitor_hash = hex(HMAC-SHA256(identity_secret, visitor_id))" in html
    # The API hands out the same tag.
    api = tenant_a.client("tenant_admin").get(f"/v1/tenants/{tenant_a.tenant.pk}/widgets/{widget.pk}")
    assert api.json()["embed_snippet"] == snippet


def test_admin_edits_a_widget(tenant_a):
    widget = widget_of(tenant_a)
    client = signed_in(tenant_a.tenant_admin)
    form = client.get(dashboard_url("widget-update", tenant_a, widget_id=widget.pk))
    assert form.status_code == 200
    assert form.context["form"]["allowed_origins"].value() == SHOP

    response = client.post(
        dashboard_url("widget-update", tenant_a, widget_id=widget.pk),
        form_data(name="新名稱", allowed_origins="https://www.example.com", locale="en", enabled=None),
    )

    assert response.status_code == 302
    widget.refresh_from_db()
    assert (widget.name, widget.allowed_origins, widget.locale) == (
        "新名稱",
        ["https://www.example.com"],
        "en",
    )
    assert not widget.enabled
    assert audited(tenant_a, "widget.update") == 1


INVALID_ORIGINS = [
    "",
    "   \n  ",
    "shop.example.com",
    "https://shop.example.com/path",
    "https://shop.example.com?x=1",
    "ftp://shop.example.com",
    "null",
    "https://user:pw@shop.example.com",
    "https://shop.example.com:99999",
    "\n".join(f"https://shop{number}.example.com" for number in range(21)),
]


@pytest.mark.parametrize("origins", INVALID_ORIGINS)
def test_invalid_origins_show_form_errors(tenant_a, origins):
    response = signed_in(tenant_a.tenant_admin).post(
        dashboard_url("widget-create", tenant_a), form_data(allowed_origins=origins)
    )
    assert response.status_code == 400
    assert response.context["form"].errors["allowed_origins"]
    assert 'class="field-error"' in response.content.decode()
    assert not Widget.objects.filter(tenant=tenant_a.tenant).exists()


def test_an_invalid_edit_changes_nothing_and_names_the_bad_origin(tenant_a):
    widget = widget_of(tenant_a)
    response = signed_in(tenant_a.tenant_admin).post(
        dashboard_url("widget-update", tenant_a, widget_id=widget.pk),
        form_data(allowed_origins=f"{SHOP}\nshop.example.com", daily_message_cap="-1"),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "shop.example.com is not an origin" in errors["allowed_origins"][0]
    assert "daily_message_cap" in errors
    widget.refresh_from_db()
    assert widget.allowed_origins == [SHOP] and widget.name == "官網客服"


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"greeting": "x" * 501},
        {"locale": "fr"},
        {"daily_message_cap": 1_000_001},
        {"daily_message_cap": 0},
        {"allowed_origins": ["https://a.example.com", "https://A.example.com:443"]},
        {"allowed_origins": ["http://[::1]:8000"]},
        {"allowed_origins": ["https://a.example.com/"]},
        *[{"allowed_origins": [origin]} for origin in INVALID_ORIGINS if origin.strip()],
    ],
)
def test_the_form_accepts_exactly_what_the_api_accepts(fields):
    api_data = {
        "name": "Shop",
        "allowed_origins": [SHOP],
        "greeting": "Hi",
        "locale": "en",
        "daily_message_cap": 10,
        **fields,
    }
    form_input = {**api_data, "allowed_origins": "\n".join(api_data["allowed_origins"])}
    form = WidgetForm(form_input)
    serializer = WidgetInput(data=api_data)
    assert form.is_valid() == serializer.is_valid(), (form.errors, serializer.errors)
    if form.is_valid():
        assert form.cleaned_data["allowed_origins"] == serializer.validated_data["allowed_origins"]


# --- the identity secret, shown once --------------------------------------------------------------


def shown_secret(response) -> str | None:
    """The identity secret a widget page shows, checked against its HTML."""
    secret = response.context["identity_secret"]
    html = response.content.decode()
    if secret is None:
        assert "data-identity-secret" not in html
    else:
        assert f'value="{secret}" data-identity-secret' in html
    return secret


def test_the_secret_is_shown_once_after_creation(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    response = client.post(dashboard_url("widget-create", tenant_a), form_data(identity_verification="on"))

    widget = Widget.objects.get(tenant=tenant_a.tenant)
    assert response.status_code == 302  # a reload of the page that follows posts nothing again
    page = client.get(response["Location"])
    secret = shown_secret(page)
    assert secret.startswith("whsec_")
    assert services.visitor_hash_valid(widget=widget, visitor_id="C-1", visitor_hash=hmac_hex(secret, "C-1"))
    # Never kept in plain text: not in the session, not in the stored widget; and not shown again.
    assert not in_any_session(secret)
    assert secret not in widget.identity_secret_encrypted
    assert shown_secret(client.get(response["Location"])) is None


def test_a_widget_without_verification_shows_no_secret(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    response = client.post(dashboard_url("widget-create", tenant_a), form_data())
    assert shown_secret(client.get(response["Location"])) is None


def test_the_secret_is_not_shown_on_another_widgets_page_nor_later(tenant_a):
    other = widget_of(tenant_a, name="Other", identity_verification=True)
    client = signed_in(tenant_a.tenant_admin)
    created = client.post(dashboard_url("widget-create", tenant_a), form_data(identity_verification="on"))
    assert shown_secret(client.get(dashboard_url("widget", tenant_a, widget_id=other.pk))) is None
    # The mark is for a few minutes only.
    session = client.session
    session[views.REVEAL_ON_NEXT_VIEW]["at"] -= views.REVEAL_WITHIN_SECONDS + 1
    session.save()
    assert shown_secret(client.get(created["Location"])) is None
    assert views.REVEAL_ON_NEXT_VIEW not in client.session


def test_turning_verification_on_shows_the_new_secret_once(tenant_a):
    widget = widget_of(tenant_a)
    client = signed_in(tenant_a.tenant_admin)
    edit = dashboard_url("widget-update", tenant_a, widget_id=widget.pk)
    response = client.post(edit, form_data(identity_verification="on"))
    assert response.status_code == 302
    secret = shown_secret(client.get(response["Location"]))
    assert secret.startswith("whsec_")
    # Saving again keeps the secret and shows none.
    again = client.post(edit, form_data(identity_verification="on"))
    assert shown_secret(client.get(again["Location"])) is None
    widget.refresh_from_db()
    assert services.visitor_hash_valid(widget=widget, visitor_id="C-1", visitor_hash=hmac_hex(secret, "C-1"))


def test_admin_rotates_the_secret_and_the_old_one_stops_verifying(tenant_a):
    widget, old_secret = services.widget_create(
        tenant=tenant_a.tenant, name="會員", allowed_origins=[SHOP], identity_verification=True
    )
    client = signed_in(tenant_a.tenant_admin)
    page = client.get(dashboard_url("widget", tenant_a, widget_id=widget.pk)).content.decode()
    rotate = dashboard_url("widget-rotate-secret", tenant_a, widget_id=widget.pk)
    assert f'action="{rotate}" data-confirm=' in page
    assert client.get(rotate).status_code == 405

    response = client.post(rotate, follow=True)

    assert response.redirect_chain == [(dashboard_url("widget", tenant_a, widget_id=widget.pk), 302)]
    new_secret = shown_secret(response)
    assert new_secret not in (None, old_secret)
    widget.refresh_from_db()
    assert services.visitor_hash_valid(
        widget=widget, visitor_id="C-1", visitor_hash=hmac_hex(new_secret, "C-1")
    )
    assert not services.visitor_hash_valid(
        widget=widget, visitor_id="C-1", visitor_hash=hmac_hex(old_secret, "C-1")
    )
    assert audited(tenant_a, "widget.rotate_secret") == 1
    assert not in_any_session(new_secret)


def hmac_hex(secret: str, visitor_id: str) -> str:
    return hmac.new(secret.encode(), visitor_id.encode(), hashlib.sha256).hexdigest()


# --- delete ------------------------------------------------------------------------------------


def test_admin_deletes_a_widget_after_the_confirm_dialog(tenant_a):
    widget = widget_of(tenant_a)
    client = signed_in(tenant_a.tenant_admin)
    delete = dashboard_url("widget-delete", tenant_a, widget_id=widget.pk)
    page = client.get(dashboard_url("widget", tenant_a, widget_id=widget.pk)).content.decode()
    assert f'action="{delete}" data-confirm="Delete the widget 官網客服?' in page
    assert 'id="confirm-dialog"' in page

    response = client.post(delete)

    assert response.status_code == 302
    assert response["Location"] == dashboard_url("widgets", tenant_a)
    assert not Widget.objects.filter(pk=widget.pk).exists()
    assert audited(tenant_a, "widget.delete") == 1
    assert client.get(dashboard_url("widget", tenant_a, widget_id=widget.pk)).status_code == 404


# --- who may --------------------------------------------------------------------------------------


def widget_pages(people, widget) -> list[tuple[str, str]]:
    one = {"widget_id": widget.pk}
    return [
        ("get", dashboard_url("widgets", people)),
        ("get", dashboard_url("widget-create", people)),
        ("post", dashboard_url("widget-create", people)),
        ("get", dashboard_url("widget-preview", people)),
        ("get", dashboard_url("widget", people, **one)),
        ("get", dashboard_url("widget-update", people, **one)),
        ("post", dashboard_url("widget-update", people, **one)),
        ("post", dashboard_url("widget-rotate-secret", people, **one)),
        ("post", dashboard_url("widget-delete", people, **one)),
    ]


@pytest.mark.parametrize("role", ["agent", "end_user"])
def test_agents_and_end_users_are_refused(tenant_a, role):
    widget = widget_of(tenant_a)
    client = signed_in(tenant_a.user(role))
    for method, url in widget_pages(tenant_a, widget):
        response = getattr(client, method)(url, form_data(name="taken over"))
        assert response.status_code == 403, (method, url)
    widget.refresh_from_db()
    assert widget.name == "官網客服"
    assert Widget.objects.filter(tenant=tenant_a.tenant).count() == 1
    assert audited(tenant_a, "widget.update") + audited(tenant_a, "widget.rotate_secret") == 0


def test_platform_admins_open_the_pages(tenant_a, platform_admin):
    widget = widget_of(tenant_a)
    client = signed_in(platform_admin)
    assert client.get(dashboard_url("widgets", tenant_a)).status_code == 200
    assert client.get(dashboard_url("widget", tenant_a, widget_id=widget.pk)).status_code == 200


def test_another_tenants_widget_is_not_found(tenant_a, tenant_b):
    widget = widget_of(tenant_b, name="B shop", identity_verification=True)
    client = signed_in(tenant_a.tenant_admin)
    for method, url in widget_pages(tenant_a, widget)[4:]:
        response = getattr(client, method)(url, form_data(name="taken over"))
        assert response.status_code == 404, (method, url)
    widget.refresh_from_db()
    assert widget.name == "B shop"
    assert audited(tenant_b, "widget.rotate_secret") + audited(tenant_b, "widget.delete") == 0


def test_another_tenants_admin_cannot_open_this_tenants_pages(tenant_a, tenant_b):
    widget = widget_of(tenant_a)
    client = signed_in(tenant_b.tenant_admin)
    for method, url in widget_pages(tenant_a, widget):
        assert getattr(client, method)(url, form_data()).status_code == 404, (method, url)


# --- the live preview -------------------------------------------------------------------------


def test_the_pages_frame_a_preview_that_runs_widget_js_without_a_session(tenant_a):
    widget = widget_of(tenant_a, locale="zh-Hant")
    client = signed_in(tenant_a.tenant_admin)
    page = client.get(dashboard_url("widget", tenant_a, widget_id=widget.pk))
    preview_src = page.context["preview_url"]
    assert f'src="{preview_src.replace("&", "&amp;")}"' in page.content.decode()
    assert page["X-Frame-Options"] == "DENY"

    preview = client.get(preview_src)

    assert preview.status_code == 200
    html = preview.content.decode()
    assert '<script src="/widget.js" data-preview data-greeting="您好！" data-locale="zh-Hant" async>' in html
    # Framed by the dashboard itself only, under the same strict script and style policy.
    assert preview["X-Frame-Options"] == "SAMEORIGIN"
    policy = preview["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "'unsafe-inline'" not in policy


def test_the_preview_shows_what_is_typed_escaped_and_checked(tenant_a):
    client = signed_in(tenant_a.tenant_admin)
    url = dashboard_url("widget-preview", tenant_a)
    html = client.get(url, {"greeting": '"><script>alert(1)</script>', "locale": "en"}).content.decode()
    assert 'data-greeting="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" data-locale="en"' in html
    # A language it does not know, or a greeting too long: the default (the browser's language).
    refused = client.get(url, {"greeting": "x" * 501, "locale": "fr"})
    assert refused.status_code == 200
    assert 'data-greeting="" async' in refused.content.decode()
    auto = client.get(url, {"greeting": "Hi", "locale": "auto"}).content.decode()
    assert 'data-greeting="Hi" async' in auto


def test_widget_js_has_a_preview_mode_that_sends_nothing(anonymous):
    script = anonymous.get("/widget.js").content.decode()
    assert 'hasAttribute("data-preview")' in script
    assert 'if (PREVIEW) { bubble("user", text); input.value = ""; notice(t("preview")); return; }' in script


# --- Traditional Chinese -----------------------------------------------------------------------


def test_the_pages_read_in_traditional_chinese(tenant_a):
    widget = widget_of(tenant_a)
    client = signed_in(tenant_a.tenant_admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hant"
    listing = client.get(dashboard_url("widgets", tenant_a)).content.decode()
    assert '<html lang="zh-hant">' in listing
    assert "網站客服小工具" in listing and "允許的來源" in listing and "今日訊息" in listing
    assert "Website widget" not in listing
    detail = client.get(dashboard_url("widget", tenant_a, widget_id=widget.pk)).content.decode()
    assert "放到您的網站" in detail and "身分驗證" in detail and "刪除小工具" in detail
    invalid = client.post(
        dashboard_url("widget-create", tenant_a), form_data(allowed_origins="shop.example.com")
    )
    assert invalid.status_code == 400
    assert invalid.context["form"].errors["allowed_origins"] == [
        "shop.example.com 不是來源網址：請填寫 scheme://host[:port]，後面不要加路徑。"
    ]
