from collections import Counter

from knowledge.keyword_statistics import term_frequencies_adjust
from knowledge.models import TermFrequency


def frequencies(tenant) -> dict[int, int]:
    return dict(TermFrequency.objects.filter(tenant=tenant).values_list("term_id", "chunk_count"))


def test_adding_and_removing_terms_keeps_each_tenants_document_frequencies(tenant_a, tenant_b):
    a, b = tenant_a.tenant, tenant_b.tenant
    big = 2**32 - 3  # term ids are hashes in [0, 2**32 - 2]
    term_frequencies_adjust(tenant_id=a.pk, counts=Counter({5: 2, 3: 1, big: 1}), sign=1)
    term_frequencies_adjust(tenant_id=a.pk, counts=Counter({5: 1, 7: 4}), sign=1)
    term_frequencies_adjust(tenant_id=b.pk, counts=Counter({5: 9}), sign=1)
    assert frequencies(a) == {3: 1, 5: 3, 7: 4, big: 1}

    term_frequencies_adjust(tenant_id=a.pk, counts=Counter({5: 1, 3: 1, big: 1}), sign=-1)
    assert frequencies(a) == {5: 2, 7: 4}  # a term no chunk holds any more is gone
    assert frequencies(b) == {5: 9}

    term_frequencies_adjust(tenant_id=a.pk, counts=Counter(), sign=1)
    assert frequencies(a) == {5: 2, 7: 4}
