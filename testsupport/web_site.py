"""A small website served on 127.0.0.1 by a threaded http.server, for the crawler's tests and
bench: pages a test can change or take away between two syncs, redirects, robots.txt and a
sitemap, and a log of every request (path and Host header) to prove what was never fetched."""

from __future__ import annotations

import gzip
import http.server
import threading
from dataclasses import dataclass, field


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    location: str = ""
    gzip: bool = False


@dataclass
class WebSite:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (Host header, path)
    user_agents: set[str] = field(default_factory=set)
    port: int = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def page(self, path: str, title: str, text: str, links: tuple[str, ...] = (), **options) -> None:
        anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
        html = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<nav><ul>{anchors}</ul></nav><main><article><h1>{title}</h1>{text}</article></main>"
            "<footer>© Example shop</footer></body></html>"
        )
        self.routes[path] = Route(html.encode(), **options)

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.routes[path] = Route(status=status, location=to)

    def text(self, path: str, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
        self.routes[path] = Route(body.encode(), content_type=content_type)

    def remove(self, path: str, status: int = 404) -> None:
        self.routes[path] = Route(b"<html><body>Not found</body></html>", status=status)

    def fetched(self, path: str) -> int:
        return sum(1 for _host, requested in self.requests if requested == path)


def serve(site: WebSite):
    """Start serving `site` on a free port of 127.0.0.1; returns the server (call shutdown())."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's name
            site.requests.append((self.headers.get("Host", ""), self.path))
            site.user_agents.add(self.headers.get("User-Agent", ""))
            route = site.routes.get(self.path) or Route(b"<html><body>Not found</body></html>", status=404)
            body = gzip.compress(route.body) if route.gzip else route.body
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", route.location)
            self.send_header("Content-Type", route.content_type)
            if route.gzip:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
