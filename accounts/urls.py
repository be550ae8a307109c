from django.urls import path

from accounts import api

invitations = api.InvitationViewSet.as_view({"get": "list", "post": "create"})
invitation = api.InvitationViewSet.as_view({"get": "retrieve", "delete": "destroy"})

urlpatterns = [
    path("auth/register", api.RegisterView.as_view(), name="auth-register"),
    path("auth/login", api.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", api.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", api.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", api.MeView.as_view(), name="auth-me"),
    path("auth/password/reset", api.PasswordResetView.as_view(), name="password-reset"),
    path(
        "auth/password/reset/confirm", api.PasswordResetConfirmView.as_view(), name="password-reset-confirm"
    ),
    path("auth/invitations/accept", api.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("tenants/<uuid:tenant_id>/invitations", invitations, name="invitation-list"),
    path("tenants/<uuid:tenant_id>/invitations/<int:pk>", invitation, name="invitation-detail"),
]
