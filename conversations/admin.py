from django.contrib import admin

from conversations.models import Conversation, Feedback, Message


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "role", "author", "content", "status", "provider", "model", "completion_tokens"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Read-only for operators: the record of what customers and agents said."""

    list_display = ["title", "tenant", "user", "status", "channel", "assigned_agent", "updated_at"]
    list_filter = ["status", "channel", "tenant"]
    search_fields = ["title", "user__email", "tenant__name"]
    list_select_related = ["tenant", "user", "assigned_agent"]
    date_hierarchy = "created_at"
    inlines = [MessageInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["message", "tenant", "user", "rating", "created_at"]
    list_filter = ["rating", "tenant"]
    readonly_fields = ["tenant", "message", "user", "rating", "comment"]

    def has_add_permission(self, request) -> bool:
        return False
