"""Dashboard pages of the LINE channel, under /dashboard/t/<tenant_id>/."""

from django.urls import path

from line_channel import views

channel = "line/<uuid:channel_id>/"

tenant = [
    path("line/", views.LineChannelListView.as_view(), name="line-channels"),
    path("line/new/", views.LineChannelCreateView.as_view(), name="line-channel-create"),
    path(channel, views.LineChannelDetailView.as_view(), name="line-channel"),
    path(f"{channel}verify/", views.LineChannelVerifyView.as_view(), name="line-channel-verify"),
    path(f"{channel}delete/", views.LineChannelDeleteView.as_view(), name="line-channel-delete"),
]
