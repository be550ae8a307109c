"""Dashboard pages of accounts. `public` outside any tenant; `tenant` under /dashboard/t/<id>/."""

from django.urls import path

from accounts import views

public = [
    path("", views.HomeView.as_view(), name="home"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password-change"),
    path("password/reset/", views.PasswordResetRequestView.as_view(), name="password-reset"),
    path("password/reset/sent/", views.PasswordResetSentView.as_view(), name="password-reset-sent"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("tenants/", views.ChooseTenantView.as_view(), name="choose-tenant"),
    path("invitations/accept/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
]

tenant = [
    path("members/", views.MembersView.as_view(), name="members"),
    path("members/<int:member_id>/", views.MemberRoleView.as_view(), name="member-update"),
    path(
        "invitations/<int:invitation_id>/revoke/",
        views.InvitationRevokeView.as_view(),
        name="invitation-revoke",
    ),
]
