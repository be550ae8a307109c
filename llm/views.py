"""Dashboard page of the assistant settings and provider chain: tenant admins write, agents read.
API keys are write-only: the page shows whether a key is stored, never the key.

The form's rows are validated by the REST API's own input serializer (`llm.api.AssistantInput`:
models, base URLs and the private-address rule), so both interfaces accept the same settings."""

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from llm import selectors, services
from llm.api import MAX_PROVIDERS, AssistantInput
from llm.assistant import MAX_HISTORY_TOKEN_BUDGET
from llm.providers import KIND_LABELS, KINDS
from tenants.dashboard import TenantDashboardMixin
from tenants.errors import APIError
from tenants.roles import Capability

_PROVIDER_TEXT_FIELDS = ("model", "base_url", "api_version")


def _provider_rows(configs, submitted: list[dict] | None = None) -> list[dict]:
    """One row per chain position: the stored (or submitted) providers, then one empty row
    for a further fallback."""
    last_submitted = max(
        (index + 1 for index, row in enumerate(submitted or []) if row.get("kind")), default=0
    )
    filled = max(len(configs), last_submitted)
    rows = []
    for position in range(min(filled + 1, MAX_PROVIDERS)):
        config = configs[position] if position < len(configs) else None
        row = {
            "position": position,
            "kind": config.kind if config else "",
            "model": config.model if config else "",
            "base_url": config.base_url if config else "",
            "api_version": config.api_version if config else "",
            "temperature": config.temperature if config else 0.2,
            "max_tokens": config.max_tokens if config else 800,
            "enabled": config.enabled if config else True,
            "has_api_key": bool(config and config.has_api_key),
            "errors": {},
        }
        if submitted and position < len(submitted):
            row.update({key: value for key, value in submitted[position].items() if key != "api_key"})
        rows.append(row)
    return rows


def _submitted_providers(post) -> list[dict]:
    """The rows a kind was chosen for, in order, as the API's input takes them."""
    providers = []
    for position in range(MAX_PROVIDERS):
        kind = post.get(f"provider-{position}-kind", "").strip()
        if not kind:
            continue
        entry: dict = {"kind": kind, "position": position}
        for name in _PROVIDER_TEXT_FIELDS:
            entry[name] = post.get(f"provider-{position}-{name}", "").strip()
        entry["temperature"] = post.get(f"provider-{position}-temperature") or 0.2
        entry["max_tokens"] = post.get(f"provider-{position}-max_tokens") or 800
        entry["enabled"] = post.get(f"provider-{position}-enabled") == "on"
        key = post.get(f"provider-{position}-api_key", "")
        if post.get(f"provider-{position}-clear_key") == "on":
            entry["api_key"] = ""
        elif key.strip():
            entry["api_key"] = key.strip()
        providers.append(entry)
    return providers


def _flatten(errors) -> list[str]:
    if isinstance(errors, dict):
        return [f"{name}: {text}" for name, value in errors.items() for text in _flatten(value)]
    if isinstance(errors, list):
        return [text for value in errors for text in _flatten(value)]
    return [str(errors)]


class AssistantSettingsView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/settings_assistant.html"
    # The settings pages are the tenant admins' (issue 5: an agent gets 403); the API still lets
    # agents read the assistant settings, as DESIGN.md's matrix says.
    capability = Capability.UPDATE_TENANT
    nav = "dashboard:settings"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant = self.request.tenant
        assistant = kwargs.get("assistant") or selectors.assistant_settings(tenant=tenant).as_dict()
        configs = list(selectors.provider_config_list(tenant=tenant))
        context.update(
            tab="assistant",
            assistant=assistant,
            rows=_provider_rows(configs, kwargs.get("submitted")),
            kinds=[(kind, KIND_LABELS[kind]) for kind in KINDS],
            can_edit=self.can(Capability.UPDATE_TENANT),
            max_history=MAX_HISTORY_TOKEN_BUDGET,
            errors=kwargs.get("errors") or [],
            no_providers=not configs,
        )
        return context

    def post(self, request, tenant_id):
        providers = _submitted_providers(request.POST)
        data = {
            "system_prompt": request.POST.get("system_prompt", ""),
            "history_token_budget": request.POST.get("history_token_budget") or 0,
            "handoff_when_no_knowledge": request.POST.get("handoff_when_no_knowledge") == "on",
            "providers": [{k: v for k, v in entry.items() if k != "position"} for entry in providers],
        }
        serializer = AssistantInput(data=data)
        if not providers:
            errors = [_("Choose at least one provider (the offline provider needs no key).")]
        elif not serializer.is_valid():
            errors = _flatten(serializer.errors)
        else:
            try:
                services.assistant_update(tenant=request.tenant, data=dict(serializer.validated_data))
            except APIError as error:
                errors = _flatten(error.details) or [str(error.detail)]
            else:
                messages.success(request, _("The assistant settings were saved."))
                return redirect("dashboard:settings", tenant_id=request.tenant.pk)
        assistant = {
            "system_prompt": data["system_prompt"],
            "history_token_budget": data["history_token_budget"],
            "handoff_when_no_knowledge": data["handoff_when_no_knowledge"],
        }
        context = self.get_context_data(
            errors=errors, assistant=assistant, submitted=_rows_by_position(providers)
        )
        return self.render_to_response(context, status=400)


def _rows_by_position(providers: list[dict]) -> list[dict]:
    rows = [{"kind": ""} for _position in range(MAX_PROVIDERS)]
    for entry in providers:
        rows[entry["position"]] = entry
    return rows
