"""The tenant's assistant: instructions, history budget, handoff, and the provider chain.
Thin: validate, call a service or selector, shape. API keys are write-only: no answer carries one."""

from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from llm import outbound, selectors, services
from llm.assistant import AssistantSettings, AssistantSettingsSchema
from llm.providers import KIND_LABELS, KINDS, NEEDS_BASE_URL
from tenants.roles import Capability
from tenants.scoping import TenantScopedAPIView, validated_input

TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)
MAX_PROVIDERS = 5
MAX_OUTPUT_TOKENS = 8192
KIND_CHOICES = [(kind, KIND_LABELS[kind]) for kind in KINDS]


def private_address_of(url: str) -> str | None:
    """The first private, loopback, link-local or otherwise internal address `url`'s host
    resolves to (NAT64, 6to4 and IPv4-mapped forms judged by their IPv4 address), or None. An
    unresolvable host counts as refused ("unresolvable"). An early answer for the form only: the
    providers check the address again on every connection (`llm.outbound`)."""
    return outbound.internal_address_of(urlsplit(url).hostname or "")


class ProviderInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES)
    model = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="The model (Azure: the deployment name). Not needed for `offline`.",
    )
    base_url = serializers.URLField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required for `openai_compatible` (its …/v1 URL) and `azure_openai` (the resource endpoint).",
    )
    api_version = serializers.CharField(
        max_length=40, required=False, allow_blank=True, default="", help_text="Azure OpenAI only."
    )
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, required=False, default=0.2)
    max_tokens = serializers.IntegerField(
        min_value=1, max_value=MAX_OUTPUT_TOKENS, required=False, default=800
    )
    timeout_seconds = serializers.FloatField(min_value=1.0, max_value=300.0, required=False)
    enabled = serializers.BooleanField(required=False, default=True)
    api_key = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        allow_null=True,
        trim_whitespace=True,
        write_only=True,
        help_text=(
            "Write-only. Omit it to keep the key stored for the provider at this position (same kind "
            'and server); "" removes it.'
        ),
    )

    def validate(self, data):
        errors = {}
        if data["kind"] != "offline" and not data["model"].strip():
            errors["model"] = ["This provider needs a model."]
        if data["kind"] in NEEDS_BASE_URL and not data["base_url"]:
            errors["base_url"] = ["This provider needs a base URL."]
        elif data["base_url"] and not settings.LLM_ALLOW_PRIVATE_BASE_URLS:
            address = private_address_of(data["base_url"])
            if address:
                errors["base_url"] = [
                    f"This URL's host resolves to an internal address ({address}); the platform "
                    "only calls public servers unless its operator allows private ones."
                ]
        if errors:
            raise serializers.ValidationError(errors)
        data["model"] = data["model"].strip()
        data.setdefault("timeout_seconds", float(settings.LLM_TIMEOUT_SECONDS))
        return data


class AssistantInput(AssistantSettingsSchema):
    """The `assistant` settings section (its schema: what the tenant API also checks), and the chain."""

    providers = ProviderInput(
        many=True,
        min_length=1,
        max_length=MAX_PROVIDERS,
        help_text="The chain in order: the first answers, the others take over when it fails.",
    )


class ProviderOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES)
    model = serializers.CharField()
    base_url = serializers.CharField()
    api_version = serializers.CharField()
    temperature = serializers.FloatField()
    max_tokens = serializers.IntegerField()
    timeout_seconds = serializers.FloatField()
    enabled = serializers.BooleanField()
    has_api_key = serializers.BooleanField(
        help_text="Whether a key is stored; the key itself is never shown."
    )


class AssistantOutput(serializers.Serializer):
    system_prompt = serializers.CharField()
    history_token_budget = serializers.IntegerField()
    handoff_when_no_knowledge = serializers.BooleanField()
    providers = ProviderOutput(
        many=True,
        help_text="Empty: none configured, the offline provider (quotes the knowledge base) answers.",
    )


def _answer(assistant: AssistantSettings, configs) -> dict:
    return AssistantOutput({**assistant.as_dict(), "providers": list(configs)}).data


@extend_schema(tags=["assistant"], parameters=[TENANT_PARAMETER])
class AssistantSettingsView(TenantScopedAPIView):
    capabilities = {"get": Capability.READ_TENANT, "put": Capability.UPDATE_TENANT}

    @extend_schema(summary="Read the assistant settings and provider chain", responses=AssistantOutput)
    def get(self, request, tenant_id):
        return Response(
            _answer(
                selectors.assistant_settings(tenant=request.tenant),
                selectors.provider_config_list(tenant=request.tenant),
            )
        )

    @extend_schema(
        summary="Replace the assistant settings and provider chain",
        request=AssistantInput,
        responses=AssistantOutput,
    )
    def put(self, request, tenant_id):
        data = validated_input(AssistantInput, request.data)
        assistant, configs = services.assistant_update(tenant=request.tenant, data=data)
        return Response(_answer(assistant, configs))
