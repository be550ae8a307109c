"""A tenant's settings (`Tenant.settings`): named sections, each with a typed schema.

The app that reads a section owns its schema (knowledge: `retrieval`; llm: `assistant`) and
registers it when Django starts (`AppConfig.ready`), so that this module, which every writer of
settings goes through, validates sections it cannot import. A section is a DRF serializer whose
fields are all optional (an omitted key takes the reader's default) and carry their ranges.

Writes are checked whole (`tenant_settings_validate`): an unknown section or key, a wrong type or
a value out of range is refused, with errors keyed like `settings.retrieval.top_k`. Reads are
defensive (`tenant_settings_section`): a value stored before the schema existed that it would now
refuse is ignored, key by key, so the reader's default applies rather than a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

_SECTIONS: dict[str, type[serializers.Serializer]] = {}


def tenant_settings_section_register(name: str, schema: type[serializers.Serializer]) -> None:
    """Declare the schema of `settings[name]` (once, from the owning app's `ready()`)."""
    registered = _SECTIONS.get(name)
    if registered is not None and registered is not schema:
        raise ValueError(f"The tenant settings section {name!r} is already registered by {registered!r}.")
    _SECTIONS[name] = schema


def tenant_settings_sections() -> dict[str, type[serializers.Serializer]]:
    return dict(_SECTIONS)


def _flatten(errors, prefix: str) -> dict[str, list[str]]:
    """DRF's nested errors as flat lists keyed by dotted path (`settings.retrieval.top_k`)."""
    if isinstance(errors, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in errors.items():
            path = prefix if key == api_settings.NON_FIELD_ERRORS_KEY else f"{prefix}.{key}"
            for name, messages in _flatten(value, path).items():
                flat.setdefault(name, []).extend(messages)
        return flat
    if isinstance(errors, list) and all(not isinstance(item, Mapping | list) for item in errors):
        return {prefix: [str(item) for item in errors]}
    if isinstance(errors, list):
        flat = {}
        for item in errors:
            for name, messages in _flatten(item, prefix).items():
                flat.setdefault(name, []).extend(messages)
        return flat
    return {prefix: [str(errors)]}


def tenant_settings_validate(value: Mapping) -> dict:
    """The settings as they may be stored: each section checked by its schema and kept as
    validated (numbers as numbers), unknown sections and keys refused. A section set to None
    stays None (a PATCH removes it), whatever its name, so that old sections can be cleared.
    Raises `serializers.ValidationError` with flat `settings.<section>.<key>` keys."""
    errors: dict[str, list[str]] = {}
    cleaned: dict = {}
    for name, section in value.items():
        path = f"settings.{name}"
        if section is None:
            cleaned[name] = None
            continue
        schema = _SECTIONS.get(name)
        if schema is None:
            known = ", ".join(sorted(_SECTIONS))
            errors[path] = [str(_("Unknown settings section. Known sections: %(known)s.") % {"known": known})]
            continue
        if not isinstance(section, Mapping):
            errors[path] = [str(_("A settings section must be an object."))]
            continue
        serializer = schema(data=section)
        unknown = sorted(set(section) - set(serializer.fields))
        for key in unknown:
            errors[f"{path}.{key}"] = [str(_("Unknown setting."))]
        if not serializer.is_valid():
            for key, messages in _flatten(serializer.errors, path).items():
                errors.setdefault(key, []).extend(messages)
        elif not unknown:
            cleaned[name] = dict(serializer.validated_data)
    if errors:
        raise serializers.ValidationError(errors)
    return cleaned


def tenant_settings_section(settings: Mapping | None, name: str) -> dict:
    """The values of `settings[name]` that its schema accepts, key by key; the others (a wrong
    type, out of range, unknown) are left out, so the reader's defaults apply to them."""
    stored = (settings or {}).get(name)
    schema = _SECTIONS.get(name)
    if not isinstance(stored, Mapping) or schema is None:
        return {}
    fields = schema().fields
    values = {}
    for key, value in stored.items():
        field = fields.get(key)
        if field is None or field.read_only:
            continue
        try:
            values[key] = field.run_validation(value)
        except serializers.ValidationError:
            logger.warning(
                "Ignoring the stored tenant setting %s.%s=%r: the schema refuses it.", name, key, value
            )
    return values
