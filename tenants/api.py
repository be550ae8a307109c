"""REST endpoints for tenants and their members. Thin: validate, call a service or selector,
shape the output."""

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from tenants import selectors, services
from tenants.audit import PLATFORM_OPERATOR, hidden_operators_for
from tenants.errors import Forbidden
from tenants.models import AuditEvent, Membership, Plan, Tenant
from tenants.roles import Capability, Role
from tenants.scoping import (
    IsPlatformAdmin,
    TenantScopedAPIView,
    TenantScopedViewSet,
    is_platform_admin,
    validated_input,
)
from tenants.tenant_settings import tenant_settings_validate

MAX_SETTINGS_BYTES = 64 * 1024
TENANT_PARAMETER = OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)


class PlanOutput(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "code",
            "name",
            "max_documents",
            "max_storage_bytes",
            "max_upload_bytes",
            "monthly_token_quota",
            "requests_per_minute",
            "max_web_pages",
            "max_ocr_pages",
            "ocr_seconds_per_page",
        ]


class TenantOutput(serializers.ModelSerializer):
    plan = PlanOutput()

    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "plan",
            "status",
            "allow_signup",
            "settings",
            "created_at",
            "updated_at",
        ]


def _validate_settings(value):
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_SETTINGS_BYTES:
        raise serializers.ValidationError(f"Settings may hold at most {MAX_SETTINGS_BYTES} bytes.")
    return value


class _SettingsChecked:
    """Each settings section checked by its schema (`tenants.tenant_settings`), errors keyed
    like `settings.retrieval.top_k` at the top of the details."""

    def validate(self, data):
        if "settings" in data:
            data["settings"] = tenant_settings_validate(data["settings"])
        return data


class TenantCreateInput(_SettingsChecked, serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    plan = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="Plan code or name; the seed's Chinese names (免費版, 標準版, 專業版, 企業版) are accepted.",
    )
    allow_signup = serializers.BooleanField(required=False, default=False)
    settings = serializers.DictField(
        required=False,
        default=dict,
        validators=[_validate_settings],
        help_text="Sections (`retrieval`, `assistant`), each checked by its schema; unknown keys are refused.",
    )


class TenantUpdateInput(_SettingsChecked, serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    plan = serializers.CharField(max_length=100, required=False)
    status = serializers.ChoiceField(choices=Tenant.Status.choices, required=False)
    allow_signup = serializers.BooleanField(required=False)
    settings = serializers.DictField(
        required=False,
        validators=[_validate_settings],
        help_text=(
            "Sections (`retrieval`, `assistant`), each checked by its schema; a section named here "
            "replaces the stored one, null removes it, and the others are kept."
        ),
    )


# Fields only platform operators may change: the commercial plan and the suspension switch.
OPERATOR_ONLY_FIELDS = {"plan", "status"}


@extend_schema(tags=["tenants"])
class TenantListCreateView(GenericAPIView):
    permission_classes = [IsPlatformAdmin]
    serializer_class = TenantOutput

    @extend_schema(
        summary="List tenants (platform admin)",
        parameters=[
            OpenApiParameter("status", str, enum=[choice for choice, _ in Tenant.Status.choices]),
            OpenApiParameter("search", str, description="Part of the tenant's name."),
        ],
        responses=TenantOutput(many=True),
    )
    def get(self, request):
        tenants = selectors.tenant_list(
            status=request.query_params.get("status") or None,
            search=request.query_params.get("search") or None,
        )
        page = self.paginate_queryset(tenants)
        return self.get_paginated_response(TenantOutput(page, many=True).data)

    @extend_schema(
        summary="Create a tenant (platform admin)", request=TenantCreateInput, responses={201: TenantOutput}
    )
    def post(self, request):
        data = validated_input(TenantCreateInput, request.data)
        tenant = services.tenant_create(
            name=data["name"],
            description=data["description"],
            plan=services.plan_resolve(name=data.get("plan")),
            allow_signup=data["allow_signup"],
            settings=data["settings"],
        )
        return Response(TenantOutput(tenant).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["tenants"])
class TenantDetailView(TenantScopedAPIView):
    capabilities = {
        "get": Capability.READ_TENANT,
        "patch": Capability.UPDATE_TENANT,
        "delete": Capability.MANAGE_TENANTS,
    }

    @extend_schema(summary="Read a tenant", responses=TenantOutput)
    def get(self, request, tenant_id):
        return Response(TenantOutput(request.tenant).data)

    @extend_schema(summary="Update a tenant", request=TenantUpdateInput, responses=TenantOutput)
    def patch(self, request, tenant_id):
        data = validated_input(TenantUpdateInput, request.data)
        refused = OPERATOR_ONLY_FIELDS & set(data)
        if refused and not is_platform_admin(request):
            raise Forbidden(
                f"Only platform operators may change {', '.join(sorted(refused))}.",
                details={"fields": sorted(refused)},
            )
        if "plan" in data:
            data["plan"] = services.plan_resolve(name=data["plan"])
        tenant = services.tenant_update(tenant=request.tenant, **data) if data else request.tenant
        return Response(TenantOutput(tenant).data)

    @extend_schema(summary="Delete a tenant and all its data (platform admin)", responses={204: None})
    def delete(self, request, tenant_id):
        services.tenant_delete(tenant=request.tenant)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberUserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class MemberOutput(serializers.ModelSerializer):
    user = MemberUserOutput()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class MemberUpdateInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


@extend_schema(tags=["members"], parameters=[OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)])
class MemberViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet
):
    model = Membership
    capability = Capability.MANAGE_MEMBERS
    serializer_class = MemberOutput

    def scope_queryset(self, queryset):
        role = self.request.query_params.get("role")
        return selectors.member_filter(queryset, role=role or None)

    @extend_schema(summary="Change a member's role", request=MemberUpdateInput, responses=MemberOutput)
    def partial_update(self, request, tenant_id, pk):
        data = validated_input(MemberUpdateInput, request.data)
        membership = services.membership_set_role(membership=self.get_object(), role=data["role"])
        return Response(MemberOutput(membership).data)

    def perform_destroy(self, instance):
        services.membership_delete(membership=instance)


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "tenant_id",
            "tenant_name",
            "actor_email",
            "ip_address",
            "action",
            "target_type",
            "target_id",
            "details",
        ]


