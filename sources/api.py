"""The web sources API: tenant admins manage their sources, start a sync, and read its runs
and each page's outcome. Thin: validate (every 400 is decided here), call a service or a
selector, shape the output."""

from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from llm import outbound
from sources import crawling, selectors, services
from sources.models import MAX_PATTERNS, PATTERN_LENGTH, CrawlRun, PageFetch, WebSource
from tenants.roles import Capability
from tenants.scoping import TenantScopedViewSet, validated_input

TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)


def internal_address_refusal(url: str) -> str | None:
    """Why the platform will not crawl `url`'s host (it resolves to an internal address the
    operator has not opened), or None. An early answer for the form: the crawler checks every
    connection again. A name that does not resolve now is accepted (the crawl will say why)."""
    if settings.WEB_SOURCES_ALLOW_PRIVATE_ADDRESSES:
        return None
    host = urlsplit(url).hostname or ""
    try:
        addresses = outbound.resolve(host)
    except (OSError, UnicodeError, ValueError):
        return None
    for address in addresses:
        allowed = any(address in network for network in settings.WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS)
        if not outbound.is_public_address(address) and not allowed:
            return (
                f"This URL's host resolves to an internal address ({address}); the platform only "
                "crawls public websites unless its operator allows private addresses."
            )
    return None


class WebUrlField(serializers.URLField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if urlsplit(value).scheme.lower() not in ("http", "https"):
            raise serializers.ValidationError("Use an http:// or https:// address.")
        normalized = crawling.normalized_url(value)
        if normalized is None:
            raise serializers.ValidationError("Enter a valid URL.")
        refusal = internal_address_refusal(normalized)
        if refusal:
            raise serializers.ValidationError(refusal)
        return normalized


def _pattern_list():
    return serializers.ListField(
        child=serializers.CharField(max_length=PATTERN_LENGTH),
        max_length=MAX_PATTERNS,
        required=False,
        help_text="Shell-style patterns (* and ?) on a page's path and query, such as /help/*.",
    )


class WebSourceInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    url = WebUrlField(max_length=2000, help_text="The start page; its scheme, host and port are the scope.")
    sitemap_url = WebUrlField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="Crawl the pages this sitemap lists instead of following links (on the same site).",
    )
    path_prefix = serializers.CharField(
        max_length=500, required=False, help_text="Only pages whose path starts with this (default /)."
    )
    include = _pattern_list()
    exclude = _pattern_list()
    selector = serializers.CharField(
        max_length=300, required=False, allow_blank=True, help_text="A CSS selector of the content to keep."
    )
    max_pages = serializers.IntegerField(min_value=1, required=False)
    schedule = serializers.ChoiceField(choices=WebSource.Schedule.choices, required=False)

    def validate_path_prefix(self, value):
        if not value.startswith("/"):
            raise serializers.ValidationError("Start the path with /.")
        return value

    def validate_selector(self, value):
        value = value.strip()
        if value:
            error = crawling.selector_error(value)
            if error:
                raise serializers.ValidationError(f"Not a CSS selector the crawler reads: {error}")
        return value


class WebSourceUpdateInput(WebSourceInput):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


def checked_fields(data: dict, *, tenant, source: WebSource | None = None) -> dict:
    """The model's fields from validated input, with the checks that need the tenant or the
    source: the plan's page limit, a sitemap on the start URL's site."""
    errors = {}
    url = data.get("url", source.url if source else "")
    sitemap = data.get("sitemap_url", source.sitemap_url if source else "")
    if sitemap and urlsplit(sitemap).netloc != urlsplit(url).netloc:
        errors["sitemap_url"] = ["The sitemap must be on the start URL's site (same host and port)."]
    limit = tenant.plan.max_web_pages
    if "max_pages" in data and limit and data["max_pages"] > limit:
        errors["max_pages"] = [f"The {tenant.plan.name} plan crawls up to {limit} pages a source."]
    if errors:
        raise serializers.ValidationError(errors)
    fields = dict(data)
    if "path_prefix" in fields:
        fields["scope_path"] = fields.pop("path_prefix")
    if "url" in fields:
        fields["scope_host"] = urlsplit(fields["url"]).netloc
    if source is None and "max_pages" not in fields:
        fields["max_pages"] = min(100, limit) if limit else 100
    return fields


class WebSourceOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    url = serializers.CharField()
    sitemap_url = serializers.CharField()
    scope_host = serializers.CharField()
    path_prefix = serializers.CharField(source="scope_path")
    include = serializers.ListField(child=serializers.CharField())
    exclude = serializers.ListField(child=serializers.CharField())
    selector = serializers.CharField()
    max_pages = serializers.IntegerField()
    schedule = serializers.ChoiceField(choices=WebSource.Schedule.choices)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CrawlRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    source_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=CrawlRun.Status.choices)
    trigger = serializers.ChoiceField(choices=CrawlRun.Trigger.choices)
    error = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Pages by outcome so far.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class PageFetchOutput(serializers.Serializer):
    url = serializers.CharField()
    outcome = serializers.ChoiceField(choices=PageFetch.Outcome.choices)
    http_status = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(help_text="Why the page failed or was skipped or removed.")
    document_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


@extend_schema(tags=["web sources"], parameters=[TENANT_PARAMETER])
class WebSourceViewSet(TenantScopedViewSet):
    model = WebSource
    capability = Capability.MANAGE_DOCUMENTS
    serializer_class = WebSourceOutput
    lookup_value_converter = "uuid"

    def _source(self) -> WebSource:
        return selectors.web_source_get(tenant=self.request.tenant, source_id=self.kwargs["pk"])

    @extend_schema(summary="List the tenant's web sources")
    def list(self, request, tenant_id):
        page = self.paginate_queryset(selectors.web_source_list(tenant=request.tenant))
        return self.get_paginated_response(WebSourceOutput(page, many=True).data)

    @extend_schema(
        summary="Add a web source (its first sync is queued)",
        request=WebSourceInput,
        responses={201: WebSourceOutput},
    )
    def create(self, request, tenant_id):
        data = checked_fields(validated_input(WebSourceInput, request.data), tenant=request.tenant)
        source = services.web_source_create(tenant=request.tenant, **data)
        return Response(WebSourceOutput(source).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A web source", responses=WebSourceOutput)
    def retrieve(self, request, tenant_id, pk):
        return Response(WebSourceOutput(self._source()).data)

    @extend_schema(summary="Change a web source", request=WebSourceUpdateInput, responses=WebSourceOutput)
    def partial_update(self, request, tenant_id, pk):
        source = self._source()
        data = checked_fields(
            validated_input(WebSourceUpdateInput, request.data), tenant=request.tenant, source=source
        )
        return Response(WebSourceOutput(services.web_source_update(source=source, **data)).data)

    @extend_schema(summary="Delete a web source and its pages' documents", responses={204: None})
    def destroy(self, request, tenant_id, pk):
        services.web_source_delete(source=self._source())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Sync a web source now", request=None, responses={202: CrawlRunOutput})
    def sync(self, request, tenant_id, pk):
        run = services.web_source_sync(source=self._source())
        return Response(CrawlRunOutput(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="A web source's crawl runs, newest first", responses=CrawlRunOutput(many=True))
    def runs(self, request, tenant_id, pk):
        page = self.paginate_queryset(selectors.crawl_run_list(tenant=request.tenant, source=self._source()))
        return self.get_paginated_response(CrawlRunOutput(page, many=True).data)

    @extend_schema(
        summary="What a crawl run did with each page",
        parameters=[OpenApiParameter("run_id", int, OpenApiParameter.PATH)],
        responses=PageFetchOutput(many=True),
    )
    def run_pages(self, request, tenant_id, pk, run_id):
        run = selectors.crawl_run_get(tenant=request.tenant, source=self._source(), run_id=run_id)
        page = self.paginate_queryset(selectors.page_fetch_list(tenant=request.tenant, run=run))
        return self.get_paginated_response(PageFetchOutput(page, many=True).data)
