"""Every tenant endpoint of the API, with the capability the role matrix of DESIGN.md asks of
its caller and the status it answers on success, and every endpoint of the widget's visitors. A
new tenant endpoint joins ENDPOINTS, a new visitor endpoint VISITOR_ENDPOINTS, and the
access-matrix tests (platform_project/tests/test_access_matrix.py) cover it.

A JSON endpoint names its `body`; an upload names its `files` instead ({field: (filename,
bytes)}, sent as multipart/form-data with a fresh copy of each file on every call), and
`many_files` when its field takes several."""

from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile

from tenants.roles import Capability


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    capability: Capability
    success: int
    body: dict | None = None
    files: dict[str, tuple[str, bytes]] | None = None
    # An upload that takes several files in its field (the others take exactly one).
    many_files: bool = False

    def __str__(self) -> str:
        return self.name

    @property
    def multipart(self) -> bool:
        return self.files is not None

    def uploads(self) -> dict:
        return {
            field: SimpleUploadedFile(name, content) for field, (name, content) in (self.files or {}).items()
        }


ENDPOINTS = [
    Endpoint("tenant-read", "get", "/v1/tenants/{tenant}", Capability.READ_TENANT, 200),
    Endpoint(
        "tenant-update",
        "patch",
        "/v1/tenants/{tenant}",
        Capability.UPDATE_TENANT,
        200,
        {"description": "新的描述"},
    ),
    Endpoint("tenant-delete", "delete", "/v1/tenants/{tenant}", Capability.MANAGE_TENANTS, 204),
    Endpoint("member-list", "get", "/v1/tenants/{tenant}/members", Capability.MANAGE_MEMBERS, 200),
    Endpoint("member-read", "get", "/v1/tenants/{tenant}/members/{member}", Capability.MANAGE_MEMBERS, 200),
    Endpoint(
        "member-update",
        "patch",
        "/v1/tenants/{tenant}/members/{member}",
        Capability.MANAGE_MEMBERS,
        200,
        {"role": "end_user"},
    ),
    Endpoint(
        "member-delete", "delete", "/v1/tenants/{tenant}/members/{member}", Capability.MANAGE_MEMBERS, 204
    ),
    Endpoint("invitation-list", "get", "/v1/tenants/{tenant}/invitations", Capability.MANAGE_MEMBERS, 200),
    Endpoint(
        "invitation-create",
        "post",
        "/v1/tenants/{tenant}/invitations",
        Capability.MANAGE_MEMBERS,
        201,
        {"email": "new@example.com", "role": "agent"},
    ),
    Endpoint(
        "invitation-read",
        "get",
        "/v1/tenants/{tenant}/invitations/{invitation}",
        Capability.MANAGE_MEMBERS,
        200,
    ),
    Endpoint(
        "invitation-delete",
        "delete",
        "/v1/tenants/{tenant}/invitations/{invitation}",
        Capability.MANAGE_MEMBERS,
        204,
    ),
    Endpoint("document-list", "get", "/v1/tenants/{tenant}/documents", Capability.READ_KNOWLEDGE, 200),
    Endpoint(
        "document-progress", "get", "/v1/tenants/{tenant}/documents/progress", Capability.READ_KNOWLEDGE, 200
    ),
    Endpoint(
        "document-read", "get", "/v1/tenants/{tenant}/documents/{document}", Capability.READ_KNOWLEDGE, 200
    ),
    Endpoint(
        "document-chunks",
        "get",
        "/v1/tenants/{tenant}/documents/{document}/chunks",
        Capability.READ_KNOWLEDGE,
        200,
    ),
    Endpoint(
        "document-upload",
        "post",
        "/v1/tenants/{tenant}/documents/upload",
        Capability.MANAGE_DOCUMENTS,
        202,
        files={"file": ("hours.txt", "營業時間：每天 9:00 到 18:00。週日公休。".encode())},
    ),
    Endpoint(
        "document-bulk",
        "post",
        "/v1/tenants/{tenant}/documents/bulk",
        Capability.MANAGE_DOCUMENTS,
        202,
        files={"files": ("shipping.txt", "運費：滿一千元免運費，未滿收八十元。".encode())},
        many_files=True,
    ),
    Endpoint(
        "document-delete",
        "delete",
        "/v1/tenants/{tenant}/documents/{document}",
        Capability.MANAGE_DOCUMENTS,
        204,
    ),
    Endpoint(
        "document-reindex",
        "post",
        "/v1/tenants/{tenant}/documents/{document}/reindex",
        Capability.MANAGE_DOCUMENTS,
        202,
        {},
    ),
    Endpoint(
        "documents-reindex",
        "post",
        "/v1/tenants/{tenant}/documents/reindex",
        Capability.MANAGE_DOCUMENTS,
        202,
        {},
    ),
    Endpoint(
        "knowledge-search",
        "post",
        "/v1/tenants/{tenant}/knowledge/search",
        Capability.READ_KNOWLEDGE,
        200,
        {"query": "退貨政策"},
    ),
    Endpoint("assistant-read", "get", "/v1/tenants/{tenant}/assistant", Capability.READ_TENANT, 200),
    Endpoint(
        "assistant-update",
        "put",
        "/v1/tenants/{tenant}/assistant",
        Capability.UPDATE_TENANT,
        200,
        {"system_prompt": "請用繁體中文回答。", "providers": [{"kind": "offline"}]},
    ),
    Endpoint("chat", "post", "/v1/tenants/{tenant}/chat", Capability.CHAT, 200, {"message": "退貨政策"}),
    Endpoint(
        "chat-stream",
        "post",
        "/v1/tenants/{tenant}/chat/stream",
        Capability.CHAT,
        200,
        {"message": "退貨政策"},
    ),
    Endpoint(
        "conversation-list",
        "get",
        "/v1/tenants/{tenant}/chat/conversations",
        Capability.READ_CONVERSATIONS,
        200,
    ),
    Endpoint(
        "conversation-read",
        "get",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}",
        Capability.READ_CONVERSATIONS,
        200,
    ),
    Endpoint(
        "conversation-delete",
        "delete",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}",
        Capability.DELETE_CONVERSATIONS,
        204,
    ),
    Endpoint(
        "message-feedback",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/messages/{message}/feedback",
        Capability.CHAT,
        201,
        {"rating": "up", "comment": "有幫助"},
    ),
    Endpoint(
        "conversation-handoff",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/handoff",
        Capability.CHAT,
        200,
        {"reason": "請真人協助"},
    ),
    Endpoint(
        "conversation-take",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/take",
        Capability.HANDLE_CONVERSATIONS,
        200,
        {},
    ),
    Endpoint(
        "conversation-reply",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/reply",
        Capability.HANDLE_CONVERSATIONS,
        201,
        {"message": "您好，我是客服。"},
    ),
    Endpoint(
        "conversation-close",
        "post",
        "/v1/tenants/{tenant}/chat/conversations/{conversation}/close",
        Capability.HANDLE_CONVERSATIONS,
        200,
        {},
    ),
    Endpoint("usage", "get", "/v1/tenants/{tenant}/usage", Capability.VIEW_USAGE, 200),
    Endpoint("audit", "get", "/v1/tenants/{tenant}/audit", Capability.VIEW_AUDIT, 200),
    Endpoint("widget-list", "get", "/v1/tenants/{tenant}/widgets", Capability.UPDATE_TENANT, 200),
    Endpoint(
        "widget-create",
        "post",
        "/v1/tenants/{tenant}/widgets",
        Capability.UPDATE_TENANT,
        201,
        {"name": "官網客服", "allowed_origins": ["https://shop.example.com"]},
    ),
    Endpoint("widget-read", "get", "/v1/tenants/{tenant}/widgets/{widget}", Capability.UPDATE_TENANT, 200),
    Endpoint(
        "widget-update",
        "patch",
        "/v1/tenants/{tenant}/widgets/{widget}",
        Capability.UPDATE_TENANT,
        200,
        {"greeting": "您好"},
    ),
    Endpoint(
        "widget-rotate-secret",
        "post",
        "/v1/tenants/{tenant}/widgets/{widget}/rotate-secret",
        Capability.UPDATE_TENANT,
        200,
        {},
    ),
    Endpoint(
        "widget-delete", "delete", "/v1/tenants/{tenant}/widgets/{widget}", Capability.UPDATE_TENANT, 204
    ),
    Endpoint("faq-list", "get", "/v1/tenants/{tenant}/faqs", Capability.READ_KNOWLEDGE, 200),
    Endpoint("faq-export", "get", "/v1/tenants/{tenant}/faqs/export", Capability.READ_KNOWLEDGE, 200),
    Endpoint(
        "faq-create",
        "post",
        "/v1/tenants/{tenant}/faqs",
        Capability.MANAGE_DOCUMENTS,
        201,
        {"question": "退貨政策？", "answer": "七天內可退貨。"},
    ),
    Endpoint(
        "faq-import",
        "post",
        "/v1/tenants/{tenant}/faqs/import",
        Capability.MANAGE_DOCUMENTS,
        200,
        files={
            "file": (
                "faqs.csv",
                "question,answer,alternatives\n退貨政策？,七天內可退貨。,可以退貨嗎\n".encode(),
            )
        },
    ),
    Endpoint("faq-read", "get", "/v1/tenants/{tenant}/faqs/{faq}", Capability.READ_KNOWLEDGE, 200),
    Endpoint(
        "faq-update",
        "patch",
        "/v1/tenants/{tenant}/faqs/{faq}",
        Capability.MANAGE_DOCUMENTS,
        200,
        {"answer": "每天 9 點開門。"},
    ),
    Endpoint("faq-delete", "delete", "/v1/tenants/{tenant}/faqs/{faq}", Capability.MANAGE_DOCUMENTS, 204),
    Endpoint("line-channel-list", "get", "/v1/tenants/{tenant}/line-channels", Capability.UPDATE_TENANT, 200),
    Endpoint(
        "line-channel-create",
        "post",
        "/v1/tenants/{tenant}/line-channels",
        Capability.UPDATE_TENANT,
        201,
        {
            "name": "門市 LINE",
            "channel_id": "1650000009",
            "channel_secret": "abcdef0123456789abcdef0123456789",
            "channel_access_token": "a-long-lived-channel-access-token",
        },
    ),
    Endpoint(
        "line-channel-read",
        "get",
        "/v1/tenants/{tenant}/line-channels/{line_channel}",
        Capability.UPDATE_TENANT,
        200,
    ),
    Endpoint(
        "line-channel-update",
        "patch",
        "/v1/tenants/{tenant}/line-channels/{line_channel}",
        Capability.UPDATE_TENANT,
        200,
        {"greeting": "歡迎！"},
    ),
    Endpoint(
        "line-channel-delete",
        "delete",
        "/v1/tenants/{tenant}/line-channels/{line_channel}",
        Capability.UPDATE_TENANT,
        204,
    ),
    Endpoint("web-source-list", "get", "/v1/tenants/{tenant}/web-sources", Capability.MANAGE_DOCUMENTS, 200),
    Endpoint(
        "web-source-create",
        "post",
        "/v1/tenants/{tenant}/web-sources",
        Capability.MANAGE_DOCUMENTS,
        201,
        {"url": "https://help.example.com/faq/", "schedule": "weekly"},
    ),
    Endpoint(
        "web-source-read",
        "get",
        "/v1/tenants/{tenant}/web-sources/{web_source}",
        Capability.MANAGE_DOCUMENTS,
        200,
    ),
    Endpoint(
        "web-source-update",
        "patch",
        "/v1/tenants/{tenant}/web-sources/{web_source}",
        Capability.MANAGE_DOCUMENTS,
        200,
        {"schedule": "daily"},
    ),
    Endpoint(
        "web-source-delete",
        "delete",
        "/v1/tenants/{tenant}/web-sources/{web_source}",
        Capability.MANAGE_DOCUMENTS,
        204,
    ),
    Endpoint(
        "web-source-sync",
        "post",
        "/v1/tenants/{tenant}/web-sources/{web_source}/sync",
        Capability.MANAGE_DOCUMENTS,
        202,
    ),
    Endpoint(
        "web-source-runs",
        "get",
        "/v1/tenants/{tenant}/web-sources/{web_source}/runs",
        Capability.MANAGE_DOCUMENTS,
        200,
    ),
    Endpoint(
        "web-source-run-pages",
        "get",
        "/v1/tenants/{tenant}/web-sources/{web_source}/runs/{crawl_run}/pages",
        Capability.MANAGE_DOCUMENTS,
        200,
    ),
    Endpoint("analytics", "get", "/v1/tenants/{tenant}/analytics", Capability.VIEW_USAGE, 200),
    Endpoint(
        "export-create",
        "post",
        "/v1/tenants/{tenant}/exports",
        Capability.VIEW_USAGE,
        202,
        {"format": "csv", "since": "2025-01-01", "until": "2025-01-31"},
    ),
    Endpoint("export-list", "get", "/v1/tenants/{tenant}/exports", Capability.VIEW_USAGE, 200),
    Endpoint("export-read", "get", "/v1/tenants/{tenant}/exports/{export}", Capability.VIEW_USAGE, 200),
    Endpoint(
        "data-erasure",
        "post",
        "/v1/tenants/{tenant}/data-erasure",
        Capability.MANAGE_MEMBERS,
        200,
        {"contact_id": "{contact}"},
    ),
]