class TenantAuditEventOutput(AuditEventOutput):
    """A tenant's own trail: a platform operator who acted in it is "platform operator", with
    no address."""

    def to_representation(self, event):
        data = super().to_representation(event)
        if event.actor_id is not None and event.actor_id in hidden_operators_for(self.context["request"]):
            data["actor_email"] = str(PLATFORM_OPERATOR)
            data["ip_address"] = None
        return data


class AuditFilter(serializers.Serializer):
    action = serializers.CharField(
        required=False, max_length=64, help_text="An action, or a prefix ending in a dot."
    )
    actor = serializers.CharField(required=False, max_length=254, help_text="Part of the actor's email.")
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)
    tenant_id = serializers.UUIDField(required=False, help_text="Platform-wide trail only: one tenant's.")


AUDIT_PARAMETERS = [
    OpenApiParameter("action", str, description="`document.delete`, or a prefix such as `member.`"),
    OpenApiParameter("actor", str, description="Part of the actor's email."),
    OpenApiParameter("since", OpenApiTypes.DATE),
    OpenApiParameter("until", OpenApiTypes.DATE),
]


@extend_schema(tags=["audit"], parameters=[TENANT_PARAMETER])
class TenantAuditViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """The tenant's administrative actions, newest first (tenant admins)."""

    model = AuditEvent
    capability = Capability.VIEW_AUDIT
    serializer_class = TenantAuditEventOutput

    def scope_queryset(self, queryset):
        return selectors.audit_filter(
            queryset,
            **validated_input(AuditFilter, self.request.query_params),
            hidden_actor_ids=hidden_operators_for(self.request),
        )

    @extend_schema(summary="The tenant's audit trail", parameters=AUDIT_PARAMETERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


@extend_schema(tags=["audit"])
class PlatformAuditView(GenericAPIView):
    """Every tenant's administrative actions, and the platform's own (operators)."""

    permission_classes = [IsPlatformAdmin]
    serializer_class = AuditEventOutput

    def get_queryset(self):
        return AuditEvent.objects.all()

    @extend_schema(
        summary="The platform's audit trail",
        parameters=[*AUDIT_PARAMETERS, OpenApiParameter("tenant_id", OpenApiTypes.UUID)],
        responses=AuditEventOutput(many=True),
    )
    def get(self, request):
        events = selectors.audit_filter(
            self.get_queryset(), **validated_input(AuditFilter, request.query_params)
        )
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventOutput(page, many=True).data)
