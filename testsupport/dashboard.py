"""The dashboard as the tests reach it: a session signed in without the login form, and its URLs."""

from django.test import Client
from django.urls import reverse

# A valid submission of the retrieval settings form (the dashboard's `settings-retrieval` page).
RETRIEVAL_FORM = {
    "mode": "keyword",
    "top_k": 3,
    "fusion": "rrf",
    "dense_weight": 0.4,
    "keyword_weight": 0.6,
    "chinese_dense_weight": 0.3,
    "chinese_keyword_weight": 0.7,
    "rrf_k": 60,
    "score_threshold": "",
    "candidates": 40,
}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def dashboard_url(name: str, people, **kwargs) -> str:
    """The URL of dashboard page `name` in the tenant of `people`."""
    return reverse(f"dashboard:{name}", kwargs={"tenant_id": people.tenant.pk, **kwargs})
