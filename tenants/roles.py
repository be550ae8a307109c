"""The role matrix of DESIGN.md, in one place.

Every API view names the capability an action needs; `HasCapability` looks it up here. Platform
admin is a property of the user (Django staff), the other roles come from a tenant membership.
"""

from enum import Enum

from django.db import models


class Role(models.TextChoices):
    TENANT_ADMIN = "tenant_admin", "Tenant admin"
    AGENT = "agent", "Agent"
    END_USER = "end_user", "End user"


PLATFORM_ADMIN = "platform_admin"


class Capability(Enum):
    MANAGE_TENANTS = "manage_tenants"
    READ_TENANT = "read_tenant"
    UPDATE_TENANT = "update_tenant"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_DOCUMENTS = "manage_documents"
    READ_KNOWLEDGE = "read_knowledge"
    CHAT = "chat"
    READ_CONVERSATIONS = "read_conversations"
    HANDLE_CONVERSATIONS = "handle_conversations"
    DELETE_CONVERSATIONS = "delete_conversations"
    VIEW_USAGE = "view_usage"
    VIEW_AUDIT = "view_audit"


_STAFF = frozenset({PLATFORM_ADMIN, Role.TENANT_ADMIN, Role.AGENT})
_ADMINS = frozenset({PLATFORM_ADMIN, Role.TENANT_ADMIN})
_EVERYONE = frozenset({PLATFORM_ADMIN, Role.TENANT_ADMIN, Role.AGENT, Role.END_USER})

MATRIX: dict[Capability, frozenset[str]] = {
    Capability.MANAGE_TENANTS: frozenset({PLATFORM_ADMIN}),
    Capability.READ_TENANT: _STAFF,
    Capability.UPDATE_TENANT: _ADMINS,
    Capability.MANAGE_MEMBERS: _ADMINS,
    Capability.MANAGE_DOCUMENTS: _ADMINS,
    Capability.READ_KNOWLEDGE: _STAFF,
    Capability.CHAT: _EVERYONE,
    # End users read their own conversations only; the conversation selectors narrow it.
    Capability.READ_CONVERSATIONS: _EVERYONE,
    Capability.HANDLE_CONVERSATIONS: _STAFF,
    # Not in DESIGN.md's matrix: an end user may delete their own conversations (the selectors
    # narrow it), tenant admins any of the tenant's; agents keep the record.
    Capability.DELETE_CONVERSATIONS: frozenset({PLATFORM_ADMIN, Role.TENANT_ADMIN, Role.END_USER}),
    Capability.VIEW_USAGE: _ADMINS,
    Capability.VIEW_AUDIT: _ADMINS,
}


def role_can(role: str | None, capability: Capability) -> bool:
    return role is not None and role in MATRIX[capability]
