"""Dashboard pages of conversations: the conversation list and detail, live chat and the agent
inbox. Thin: validate, call a service or selector, answer."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from accounts.models import normalise_email
from conversations import outbound, selectors, services
from conversations.forms import ConversationFilterForm, ReplyForm
from conversations.models import Message
from tenants import selectors as tenant_selectors
from tenants.dashboard import TenantDashboardMixin, paginate, query_without_page
from tenants.errors import APIError
from tenants.roles import Capability
from tenants.websocket import socket_token_for

# The messages that go out to the customer, whose delivery a channel may report as failed.
SENT_ROLES = (Message.Role.ASSISTANT, Message.Role.AGENT)


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
    # Answers a channel such as LINE could not deliver are marked, with its reason.
    undelivered = outbound.undelivered(
        tenant=request.tenant,
        channel=conversation.channel,
        message_ids=[message.pk for message in message_list if message.role in SENT_ROLES],
    )
    for message in message_list:
        message.feedback_rows = feedback.get(message.pk, [])
        message.undelivered = undelivered.get(message.pk)
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
