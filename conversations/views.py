"""Dashboard pages of conversations: the overview, the conversation list and detail, live chat,
the agent inbox and usage. Thin: validate, call a service or selector, answer."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from accounts.models import normalise_email
from conversations import selectors, services, usage
from conversations.forms import ConversationFilterForm, ReplyForm, UsagePeriodForm
from conversations.models import Conversation
from tenants import selectors as tenant_selectors
from tenants.dashboard import TenantDashboardMixin, paginate, query_without_page
from tenants.errors import APIError
from tenants.roles import Capability
from tenants.websocket import socket_token_for

CHART_WIDTH = 600
CHART_HEIGHT = 160
CHART_DAYS = 30


def _percent(used: int, limit: int | None) -> int | None:
    if not limit:
        return None
    return min(100, round(100 * used / limit))


def usage_chart(days: list[dict]) -> dict:
    """An SVG chart's geometry, drawn server-side: conversations per day as bars, tokens per
    day as a line, each scaled to its own maximum."""
    count = max(len(days), 1)
    step = CHART_WIDTH / count
    most_conversations = max((day["conversations"] for day in days), default=0) or 1
    most_tokens = max((day["tokens"] for day in days), default=0) or 1
    bars, points = [], []
    for index, day in enumerate(days):
        height = (CHART_HEIGHT - 10) * day["conversations"] / most_conversations
        bars.append(
            {
                "x": round(index * step + step * 0.15, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(step * 0.7, 1),
                "height": round(height, 1),
                "day": day["day"],
                "conversations": day["conversations"],
                "tokens": day["tokens"],
            }
        )
        y = CHART_HEIGHT - (CHART_HEIGHT - 10) * day["tokens"] / most_tokens
        points.append(f"{round(index * step + step / 2, 1)},{round(y, 1)}")
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "bars": bars,
        "line": " ".join(points),
        "max_conversations": most_conversations if any(d["conversations"] for d in days) else 0,
        "max_tokens": most_tokens if any(d["tokens"] for d in days) else 0,
        "first_day": days[0]["day"] if days else None,
        "last_day": days[-1]["day"] if days else None,
    }


class OverviewView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/overview.html"
    capability = Capability.READ_TENANT
    nav = "dashboard:overview"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tenant, request = self.request.tenant, self.request
        report = usage.tenant_usage(tenant=tenant, days=CHART_DAYS)
        month_start = timezone.localdate().replace(day=1)
        conversations_this_month = (
            Conversation.objects.for_tenant(tenant).filter(created_at__date__gte=month_start).count()
        )
        quotas = report["quotas"]
        context.update(
            report=report,
            chart=usage_chart(report["days"]),
            conversations_this_month=conversations_this_month,
            waiting=selectors.conversation_list(
                tenant=tenant, viewer=request.user, role=request.role, status="handoff", unassigned=True
            ).count(),
            cards=[
                {
                    "label": _("Tokens this month"),
                    "used": quotas["monthly_tokens"]["used"],
                    "limit": quotas["monthly_tokens"]["limit"],
                    "percent": _percent(quotas["monthly_tokens"]["used"], quotas["monthly_tokens"]["limit"]),
                },
                {
                    "label": _("Documents"),
                    "used": quotas["documents"]["used"],
                    "limit": quotas["documents"]["limit"],
                    "percent": _percent(quotas["documents"]["used"], quotas["documents"]["limit"]),
                },
                {
                    "label": _("Storage"),
                    "used": quotas["storage_bytes"]["used"],
                    "limit": quotas["storage_bytes"]["limit"],
                    "percent": _percent(quotas["storage_bytes"]["used"], quotas["storage_bytes"]["limit"]),
                    "bytes": True,
                },
            ],
        )
        return context


class ConversationListView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/conversations.html"
    capability = Capability.READ_TENANT
    nav = "dashboard:conversations"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        form = ConversationFilterForm(request.GET or None)
        filters: dict = {}
        no_match = False
        if form.is_valid():
            data = form.cleaned_data
            filters = {"status": data["status"] or None, "since": data["since"], "until": data["until"]}
            if data["user"]:
                member = (
                    tenant_selectors.member_list(tenant=request.tenant)
                    .filter(user__email=normalise_email(data["user"]))
                    .first()
                )
                if member is None:
                    no_match = True
                else:
                    filters["user_id"] = member.user_id
        conversations = selectors.conversation_list(
            tenant=request.tenant, viewer=request.user, role=request.role, **filters
        )
        if no_match:
            conversations = conversations.none()
        context.update(form=form, page=paginate(request, conversations), query=query_without_page(request))
        return context


def conversation_thread(request, conversation) -> list:
    message_list = list(selectors.message_list(tenant=request.tenant, conversation=conversation))
    feedback = selectors.feedback_by_message(tenant=request.tenant, messages=message_list)
    for message in message_list:
        message.feedback_rows = feedback.get(message.pk, [])
    return message_list


class ConversationDetailView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/conversation_detail.html"
    capability = Capability.READ_TENANT
    nav = "dashboard:conversations"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        conversation = selectors.conversation_get(
            tenant=request.tenant,
            viewer=request.user,
            role=request.role,
            conversation_id=kwargs["conversation_id"],
        )
        context.update(
            conversation=conversation,
            thread=conversation_thread(request, conversation),
            reply_form=ReplyForm(),
            can_handle=self.can(Capability.HANDLE_CONVERSATIONS),
        )
        return context


class _ConversationAction(TenantDashboardMixin, View):
    """Take, reply or close: staff only. Answers JSON to the inbox's script, a redirect with a
    message to a plain form."""

    capability = Capability.HANDLE_CONVERSATIONS
    http_method_names = ["post"]

    def post(self, request, tenant_id, conversation_id):
        conversation = selectors.conversation_get(
            tenant=request.tenant, viewer=request.user, role=request.role, conversation_id=conversation_id
        )
        try:
            result, text = self.act(request, conversation)
        except APIError as error:
            return self.answer(
                request, conversation, ok=False, text=_action_error(error), status=error.status_code
            )
        return self.answer(request, conversation, ok=True, text=text, result=result)

    def act(self, request, conversation):
        raise NotImplementedError

    def answer(self, request, conversation, *, ok: bool, text: str, status: int = 200, result=None):
        if "application/json" in request.headers.get("Accept", ""):
            body = {"ok": ok, "message": text}
            if isinstance(result, dict):
                body.update(result)
            return JsonResponse(body, status=200 if ok else status)
        (messages.success if ok else messages.error)(request, text)
        target = request.POST.get("next")
        if target == "inbox":
            return redirect(f"{_url('dashboard:inbox', request.tenant.pk)}?conversation={conversation.pk}")
        return redirect(
            "dashboard:conversation", tenant_id=request.tenant.pk, conversation_id=conversation.pk
        )


def _url(name: str, tenant_id) -> str:
    return reverse(name, kwargs={"tenant_id": tenant_id})


def _action_error(error: APIError) -> str:
    codes = {
        "conversation_closed": _("This conversation is closed."),
        "already_assigned": _("Another agent holds this conversation."),
    }
    return codes.get(error.error_code, str(error.detail))


class ConversationTakeView(_ConversationAction):
    def act(self, request, conversation):
        services.conversation_take(conversation=conversation, agent=request.user)
        return None, _("You hold this conversation now.")


class ConversationReplyView(_ConversationAction):
    def act(self, request, conversation):
        form = ReplyForm(request.POST)
        if not form.is_valid():
            raise APIError(_("Write a reply first."), code="validation_error")
        message = services.agent_reply(
            conversation=conversation, agent=request.user, content=form.cleaned_data["content"]
        )
        return {"reply": services.message_as_event(message)}, _("Reply sent.")


class ConversationCloseView(_ConversationAction):
    def act(self, request, conversation):
        services.conversation_close(conversation=conversation)
        return None, _("The conversation is closed.")


def _socket_config(request) -> dict:
    """What the page's script needs to open the WebSocket: a socket token of the session's user
    for the URL's tenant (a browser cannot send the session's authority to the socket as a
    bearer). The token opens the socket only, is not stored, and lives minutes: the script
    renews it at half-life through `SocketTokenView`."""
    return {
        "token": socket_token_for(user=request.user, membership=request.membership),
        "renew_seconds": settings.SOCKET_TOKEN_SECONDS // 2,
        "path": f"/ws/tenants/{request.tenant.pk}/chat/",
        "token_url": _url("dashboard:socket-token", request.tenant.pk),
    }


class LiveChatView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/live_chat.html"
    capability = Capability.HANDLE_CONVERSATIONS
    nav = "dashboard:live-chat"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["socket"] = _socket_config(self.request)
        return context


class SocketTokenView(TenantDashboardMixin, View):
    """A fresh socket token for the page's script (session and CSRF, POST only)."""

    capability = Capability.HANDLE_CONVERSATIONS
    http_method_names = ["post"]

    def post(self, request, tenant_id):
        config = _socket_config(request)
        return JsonResponse({"token": config["token"], "renew_seconds": config["renew_seconds"]})


