"""An enterprise's own website, for the widget's browser tests: a plain HTML page served by a
small threaded HTTP server on a port of its own, so the page's origin is not the platform's and
it sends no Content-Security-Policy. Its own CSS is deliberately hostile (every element red,
serif and upside-down spacing) so a test can see the widget's shadow root keep it out."""

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  * {{ color: #b00 !important; font-family: serif; letter-spacing: 3px; }}
  button {{ background: yellow; border: 5px dashed green; }}
  body {{ margin: 40px; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>歡迎光臨！本店販售筆記型電腦與周邊商品。</p>
{snippet}
</body>
</html>
"""


class HostPageServer:
    """Serves `PAGE` with `snippet` (set it once the widget exists: the widget's allowed
    origins need this server's port first) at every path, on 127.0.0.1 and a free port."""

    def __init__(self, *, title: str = "小明的網路商店"):
        self.snippet = ""
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                body = PAGE.format(title=html.escape(title), snippet=page.snippet).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args):  # noqa: A002 - http.server's signature
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="host-page", daemon=True)

    def __enter__(self) -> "HostPageServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
