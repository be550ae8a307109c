"""Auth, registration and invitation endpoints. Thin: validate, call a service, shape output."""

from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.emails import link_base
from accounts.models import Invitation, User
from accounts.throttling import InvitationTokenThrottle, PasswordResetEmailThrottle
from tenants.authentication import PublicEndpointAuthentication, TenantJWTAuthentication
from tenants.roles import PLATFORM_ADMIN, Capability, Role
from tenants.scoping import TenantScopedViewSet, validated_input
from tenants.selectors import memberships_of
from tenants.throttling import (
    InvitationAcceptAddressThrottle,
    PasswordResetAddressThrottle,
    RegistrationThrottle,
    client_address,
)

# --- Output ---------------------------------------------------------------------------------


class MembershipSummary(serializers.Serializer):
    tenant_id = serializers.UUIDField()
    tenant_name = serializers.CharField(source="tenant.name")
    tenant_status = serializers.CharField(source="tenant.status")
    role = serializers.CharField()


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    is_platform_admin = serializers.BooleanField()
    tenant_id = serializers.UUIDField(allow_null=True)
    role = serializers.CharField(allow_null=True)
    memberships = MembershipSummary(many=True)


def user_output(user: User, *, tenant_id, role) -> dict:
    return UserOutput(
        {
            "id": user.pk,
            "email": user.email,
            "name": user.name,
            "is_platform_admin": user.is_platform_admin,
            "tenant_id": tenant_id,
            "role": role,
            "memberships": list(memberships_of(user=user)),
        }
    ).data


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    user = UserOutput()


def sign_in_output(sign_in: services.SignIn) -> dict:
    role = (
        PLATFORM_ADMIN if sign_in.user.is_platform_admin else (sign_in.membership and sign_in.membership.role)
    )
    return {
        "access": sign_in.access,
        "refresh": sign_in.refresh,
        "user": user_output(
            sign_in.user,
            tenant_id=sign_in.membership.tenant_id if sign_in.membership else None,
            role=role,
        ),
    }


# --- Input ----------------------------------------------------------------------------------


class RegisterInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    name = serializers.CharField(max_length=150, allow_blank=True, default="")
    tenant_id = serializers.UUIDField()
    role = serializers.CharField(max_length=32, default=Role.END_USER)


class LoginInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    tenant_id = serializers.UUIDField(required=False, allow_null=True)


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class InvitationCreateInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationAcceptInput(serializers.Serializer):
    token = serializers.CharField(max_length=200)
    password = serializers.CharField(
        max_length=128,
        trim_whitespace=False,
        required=False,
        help_text="The new account's password. Not accepted for an existing account: sign in as it instead.",
    )
    name = serializers.CharField(max_length=150, allow_blank=True, default="")


class PasswordResetInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmInput(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class AuthMessageOutput(serializers.Serializer):
    message = serializers.CharField()


class InvitationOutput(serializers.ModelSerializer):
    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "created_at", "expires_at", "accepted_at"]


class InvitationCreatedOutput(InvitationOutput):
    token = serializers.CharField(help_text="Shown once: send it to the invitee.")

    class Meta(InvitationOutput.Meta):
        fields = [*InvitationOutput.Meta.fields, "token"]


# --- Views ----------------------------------------------------------------------------------


class PublicAuthView(APIView):
    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]


@extend_schema(tags=["auth"])
class RegisterView(PublicAuthView):
    throttle_classes = [RegistrationThrottle]

    @extend_schema(
        summary="Register an end user in a tenant that allows sign-up",
        request=RegisterInput,
        responses={201: UserOutput},
    )
    def post(self, request):
        data = validated_input(RegisterInput, request.data)
        user, membership = services.user_register(**data)
        return Response(
            user_output(user, tenant_id=membership.tenant_id, role=membership.role),
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["auth"])
class LoginView(PublicAuthView):
    @extend_schema(
        summary="Sign in and receive an access and a refresh token",
        description="`tenant_id` picks the tenant for a person in several; without it, the first membership.",
        request=LoginInput,
        responses=TokenPairOutput,
    )
    def post(self, request):
        data = validated_input(LoginInput, request.data)
        sign_in = services.user_login(
            email=data["email"],
            password=data["password"],
            address=client_address(request),
            tenant_id=data.get("tenant_id"),
        )
        return Response(sign_in_output(sign_in))


@extend_schema(tags=["auth"])
class RefreshView(PublicAuthView):
    @extend_schema(
        summary="Rotate a refresh token; the used one stops working",
        request=RefreshInput,
        responses=TokenPairOutput,
    )
    def post(self, request):
        data = validated_input(RefreshInput, request.data)
        return Response(sign_in_output(services.token_refresh(refresh=data["refresh"])))


