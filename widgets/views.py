"""`/widget.js`: the embeddable widget, served by the platform itself (no CDN)."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.views.decorators.http import require_GET

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
