"""Every read of curated answers (FAQ pairs); each takes the tenant."""

from django.db.models import Q, QuerySet

from knowledge.models import Faq
from tenants.errors import NotFound
from tenants.models import Tenant

# More than a tenant is expected to curate by hand; bounds the work of matching one question.
MAX_MATCHED_PAIRS = 5_000


def faq_filter(
    faqs: QuerySet[Faq], *, search: str | None = None, enabled: bool | None = None
) -> QuerySet[Faq]:
    """Narrow an already scoped set of a tenant's pairs for a list (the embeddings left out)."""
    faqs = faqs.defer("embeddings")
    if enabled is not None:
        faqs = faqs.filter(enabled=enabled)
    if search:
        faqs = faqs.filter(Q(question__icontains=search) | Q(answer__icontains=search))
    return faqs


def faq_list(*, tenant: Tenant, search: str | None = None, enabled: bool | None = None) -> QuerySet[Faq]:
    return faq_filter(Faq.objects.for_tenant(tenant), search=search, enabled=enabled)


def faq_get(*, tenant: Tenant, faq_id) -> Faq:
    faq = Faq.objects.for_tenant(tenant).filter(pk=faq_id).first()
    if faq is None or faq.tenant_id != tenant.pk:
        raise NotFound()
    return faq


def faq_enabled_for_matching(*, tenant: Tenant) -> QuerySet[Faq]:
    return Faq.objects.for_tenant(tenant).filter(enabled=True).order_by("id")[:MAX_MATCHED_PAIRS]
