"""CORS for the widget's API: a browser may call /v1/widget/… (preflight included) from an origin
that an enabled widget allows, and from no other (django-cors-headers asks this hook for every
/v1/ request whose origin its own settings do not allow)."""

from widgets.origins import normalize_origin

WIDGET_API_PREFIX = "/v1/widget/"


def widget_origin_allowed(sender, request, **kwargs) -> bool:
    if not request.path.startswith(WIDGET_API_PREFIX):
        return False
    origin = normalize_origin(request.headers.get("Origin", ""))
    if origin is None:
        return False
    from widgets.selectors import all_allowed_origins

    try:
        return origin in all_allowed_origins()
    except Exception:  # noqa: BLE001 - cache or database down: no CORS; the request itself says why
        return False
