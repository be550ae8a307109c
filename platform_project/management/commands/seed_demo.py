"""Create the demo tenant, its tenant admin and a platform admin, a website widget for the
demo tenant and a first document for it to answer from, once. Idempotent: existing accounts
keep their passwords, the widget its key (it gains this run's origins when `PORT` changed), and
a tenant that has documents gets no demo document."""

import os

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction

from knowledge.models import Document
from knowledge.services import document_upload
from tenants.models import Membership, Tenant
from tenants.roles import Role
from tenants.services import membership_create, plan_resolve, tenant_create
from widgets.api import embed_snippet
from widgets.models import Widget
from widgets.services import widget_create, widget_update

DEMO_TENANT_NAME = "示範企業 Demo Co."
DEMO_WIDGET_NAME = "示範網站客服 Demo widget"
DEMO_WIDGET_GREETING = "您好！我是示範企業的智慧客服，請問有什麼可以幫您？"
DEMO_DOCUMENT_NAME = "demo-customer-service.md"
DEMO_DOCUMENT = """# 示範企業 客服須知

## 退貨與換貨

商品到貨後七天內，未拆封且包裝完整者，可申請全額退款。已拆封的商品若有瑕疵，請於三十天內聯絡客服更換。

## 運費

單筆訂單滿一千元免運費；未滿一千元者，本島運費八十元，離島運費一百五十元。

## 客服時間

線上客服與電話客服服務時間為週一至週五上午九點至下午六點，國定假日除外。
"""


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
        base_url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/"
        widget = self.demo_widget(tenant, base_url)
        document = self.demo_document(tenant, admin)

        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Demo tenant:     {tenant.name}  (id {tenant.pk})",
                    f"Tenant admin:    {admin_email} / {admin_password}",
                    f"Platform admin:  {operator_email} / {operator_password}   (Django admin at /admin/)",
                    "(Passwords are set when the accounts are first created; existing ones are kept.)",
                    "",
                    f"Demo widget:     {base_url}widget/demo/?key={widget.public_key}",
                    "                 (a page that embeds it: open it and click the chat button)",
                    f"  On your page:  {embed_snippet(widget, base_url=base_url)}",
                    f"  Origins:       {', '.join(widget.allowed_origins)}  (pages it answers on; add yours)",
                    *(
                        [
                            f"Demo document:   {document.title}  (indexed by the worker soon after start-up;",
                            "                 ask the widget 「退貨要幾天內申請？」)",
                        ]
                        if document
                        else []
                    ),
                    "",
                ]
            )
        )

    def demo_widget(self, tenant: Tenant, base_url: str) -> Widget:
        """The demo tenant's widget, allowed on this server's own pages (127.0.0.1 and localhost
        at `PORT`, which `serve` listens on) so the demo page can embed it."""
        port = base_url.rstrip("/").rsplit(":", 1)[1]
        origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
        widget = Widget.objects.for_tenant(tenant).filter(name=DEMO_WIDGET_NAME).first()
        if widget is None:
            widget, _secret = widget_create(
                tenant=tenant, name=DEMO_WIDGET_NAME, allowed_origins=origins, greeting=DEMO_WIDGET_GREETING
            )
        elif missing := [origin for origin in origins if origin not in widget.allowed_origins]:
            widget, _secret = widget_update(
                widget=widget, allowed_origins=[*widget.allowed_origins, *missing]
            )
        return widget

    def demo_document(self, tenant: Tenant, admin) -> Document | None:
        """Something for the widget to answer from, in a tenant that has no documents yet (the
        worker started by `serve` ingests it)."""
        if Document.objects.for_tenant(tenant).exists():
            return None
        upload = SimpleUploadedFile(DEMO_DOCUMENT_NAME, DEMO_DOCUMENT.encode(), content_type="text/markdown")
        return document_upload(tenant=tenant, uploaded_by=admin, upload=upload, title="示範企業客服須知")
