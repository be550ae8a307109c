from django.apps import AppConfig


class LineChannelConfig(AppConfig):
    name = "line_channel"
    verbose_name = "LINE channel"

    def ready(self) -> None:
        # Agents' replies (and status changes) of LINE conversations reach the user by push.
        from conversations import outbound
        from line_channel.delivery import deliver_conversation_event
        from line_channel.selectors import undelivered_messages

        outbound.register("line", deliver_conversation_event, undelivered=undelivered_messages)
        # The tasks are queued by name (delivery.SEND_TASK): register them in every process.
        import line_channel.tasks  # noqa: F401
