"""Schemathesis against the platform's own OpenAPI schema, as every role: no answer is a server
error and every documented answer matches its schema. The number of requests is reported at
the end of the run (`API fuzzing: N generated requests`)."""

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

ROLES = [PLATFORM_ADMIN, "tenant_admin", "agent", "end_user"]
# Requests sent per operation and role (kept small: the suite stays a habit to run).
EXAMPLES = 8
REQUESTS: Counter = Counter()


# Loaded when the module is collected: the schema view needs no database.
schema = schemathesis.openapi.from_wsgi("/v1/schema/", get_wsgi_application())


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Django's WSGI handler closes the database connection after each request (as a server
    should); inside a test that would end the test's transaction. Django's own test client
    turns this off the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def as_role(request, tenant_a, platform_admin, milvus_uri):
    def headers_for(role: str) -> dict[str, str]:
        user = platform_admin if role == PLATFORM_ADMIN else tenant_a.user(role)
        membership = Membership.objects.filter(user=user, tenant=tenant_a.tenant).first()
        access, _ = token_pair_for(user=user, membership=membership)
        return {"Authorization": f"Bearer {access}"}

    return headers_for


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_makes_the_api_fail(case, as_role, tenant_a):
    if "tenant_id" in (case.path_parameters or {}):
        # Aim at a tenant that exists and the caller belongs to: deeper than a 404 at the door.
        case.path_parameters["tenant_id"] = str(tenant_a.tenant.pk)
    for role in ROLES:  # the same request from every role
        REQUESTS[role] += 1
        case.call_and_validate(
            headers=as_role(role), checks=[not_a_server_error, response_schema_conformance]
        )