class InboxView(TenantDashboardMixin, TemplateView):
    """The handoff queue, and the conversation being answered."""

    template_name = "dashboard/inbox.html"
    capability = Capability.HANDLE_CONVERSATIONS
    nav = "dashboard:inbox"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        queue = selectors.conversation_list(
            tenant=request.tenant, viewer=request.user, role=request.role, status="handoff"
        )
        context["page"] = paginate(request, queue)
        selected_id = request.GET.get("conversation")
        if selected_id:
            try:
                conversation = selectors.conversation_get(
                    tenant=request.tenant,
                    viewer=request.user,
                    role=request.role,
                    conversation_id=uuid.UUID(selected_id),
                )
            except (APIError, ValueError):
                conversation = None
                messages.error(request, _("No such conversation."))
            if conversation is not None:
                context["conversation"] = conversation
                context["thread"] = conversation_thread(request, conversation)
        context["reply_form"] = ReplyForm()
        context["socket"] = _socket_config(request)
        return context


class UsageView(TenantDashboardMixin, TemplateView):
    template_name = "dashboard/usage.html"
    capability = Capability.VIEW_USAGE
    nav = "dashboard:usage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = UsagePeriodForm(self.request.GET or None)
        days = form.cleaned_data["days"] if form.is_valid() else 30
        report = usage.tenant_usage(tenant=self.request.tenant, days=days)
        context.update(
            form=form,
            report=report,
            days=list(reversed(report["days"])),
            chart=usage_chart(report["days"]),
        )
        return context
