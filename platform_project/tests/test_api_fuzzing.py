"""Schemathesis against the platform's own OpenAPI schema, with every kind of credential: each
role's JWT and a website visitor's token. No answer is a server error and every documented answer
matches its schema; a credential of the wrong kind (a visitor token on a member endpoint, a
member's JWT on a visitor endpoint) is refused (401, 403 or 404) in the error format. The number
of requests per credential is reported at the end of the run (`API fuzzing: N generated
requests (…)`)."""

from collections import Counter

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.services import token_pair_for
from tenants.models import Membership
from tenants.roles import PLATFORM_ADMIN
from testsupport.widgets import SHOP
from widgets.api import WidgetSessionThrottle
from widgets.services import widget_create

ROLES = [PLATFORM_ADMIN, "tenant_admin", "agent", "end_user"]
VISITOR = "visitor"
CREDENTIALS = [*ROLES, VISITOR]
# The security scheme of each kind of credential in the schema.
SCHEME = {**dict.fromkeys(ROLES, "jwtAuth"), VISITOR: "visitorToken"}
# Requests sent per operation and credential (kept small: the suite stays a habit to run).
EXAMPLES = 8
REQUESTS: Counter = Counter()


# Loaded when the module is collected: the schema view needs no database.
schema = schemathesis.openapi.from_wsgi("/v1/schema/", get_wsgi_application())


@pytest.fixture(autouse=True)
def _keep_the_test_connection(widgets_of_a):
    """Django's WSGI handler closes the database connection after each request (as a server
    should); inside a test that would end the test's transaction. Django's own test client
    turns this off the same way, and back on after its request: so this comes after the
    fixtures that use it (the visitor's session)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def widgets_of_a(tenant_a, visitor_of_a, settings, monkeypatch):
    """Tenant A's widgets: the visitor's (no identity verification) and one that verifies, for
    the sessions the fuzzing opens. The open internet's limits are lifted: a 429 after the
    tenth message would hide what the other examples reach."""
    settings.WIDGET_VISITOR_MESSAGES_PER_MINUTE = 0
    rates = {**WidgetSessionThrottle.THROTTLE_RATES, "widget_session": "100000/minute"}
    monkeypatch.setattr(WidgetSessionThrottle, "THROTTLE_RATES", rates)
    visitor_of_a.widget.daily_message_cap = 0
    visitor_of_a.widget.save()
    verified, _secret = widget_create(
        tenant=tenant_a.tenant, name="會員客服", allowed_origins=[SHOP], identity_verification=True
    )
    return [visitor_of_a.widget, verified]


@pytest.fixture
def credentials_of(tenant_a, platform_admin, visitor_of_a, milvus_uri):
    def headers_for(credential: str) -> dict[str, str]:
        if credential == VISITOR:
            return {"Authorization": f"Bearer {visitor_of_a.token}"}
        user = platform_admin if credential == PLATFORM_ADMIN else tenant_a.user(credential)
        membership = Membership.objects.filter(user=user, tenant=tenant_a.tenant).first()
        access, _ = token_pair_for(user=user, membership=membership)
        return {"Authorization": f"Bearer {access}"}

    return headers_for


def _schemes(case) -> set[str | None]:
    """The credentials an operation takes (None: it may be called without one)."""
    security = case.operation.definition.raw.get("security")
    if security is None:
        security = schema.raw_schema.get("security", [])
    return {next(iter(requirement), None) for requirement in security} or {None}


def _assert_refused(response) -> None:
    assert response.status_code in {401, 403, 404}, (response.status_code, response.text[:500])
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["message"], error


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_makes_the_api_fail(case, credentials_of, tenant_a, visitor_of_a, widgets_of_a):
    parameters = case.path_parameters or {}
    widget_api = case.path.startswith("/v1/widget/")
    if "tenant_id" in parameters:
        # Aim at a tenant that exists and the caller belongs to: deeper than a 404 at the door.
        parameters["tenant_id"] = str(tenant_a.tenant.pk)
    if widget_api:
        # The visitor's own conversation and answer, the same way.
        if "id" in parameters:
            parameters["id"] = str(visitor_of_a.conversation.pk)
        if "message_id" in parameters:
            parameters["message_id"] = visitor_of_a.answer.pk
    schemes = _schemes(case)
    for turn, credential in enumerate(CREDENTIALS):  # the same request with every credential
        REQUESTS[credential] += 1
        headers = credentials_of(credential)
        if widget_api:
            headers["Origin"] = SHOP  # from a page the widgets allow: only the token decides
            if isinstance(case.body, dict) and "public_key" in case.body:
                # A widget that exists, verifying identities or not, in turn.
                case.body["public_key"] = widgets_of_a[turn % 2].public_key
        if SCHEME[credential] in schemes or None in schemes:
            case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])
        else:
            _assert_refused(case.call(headers=headers))
