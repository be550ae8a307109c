"""The people of the tests: users with one known password, API clients holding their tokens, and
the staff and customers of a tenant (the `tenant_a` and `tenant_b` fixtures)."""

from dataclasses import dataclass

from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import token_pair_for
from tenants.models import Membership, Tenant

PASSWORD = "correct-horse-battery-staple"


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