@dataclass(frozen=True)
class VisitorEndpoint:
    """An endpoint of the website widget's visitors (/v1/widget/…): a visitor token opens it, and
    only for the visitor's own conversations; no member's token does."""

    name: str
    method: str
    path: str
    success: int
    body: dict | None = None

    def __str__(self) -> str:
        return self.name


VISITOR_CONVERSATION = "/v1/widget/conversations/{visitor_conversation}"

# Behind a visitor session (POST /v1/widget/sessions, public, is left out: it takes no token).
VISITOR_ENDPOINTS = [
    VisitorEndpoint("visitor-chat", "post", "/v1/widget/chat", 200, {"message": "退貨政策"}),
    VisitorEndpoint("visitor-chat-stream", "post", "/v1/widget/chat/stream", 200, {"message": "退貨政策"}),
    VisitorEndpoint("visitor-conversation-list", "get", "/v1/widget/conversations", 200),
    VisitorEndpoint("visitor-conversation-read", "get", VISITOR_CONVERSATION, 200),
    VisitorEndpoint(
        "visitor-handoff", "post", f"{VISITOR_CONVERSATION}/handoff", 200, {"reason": "請真人協助"}
    ),
    VisitorEndpoint(
        "visitor-feedback",
        "post",
        f"{VISITOR_CONVERSATION}/messages/{{visitor_message}}/feedback",
        201,
        {"rating": "up", "comment": "有幫助"},
    ),
]


def call(client, endpoint: Endpoint | VisitorEndpoint, ids: dict, body=None):
    url = endpoint.path.format(**ids)
    if getattr(endpoint, "multipart", False) and body is None:
        return getattr(client, endpoint.method)(url, endpoint.uploads(), format="multipart")
    payload = endpoint.body if body is None else body
    if isinstance(payload, dict):
        # A body may name an object of the fixture too: {"contact_id": "{contact}"}.
        payload = {
            key: value.format(**ids) if isinstance(value, str) and value.startswith("{") else value
            for key, value in payload.items()
        }
    if endpoint.method in {"post", "patch", "put"}:
        return getattr(client, endpoint.method)(url, payload, format="json")
    return getattr(client, endpoint.method)(url)
