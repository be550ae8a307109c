"""`/widget.js`: the embeddable widget, served by the platform itself (no CDN); and
`/widget/demo/?key=pk_…`: a plain page that embeds one widget, to try it (and preview it) without
a website of one's own."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from widgets import selectors
from widgets.api import PUBLIC_KEY_PATTERN, embed_snippet
from widgets.origins import normalize_origin

SCRIPT = "widget/widget.js"


@lru_cache(maxsize=1)
def _script() -> bytes:
    found = finders.find(SCRIPT) or str(Path(settings.STATIC_ROOT) / SCRIPT)
    return Path(found).read_bytes()


@require_GET
def widget_script(request):
    response = HttpResponse(
        _script() if not settings.DEBUG else Path(finders.find(SCRIPT)).read_bytes(),
        content_type="text/javascript; charset=utf-8",
    )
    # Short: a new release reaches the enterprises' pages within minutes.
    response["Cache-Control"] = "public, max-age=300"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_GET
def widget_demo(request):
    """The page shows a widget only when that widget allows this very origin (the platform's
    own): the tenant admin chose to have it here, as `seed_demo` does for the demo widget. Any
    other key is a 404, so the page cannot put a tenant's widget where it was not allowed."""
    key = request.GET.get("key", "")
    widget = selectors.widget_by_public_key(public_key=key) if PUBLIC_KEY_PATTERN.match(key) else None
    own_origin = normalize_origin(request.build_absolute_uri("/").rstrip("/"))
    if widget is None or not widget.enabled or own_origin not in widget.allowed_origins:
        raise Http404("No widget to show here.")
    context = {
        "widget": widget,
        "snippet": embed_snippet(widget, base_url=request.build_absolute_uri("/")),
        # From this origin itself, whatever PUBLIC_BASE_URL says: the page's CSP allows 'self'.
        "script_src": request.build_absolute_uri("/widget.js"),
    }
    return render(request, "widgets/demo.html", context)
