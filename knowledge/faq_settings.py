"""A tenant's curated-answer settings (`tenant.settings["faq"]`): when a question is close
enough to a curated answer to be given it word for word. Kept apart from the matcher so that
registering the schema at start-up loads no embedding code."""

from dataclasses import dataclass

from rest_framework import serializers

from tenants.models import Tenant
from tenants.tenant_settings import tenant_settings_section

SETTINGS_KEY = "faq"
# Chosen on the DRCD-built labelled set (bench/faq_matcher.py; docs/retrieval.md, "Curated
# answers"): the lowest threshold whose precision stays at or above 0.98.
DEFAULT_THRESHOLD = 0.8


@dataclass(frozen=True)
class FaqSettings:
    enabled: bool = True
    threshold: float = DEFAULT_THRESHOLD

    @classmethod
    def for_tenant(cls, tenant: Tenant) -> "FaqSettings":
        return cls(**tenant_settings_section(tenant.settings, SETTINGS_KEY))


class FaqSettingsSchema(serializers.Serializer):
    """`settings["faq"]`: every key optional (the defaults of `FaqSettings`)."""

    enabled = serializers.BooleanField(
        required=False, help_text="Whether curated answers are given at all (default true)."
    )
    threshold = serializers.FloatField(
        required=False,
        min_value=0.5,
        max_value=1.0,
        help_text="How close a question must be to a curated answer's question (0.5..1; 1 = only "
        "the same question, ignoring script, width and punctuation).",
    )
