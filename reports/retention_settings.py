"""The tenant settings section `retention` (tenants/tenant_settings.py), registered by this app."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class RetentionSettings(serializers.Serializer):
    conversation_retention_days = serializers.IntegerField(
        min_value=0,
        max_value=36_500,
        required=False,
        help_text="Conversations (with their messages and feedback) idle longer than this many days "
        "are deleted by the daily job; 0 keeps them forever (or up to the platform's maximum).",
    )

    def validate_conversation_retention_days(self, value: int) -> int:
        ceiling = settings.CONVERSATION_RETENTION_MAX_DAYS
        if ceiling and (value == 0 or value > ceiling):
            raise serializers.ValidationError(
                _("This platform keeps conversations at most %(days)s days: choose 1 to %(days)s.")
                % {"days": ceiling}
            )
        return value
