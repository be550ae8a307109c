"""Dashboard pages of the LINE channel, for tenant admins (the capability the API asks): the
channels with their state, connecting one, changing it (secrets write-only), the webhook URL to
paste into the LINE Developers console, checking the access token with LINE, and the messages
that could not be delivered. Thin: validate, call a service or selector, answer."""

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from line_channel import selectors, services
from line_channel.forms import LineChannelForm
from tenants.dashboard import TenantDashboardMixin
from tenants.roles import Capability

NAV = "dashboard:line-channels"


class LineChannelListView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/line_channels.html"
    capability = Capability.UPDATE_TENANT
    nav = NAV

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["channels"] = list(selectors.line_channel_list_with_failures(tenant=self.request.tenant))
        context["failure_window_days"] = selectors.FAILURE_WINDOW.days
        return context


class LineChannelCreateView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/line_channel_form.html"
    capability = Capability.UPDATE_TENANT
    nav = NAV

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["form"] = kwargs.get("form") or LineChannelForm()
        return context

    def post(self, request, tenant_id):
        form = LineChannelForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        channel = services.line_channel_create(tenant=request.tenant, **form.changes())
        messages.success(
            request,
            _("The channel is connected. Paste its webhook URL into the LINE Developers console."),
        )
        return redirect("dashboard:line-channel", tenant_id=request.tenant.pk, channel_id=channel.pk)


class LineChannelDetailView(TenantDashboardMixin, TemplateView):
    """One channel: its webhook URL and state, the form to change it, its recent failures."""

    template_name = "dashboard/line_channel_form.html"
    capability = Capability.UPDATE_TENANT
    nav = NAV

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        channel = kwargs.get("channel") or selectors.line_channel_get(
            tenant=request.tenant, channel_id=kwargs["channel_id"]
        )
        context.update(
            channel=channel,
            form=kwargs.get("form") or LineChannelForm(channel=channel),
            webhook_url=selectors.webhook_url(channel=channel, request=request),
            failures=selectors.recent_failed_deliveries(tenant=request.tenant, channel=channel),
        )
        return context

    def post(self, request, tenant_id, channel_id):
        channel = selectors.line_channel_get(tenant=request.tenant, channel_id=channel_id)
        form = LineChannelForm(request.POST, channel=channel)
        if not form.is_valid():
            return self.render_to_response(
                self.get_context_data(channel=channel, form=form, channel_id=channel_id), status=400
            )
        services.line_channel_update(channel=channel, **form.changes())
        messages.success(request, _("The channel was saved."))
        return redirect("dashboard:line-channel", tenant_id=request.tenant.pk, channel_id=channel.pk)


class LineChannelVerifyView(TenantDashboardMixin, View):
    """Ask LINE whether the stored access token is valid (and whose account it opens)."""

    capability = Capability.UPDATE_TENANT

    def post(self, request, tenant_id, channel_id):
        channel = selectors.line_channel_get(tenant=request.tenant, channel_id=channel_id)
        outcome = services.line_channel_verify(channel=channel)
        if outcome.ok:
            messages.success(
                request,
                _("LINE accepted the access token of %(account)s (%(basic_id)s).")
                % {"account": outcome.display_name, "basic_id": outcome.basic_id},
            )
        elif outcome.reason == "token_refused":
            messages.error(request, _("LINE refused the access token. Issue a new one and enter it below."))
        else:
            messages.warning(request, _("LINE could not be reached. Try again in a moment."))
        return redirect("dashboard:line-channel", tenant_id=request.tenant.pk, channel_id=channel.pk)


class LineChannelDeleteView(TenantDashboardMixin, View):
    capability = Capability.UPDATE_TENANT

    def post(self, request, tenant_id, channel_id):
        channel = selectors.line_channel_get(tenant=request.tenant, channel_id=channel_id)
        services.line_channel_delete(channel=channel)
        messages.success(request, _("The channel was disconnected."))
        return redirect("dashboard:line-channels", tenant_id=request.tenant.pk)
