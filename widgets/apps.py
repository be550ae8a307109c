from django.apps import AppConfig


class WidgetsConfig(AppConfig):
    name = "widgets"
    verbose_name = "Website widget"

    def ready(self) -> None:
        # CORS for /v1/widget/… follows the widgets' allowed origins (django-cors-headers' hook).
        from corsheaders.signals import check_request_enabled

        import widgets.schema  # noqa: F401 - the visitor token's OpenAPI security scheme
        from widgets.cors import widget_origin_allowed

        check_request_enabled.connect(widget_origin_allowed, dispatch_uid="widgets.cors")
