"""Shared fixtures: two tenants, each with a user of every role, and a platform admin.

Tenant A's people must never see tenant B's data and the other way round; most tests take both.
"""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import token_pair_for
from tenants.models import Membership, Tenant
from tenants.roles import Role
from tenants.services import membership_create, plan_resolve, tenant_create

PASSWORD = "correct-horse-battery-staple"
ROOT = Path(__file__).resolve().parent


def require_service(name: str, reason: str) -> None:
    """Skip a test whose service is missing on a bare machine; in CI (REQUIRE_SERVICES=1)
    a missing service is a failure, never a silent skip."""
    message = f"service unavailable: {name}: {reason}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    # The production hasher is deliberately slow; the suite hashes hundreds of passwords.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@dataclass
class TenantPeople:
    tenant: Tenant
    tenant_admin: User
    agent: User
    end_user: User

    def user(self, role: str) -> User:
        return getattr(self, role)

    def client(self, role: str) -> APIClient:
        return client_for(self.user(role), tenant=self.tenant)


def make_user(email: str, *, name: str = "", staff: bool = False) -> User:
    if staff:
        return User.objects.create_superuser(email, PASSWORD, name=name)
    return User.objects.create_user(email, PASSWORD, name=name)


def client_for(user: User | None, tenant: Tenant | None = None) -> APIClient:
    """An API client holding a fresh access token of `user` for `tenant`."""
    client = APIClient()
    if user is not None:
        membership = Membership.objects.filter(user=user, tenant=tenant).first() if tenant else None
        access, _refresh = token_pair_for(user=user, membership=membership)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def _tenant_with_people(label: str, plan: str) -> TenantPeople:
    tenant = tenant_create(name=f"Tenant {label}", plan=plan_resolve(name=plan), allow_signup=True)
    people = {}
    for role in Role.values:
        user = make_user(f"{role}.{label.lower()}@example.com", name=f"{role} {label}")
        membership_create(tenant=tenant, user=user, role=role)
        people[role] = user
    return TenantPeople(tenant=tenant, **people)


@pytest.fixture
def tenant_a(db) -> TenantPeople:
    return _tenant_with_people("A", "pro")


@pytest.fixture
def tenant_b(db) -> TenantPeople:
    return _tenant_with_people("B", "free")


@pytest.fixture
def platform_admin(db) -> User:
    return make_user("operator@example.com", name="Operator", staff=True)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory):
    """A Milvus Lite server for the test session, started the way `make run` starts it."""
    port = _free_port()
    data = tmp_path_factory.mktemp("milvus") / "test.db"
    process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, str(ROOT / "manage.py"), "milvus_server", "--port", str(port), "--data", str(data)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None:
            require_service("milvus", f"Milvus Lite exited with status {process.returncode}")
        time.sleep(0.2)
    else:
        process.kill()
        require_service("milvus", "Milvus Lite did not open its port within 30 s")
    uri = f"http://127.0.0.1:{port}"
    with override_settings(MILVUS_URI=uri):
        yield uri
    process.terminate()
    process.wait(timeout=10)
