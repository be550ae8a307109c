from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from llm.providers import KIND_LABELS, KINDS
from tenants.models import TenantOwnedModel


class ProviderConfig(TenantOwnedModel):
    """One entry of a tenant's provider chain: position 0 answers, the others are fallbacks in
    order. The API key is stored encrypted (`llm.crypto`); only `llm.selectors.provider_spec()`
    decrypts it, just before a call, and no endpoint or page ever shows it."""

    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=32, choices=[(kind, KIND_LABELS[kind]) for kind in KINDS])
    model = models.CharField(max_length=200, blank=True)
    base_url = models.URLField(max_length=500, blank=True)
    api_version = models.CharField(max_length=40, blank=True)
    api_key_encrypted = models.TextField(blank=True)
    temperature = models.FloatField(default=0.2, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_tokens = models.PositiveIntegerField(default=800)
    timeout_seconds = models.FloatField(default=30.0)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "position"], name="one_provider_per_tenant_position")
        ]

    def __str__(self) -> str:
        return f"{self.tenant} #{self.position}: {self.kind} {self.model}".strip()

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)


class UsageDay(TenantOwnedModel):
    """A tenant's LLM usage on one day (in the platform's time zone): tokens, bot answers and chat
    requests. Written only by `llm.services.usage_record`, an atomic upsert."""

    day = models.DateField()
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    messages = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["tenant", "-day"]
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="one_usage_row_per_tenant_day")]

    def __str__(self) -> str:
        return f"{self.tenant} {self.day}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
