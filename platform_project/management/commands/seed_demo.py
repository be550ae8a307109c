"""Create the demo tenant, its tenant admin and a platform admin, once. Idempotent: existing
accounts keep their passwords."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from tenants.models import Membership, Tenant
from tenants.roles import Role
from tenants.services import membership_create, plan_resolve, tenant_create

DEMO_TENANT_NAME = "示範企業 Demo Co."


class Command(BaseCommand):
    help = "Create a demo tenant with a tenant admin, and a platform admin, and print the credentials."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        admin_email = os.environ.get("DEMO_ADMIN_EMAIL", "admin@demo.example.com")
        admin_password = os.environ.get("DEMO_ADMIN_PASSWORD", "demo-admin-2026")
        operator_email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "operator@platform.example.com")
        operator_password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "operator-2026")

        tenant = Tenant.objects.filter(name=DEMO_TENANT_NAME).first()
        if tenant is None:
            tenant = tenant_create(
                name=DEMO_TENANT_NAME,
                description="A demo enterprise created by `make run`.",
                plan=plan_resolve(name="專業版"),
                allow_signup=True,
            )
        admin = User.objects.filter(email=admin_email).first()
        if admin is None:
            admin = User.objects.create_user(admin_email, admin_password, name="Demo Admin")
        if not Membership.objects.for_tenant(tenant).filter(user=admin).exists():
            membership_create(tenant=tenant, user=admin, role=Role.TENANT_ADMIN)
        if not User.objects.filter(email=operator_email).exists():
            User.objects.create_superuser(operator_email, operator_password, name="Platform Operator")

        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Demo tenant:     {tenant.name}  (id {tenant.pk})",
                    f"Tenant admin:    {admin_email} / {admin_password}",
                    f"Platform admin:  {operator_email} / {operator_password}   (Django admin at /admin/)",
                    "(Passwords are set when the accounts are first created; existing ones are kept.)",
                    "",
                ]
            )
        )
