"""Tenant settings are typed: every section the platform reads (`retrieval`, `assistant`) has a
schema with ranges, a write that breaks it answers 400 naming the field and changes nothing, and
values stored before the schema existed fall back to the defaults rather than break search and
chat."""

import pytest

from knowledge.retrieval import RetrievalSettings
from llm.assistant import AssistantSettings
from testsupport.api import assert_error
from testsupport.dashboard import RETRIEVAL_FORM, dashboard_url, signed_in
from testsupport.people import client_for

pytestmark = pytest.mark.django_db

STORED = {"retrieval": {"top_k": 3, "mode": "keyword"}, "assistant": {"system_prompt": "你是客服。"}}


def patch(people, settings: dict, role: str = "tenant_admin"):
    return people.client(role).patch(f"/v1/tenants/{people.tenant.pk}", {"settings": settings}, format="json")


def search(people):
    return people.client("agent").post(
        f"/v1/tenants/{people.tenant.pk}/knowledge/search", {"query": "退貨 return"}, format="json"
    )


def chat(people):
    return people.client("end_user").post(
        f"/v1/tenants/{people.tenant.pk}/chat", {"message": "How do I return a laptop?"}, format="json"
    )


@pytest.fixture
def stored(tenant_a):
    tenant_a.tenant.settings = STORED
    tenant_a.tenant.save()
    return tenant_a


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"retrieval": {"top_k": "x"}}, "settings.retrieval.top_k"),
        ({"retrieval": {"candidates": 100_000}}, "settings.retrieval.candidates"),
        ({"retrieval": {"top_k": 0}}, "settings.retrieval.top_k"),
        ({"retrieval": {"mode": "psychic"}}, "settings.retrieval.mode"),
        ({"retrieval": {"dense_weight": 2}}, "settings.retrieval.dense_weight"),
        ({"retrieval": {"score_threshold": "high"}}, "settings.retrieval.score_threshold"),
        ({"retrieval": {"topk": 5}}, "settings.retrieval.topk"),  # unknown keys are refused
        ({"retrieval": "everything"}, "settings.retrieval"),
        ({"assistant": {"history_token_budget": -1}}, "settings.assistant.history_token_budget"),
        ({"assistant": {"history_token_budget": 10**9}}, "settings.assistant.history_token_budget"),
        (
            {"assistant": {"handoff_when_no_knowledge": "maybe"}},
            "settings.assistant.handoff_when_no_knowledge",
        ),
        ({"assistant": {"system_prompt": "x" * 8001}}, "settings.assistant.system_prompt"),
        ({"greeting": "您好"}, "settings.greeting"),  # unknown sections too
    ],
)
def test_an_invalid_setting_answers_400_naming_it_and_changes_nothing(stored, milvus_uri, settings, field):
    error = assert_error(patch(stored, settings), 400, "validation_error")

    assert field in error["details"], error
    stored.tenant.refresh_from_db()
    assert stored.tenant.settings == STORED
    assert search(stored).status_code == 200


def test_a_valid_patch_is_stored_as_validated(stored):
    response = patch(stored, {"retrieval": {"top_k": "8", "candidates": 80, "score_threshold": None}})

    assert response.status_code == 200, response.content
    stored.tenant.refresh_from_db()
    assert stored.tenant.settings["retrieval"] == {"top_k": 8, "candidates": 80, "score_threshold": None}
    assert stored.tenant.settings["assistant"] == STORED["assistant"]


def test_an_unknown_section_may_still_be_removed(stored):
    stored.tenant.settings = {**STORED, "old": {"x": 1}}
    stored.tenant.save()

    assert patch(stored, {"old": None}).status_code == 200

    stored.tenant.refresh_from_db()
    assert stored.tenant.settings == STORED


def test_a_tenant_created_with_invalid_settings_is_refused(platform_admin):
    from tenants.models import Tenant

    response = client_for(platform_admin).post(
        "/v1/tenants", {"name": "Acme", "settings": {"retrieval": {"top_k": "x"}}}, format="json"
    )

    assert "settings.retrieval.top_k" in assert_error(response, 400, "validation_error")["details"]
    assert not Tenant.objects.filter(name="Acme").exists()


BAD_ROWS = {
    "retrieval": {
        "top_k": "x",
        "candidates": 100_000,
        "mode": "psychic",
        "fusion": None,
        "dense_weight": "heavy",
        "rrf_k": -3,
        "score_threshold": "high",
    },
    "assistant": {
        "history_token_budget": -5,
        "system_prompt": ["not", "text"],
        "handoff_when_no_knowledge": "yes please",
    },
}


def test_values_stored_before_the_schema_fall_back_to_the_defaults(tenant_a):
    tenant_a.tenant.settings = {**BAD_ROWS, "retrieval": {**BAD_ROWS["retrieval"], "keyword_weight": 0.9}}

    assert RetrievalSettings.for_tenant(tenant_a.tenant) == RetrievalSettings(keyword_weight=0.9)
    assert AssistantSettings.for_tenant(tenant_a.tenant) == AssistantSettings()


def test_search_and_chat_still_work_with_bad_values_stored(tenant_a, milvus_uri):
    tenant_a.tenant.settings = BAD_ROWS
    tenant_a.tenant.save()

    assert search(tenant_a).status_code == 200
    response = chat(tenant_a)
    assert response.status_code == 200, response.content


def test_the_dashboard_form_refuses_what_the_schema_refuses(tenant_a):
    values = RETRIEVAL_FORM
    admin = signed_in(tenant_a.tenant_admin)

    assert (
        admin.post(
            dashboard_url("settings-retrieval", tenant_a), {**values, "score_threshold": "1e300"}
        ).status_code
        == 400
    )
    assert (
        admin.post(
            dashboard_url("settings-retrieval", tenant_a), {**values, "candidates": 100_000}
        ).status_code
        == 400
    )
    tenant_a.tenant.refresh_from_db()
    assert "retrieval" not in tenant_a.tenant.settings
    assert admin.post(dashboard_url("settings-retrieval", tenant_a), values).status_code == 302
