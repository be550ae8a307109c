"""How the dashboard names people: a platform operator who acted in a tenant is "platform
operator" to its people (`hidden_operator_ids` in the dashboard's context)."""

from django import template

from tenants.audit import person_shown

register = template.Library()


def _lazy_set(hidden):
    # Never `hidden or ...`: truth-testing the lazy set would run its query for every page.
    return frozenset() if hidden is None or type(hidden) is str else hidden  # str: missing from context


@register.filter
def person(user, hidden) -> str:
    """The person's email, or "platform operator": `{{ document.uploaded_by|person:hidden_operator_ids }}`."""
    return person_shown(user, hidden=_lazy_set(hidden)) or ""


@register.filter
def person_name(user, hidden) -> str:
    """The person's name (else email), or "platform operator"."""
    return person_shown(user, hidden=_lazy_set(hidden), name_first=True) or ""