@extend_schema(tags=["auth"])
class LogoutView(PublicAuthView):
    @extend_schema(summary="Revoke a refresh token", request=RefreshInput, responses={205: None})
    def post(self, request):
        data = validated_input(RefreshInput, request.data)
        services.token_revoke(refresh=data["refresh"])
        return Response(status=status.HTTP_205_RESET_CONTENT)


@extend_schema(tags=["auth"])
class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="The signed-in user, with the token's tenant and role", responses=UserOutput)
    def get(self, request):
        return Response(user_output(request.user, tenant_id=request.token_tenant_id, role=request.role))


@extend_schema(tags=["auth"])
class InvitationAcceptView(APIView):
    """Anyone may call it; who the caller is decides how. An existing account accepts only with
    its own access token (never with a password here), a new person with a password."""

    authentication_classes = [TenantJWTAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [InvitationAcceptAddressThrottle, InvitationTokenThrottle]

    @extend_schema(
        summary="Accept an invitation",
        description=(
            "A new person sends `{token, password, name}` and gets an account. When an account "
            "with the invited email exists, its owner signs in first and sends `{token}` with "
            "`Authorization: Bearer <access token>`; without it the answer is 401 "
            "`sign_in_required`, whatever password is sent. Throttled per token and per client address."
        ),
        request=InvitationAcceptInput,
        responses={201: UserOutput},
    )
    def post(self, request):
        data = validated_input(InvitationAcceptInput, request.data)
        caller = request.user if request.user.is_authenticated else None
        user, membership = services.invitation_accept(
            token=data["token"], user=caller, password=data.get("password"), name=data["name"]
        )
        return Response(
            user_output(user, tenant_id=membership.tenant_id, role=membership.role),
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["auth"])
class PasswordResetView(PublicAuthView):
    throttle_classes = [PasswordResetAddressThrottle]

    @extend_schema(
        summary="Email a password-reset link",
        description=(
            "202 whatever the email, so that nobody learns which accounts exist. The link opens "
            "the dashboard's page to choose a new password; its `uid` and `token` also work with "
            "`POST /v1/auth/password/reset/confirm`. Throttled per client address; each email "
            "receives a limited number of links an hour."
        ),
        request=PasswordResetInput,
        responses={202: AuthMessageOutput},
    )
    def post(self, request):
        data = validated_input(PasswordResetInput, request.data)
        # Past the per-email rate the answer stays the same and no email leaves.
        if PasswordResetEmailThrottle().allow_request(request, self):
            services.password_reset_request(
                email=data["email"], base_url=link_base(request), language=translation.get_language()
            )
        message = _("If an account with this email exists, a link to reset its password is on its way.")
        return Response({"message": message}, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["auth"])
class PasswordResetConfirmView(PublicAuthView):
    throttle_classes = [PasswordResetAddressThrottle]

    @extend_schema(
        summary="Choose a new password with a reset link's uid and token",
        description=(
            "The token works once and expires (`PASSWORD_RESET_TIMEOUT`). Every refresh token of "
            "the account is revoked and every signed-in session ends."
        ),
        request=PasswordResetConfirmInput,
        responses={
            200: AuthMessageOutput,
            400: OpenApiResponse(description="`invalid_token`, or `validation_error` for a weak password"),
        },
    )
    def post(self, request):
        data = validated_input(PasswordResetConfirmInput, request.data)
        services.password_reset_confirm(uid=data["uid"], token=data["token"], password=data["password"])
        return Response({"message": _("Your password has been changed. Sign in with the new one.")})


@extend_schema(
    tags=["members"],
    parameters=[OpenApiParameter("tenant_id", str, OpenApiParameter.PATH)],
)
class InvitationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet
):
    model = Invitation
    capability = Capability.MANAGE_MEMBERS
    serializer_class = InvitationOutput

    def scope_queryset(self, queryset):
        if self.request.query_params.get("pending") in {"1", "true"}:
            return selectors.invitations_pending(queryset)
        return queryset

    @extend_schema(
        summary="Invite someone by email with a role",
        request=InvitationCreateInput,
        responses={201: InvitationCreatedOutput},
    )
    def create(self, request, tenant_id):
        data = validated_input(InvitationCreateInput, request.data)
        invitation, token = services.invitation_create(
            tenant=request.tenant,
            email=data["email"],
            role=data["role"],
            invited_by=request.user,
            base_url=link_base(request),
            language=translation.get_language(),
        )
        invitation.token = token
        return Response(InvitationCreatedOutput(invitation).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.invitation_revoke(invitation=instance)
