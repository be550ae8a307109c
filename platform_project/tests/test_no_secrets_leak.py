"""No endpoint answers with a password hash, a provider API key or its encrypted form."""

import pytest

from accounts.models import User
from llm.models import ProviderConfig
from llm.services import assistant_update
from testsupport.endpoints import ENDPOINTS, call
from testsupport.people import PASSWORD, client_for

API_KEY = "sk-live-do-not-leak-0123456789abcdef"


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.method == "get"], ids=str)
def test_no_read_endpoint_leaks_a_secret(endpoint, tenant_a, platform_admin, objects_of_a):
    assistant_update(
        tenant=tenant_a.tenant,
        data={"providers": [{"kind": "openai", "model": "gpt-4o-mini", "api_key": API_KEY}]},
    )
    encrypted = ProviderConfig.objects.for_tenant(tenant_a.tenant).get().api_key_encrypted
    hashes = list(User.objects.values_list("password", flat=True))
    assert encrypted and all(hashes)

    for user in (platform_admin, tenant_a.tenant_admin, tenant_a.agent, tenant_a.end_user):
        response = call(client_for(user, tenant=tenant_a.tenant), endpoint, objects_of_a)
        body = response.content.decode()
        for secret in [API_KEY, encrypted, *hashes]:
            assert secret not in body, f"{endpoint} answered {user.email} with a secret"


@pytest.mark.django_db
def test_the_current_user_and_login_answers_carry_no_hash(tenant_a, anonymous):

    me = client_for(tenant_a.end_user, tenant=tenant_a.tenant).get("/v1/auth/me").content.decode()
    login = anonymous.post(
        "/v1/auth/login", {"email": tenant_a.end_user.email, "password": PASSWORD}, format="json"
    ).content.decode()
    for body in (me, login):
        assert tenant_a.end_user.password not in body
        assert "password" not in body
