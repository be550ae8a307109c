"""Reports on a tenant's use of the platform, for its admins. Thin: validate, call a report, answer."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from reports import usage
from tenants.roles import Capability
from tenants.scoping import TenantScopedAPIView, validated_input

TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)


class UsageFilter(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=366, required=False, default=30)


@extend_schema(tags=["usage"], parameters=[TENANT_PARAMETER])
class UsageView(TenantScopedAPIView):
    capability = Capability.VIEW_USAGE

    @extend_schema(
        summary="Tokens, messages, documents and storage per day, against the plan's quotas",
        parameters=[OpenApiParameter("days", int, description="How many days back (1-366, default 30).")],
        responses=usage.TenantUsageOutput,
    )
    def get(self, request, tenant_id):
        days = validated_input(UsageFilter, request.query_params)["days"]
        return Response(usage.tenant_usage(tenant=request.tenant, days=days))
