import uuid

from django.conf import settings
from django.db import models

from tenants.roles import Role


class Plan(models.Model):
    """A subscription plan and its quotas. A quota of 0 means unlimited."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    # Other names clients may send for this plan, such as the seed brief's 專業版.
    aliases = models.JSONField(default=list, blank=True)
    max_documents = models.PositiveIntegerField(default=0)
    max_storage_bytes = models.PositiveBigIntegerField(default=0)
    max_upload_bytes = models.PositiveBigIntegerField(default=20 * 1024 * 1024)
    monthly_token_quota = models.PositiveBigIntegerField(default=0)
    requests_per_minute = models.PositiveIntegerField(default=0)
    # The ingestion budget (tenants/throttling.py): files (uploaded, or queued again by a
    # reindex request) and uploaded bytes per hour, the API and the dashboard counting together.
    upload_files_per_hour = models.PositiveIntegerField(default=120)
    upload_bytes_per_hour = models.PositiveBigIntegerField(default=100 * 1024 * 1024)
    # The most pages one web source may crawl (its `max_pages` is at most this; 0: no bound).
    max_web_pages = models.PositiveIntegerField(default=500)
    # Text recognition (OCR) of scanned pages: pages of one document (0: the platform's cap,
    # knowledge.extraction.MAX_OCR_PAGES) and the seconds a page may take on average.
    max_ocr_pages = models.PositiveIntegerField(default=20)
    ocr_seconds_per_page = models.PositiveIntegerField(default=60)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["max_storage_bytes", "code"]

    def __str__(self) -> str:
        return self.name


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True, allow_unicode=True)
    description = models.TextField(blank=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    allow_signup = models.BooleanField(default=False)
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "TenantQuerySet":
        """The one way into tenant-owned rows: everything outside it is another tenant's."""
        if tenant is None:
            raise ValueError("for_tenant() needs a tenant; refusing an unscoped query")
        return self.filter(tenant=tenant)

    def for_tenant_id(self, tenant_id) -> "TenantQuerySet":
        """The same scope for code that holds an id (Celery tasks receive ids, not objects)."""
        if not tenant_id:
            raise ValueError("for_tenant_id() needs a tenant id; refusing an unscoped query")
        return self.filter(tenant_id=tenant_id)


class TenantOwnedModel(models.Model):
    """Base of every tenant-owned row: a non-null tenant and the scoped queryset."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Membership(TenantOwnedModel):
    """A user's role in one tenant. Lives here, beside the roles, because the tenant resolution
    that every request goes through needs it and `tenants` imports no other app."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="one_membership_per_tenant")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} as {self.role}"


class AuditEventQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "AuditEventQuerySet":
        if tenant is None:
            raise ValueError("for_tenant() needs a tenant; refusing an unscoped query")
        return self.filter(tenant=tenant)


class AuditEvent(models.Model):
    """One administrative action: who did what, in which tenant, when. Written by the services
    (tenants.audit.audit_record), so the API, the dashboard and the Django admin all record."""

    # Kept when the tenant is deleted (its name too), so operators keep the trail.
    tenant = models.ForeignKey(Tenant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    tenant_name = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The actor's email at the time ("system" for background work).
    actor_email = models.CharField(max_length=254)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"]), models.Index(fields=["action"])]

    def __str__(self) -> str:
        return f"{self.actor_email} {self.action} {self.target_type}:{self.target_id}"
