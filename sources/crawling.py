"""Fetching and reading web pages for the crawler: the scope, polite guarded fetches, robots.txt,
sitemaps and the main content of a page. No database here: the crawl service (services.py)
decides what becomes of each page.

Every request goes through the outbound guard of the LLM providers (`llm.outbound`): the host is
resolved and every address checked at each connection, redirects are never followed by the
client but one by one here, each hop checked against the source's scope and robots.txt, and
connected to through the guard again. A body is read up to a size limit; gzip and deflate are
decompressed here, up to the same limit (a small compressed body cannot expand to gigabytes).
"""

from __future__ import annotations

import fnmatch
import time
import urllib.robotparser
import zlib
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx2
import lxml.etree
import lxml.html
import trafilatura

from llm import outbound

MAX_REDIRECTS = 5
MAX_SITEMAPS = 50
MAX_SITEMAP_URLS = 50_000
ROBOTS_MAX_BYTES = 512 * 1024
HTML_TYPES = ("text/html", "application/xhtml+xml")


def normalized_url(url: str, base: str | None = None) -> str | None:
    """`url` (relative to `base`) as the crawler keys pages: absolute, without fragment, scheme
    and host in lower case, default port dropped, "/" for an empty path. None for anything but
    http and https."""
    try:
        joined = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(joined)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


@dataclass(frozen=True)
class Scope:
    """The pages a source may fetch: one scheme and host (with its port), a path prefix, and
    include/exclude patterns matched (fnmatch, case-sensitive) against path and query."""

    scheme: str
    host: str
    path_prefix: str = "/"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, url: str, *, path_prefix: str = "/", include=(), exclude=()) -> Scope:
        parts = urlsplit(normalized_url(url) or url)
        return cls(parts.scheme, parts.netloc, path_prefix or "/", tuple(include), tuple(exclude))

    def outside(self, url: str) -> str | None:
        """Why `url` (normalised) is outside the scope, or None when it is inside."""
        parts = urlsplit(url)
        if parts.scheme != self.scheme or parts.netloc != self.host:
            return f"another site ({parts.scheme}://{parts.netloc})"
        if not parts.path.startswith(self.path_prefix):
            return f"outside the path {self.path_prefix}"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if self.include and not any(fnmatch.fnmatchcase(target, pattern) for pattern in self.include):
            return "matches no include pattern"
        for pattern in self.exclude:
            if fnmatch.fnmatchcase(target, pattern):
                return f"excluded by the pattern {pattern}"
        return None


@dataclass
class Fetched:
    """One fetch: the final URL after in-scope redirects, its status and body, or `error` (a
    sentence saying why nothing usable came back)."""

    url: str
    status: int | None = None
    body: bytes = b""
    content_type: str = ""
    charset: str | None = None
    error: str = ""
    location: str = ""
    redirected_from: list[str] = field(default_factory=list)


@dataclass
class Page:
    title: str
    text: str  # Markdown, headings kept
    links: list[str]
    noindex: bool = False


class FetchError(Exception):
    pass


class Fetcher:
    """A polite fetcher for one crawl run: a clear user agent, robots.txt obeyed (read once per
    site), a pause between two requests to one host, a timeout and a size limit on each."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float,
        max_bytes: int,
        delay: float,
        max_delay: float,
        allow_private: bool,
        allowed_networks: outbound.Networks = (),
    ) -> None:
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.delay = delay
        self.max_delay = max_delay
        self.client = outbound.guarded_client(
            allow_private=allow_private,
            allowed_networks=allowed_networks,
            timeout=timeout,
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self._robots: dict[str, urllib.robotparser.RobotFileParser | str] = {}
        self._last_request: dict[str, float] = {}
        self._host_delay: dict[str, float] = {}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- Politeness ---------------------------------------------------------------------------

    def _wait_turn(self, host: str) -> None:
        pause = self._host_delay.get(host, self.delay)
        last = self._last_request.get(host)
        if last is not None:
            remaining = last + pause - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
        self._last_request[host] = time.monotonic()

    def robots_refusal(self, url: str) -> str | None:
        """Why robots.txt forbids `url`, or None when it allows it."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        rules = self._robots.get(origin)
        if rules is None:
            rules = self._robots[origin] = self._read_robots(origin)
        if isinstance(rules, str):
            return rules
        if not rules.can_fetch(self.user_agent, url):
            return "disallowed by robots.txt"
        return None

    def _read_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | str:
        rules = urllib.robotparser.RobotFileParser()
        fetched = self._get(f"{origin}/robots.txt", max_bytes=ROBOTS_MAX_BYTES, follow=lambda url: None)
        if fetched.error or fetched.status is None:
            return f"robots.txt could not be read ({fetched.error or 'no answer'}), so nothing is fetched"
        if fetched.status in (401, 403):
            rules.disallow_all = True
        elif 400 <= fetched.status < 500:
            rules.allow_all = True
        elif fetched.status != 200:
            return f"robots.txt answered HTTP {fetched.status}, so nothing is fetched"
        else:
            rules.parse(fetched.body.decode("utf-8", errors="replace").splitlines())
            delay = rules.crawl_delay(self.user_agent)
            if delay:
                self._host_delay[urlsplit(origin).netloc] = min(max(float(delay), self.delay), self.max_delay)
        return rules

    # --- Fetching -----------------------------------------------------------------------------

    def get(self, url: str, *, follow) -> Fetched:
        """GET `url`, following redirects one hop at a time while `follow(next_url)` returns
        None (it returns why a hop may not be followed: out of scope, robots.txt)."""
        return self._get(url, max_bytes=self.max_bytes, follow=follow)

    def _get(self, url: str, *, max_bytes: int, follow) -> Fetched:
        redirected_from: list[str] = []
        for _hop in range(MAX_REDIRECTS + 1):
            fetched = self._get_once(url, max_bytes=max_bytes)
            fetched.redirected_from = redirected_from
            if fetched.error or fetched.status not in (301, 302, 303, 307, 308):
                return fetched
            location = normalized_url(fetched.location, url) if fetched.location else None
            if location is None:
                return Fetched(
                    url,
                    fetched.status,
                    error="a redirect without a usable Location",
                    redirected_from=redirected_from,
                )
            refusal = follow(location)
            if refusal:
                return Fetched(
                    url,
                    fetched.status,
                    error=f"redirects to {location}: {refusal}",
                    redirected_from=redirected_from,
                )
            redirected_from = [*redirected_from, url]
            url = location
        return Fetched(url, error=f"more than {MAX_REDIRECTS} redirects", redirected_from=redirected_from)

    def _get_once(self, url: str, *, max_bytes: int) -> Fetched:
        self._wait_turn(urlsplit(url).netloc)
        try:
            with self.client.stream("GET", url) as response:
                if response.is_redirect:
                    return Fetched(url, response.status_code, location=response.headers.get("location", ""))
                content_type = response.headers.get("content-type", "")
                mime = content_type.split(";")[0].strip().lower()
                charset = response.charset_encoding
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes and response.status_code == 200:
                    return Fetched(url, response.status_code, error=_too_large(max_bytes))
                body = _read_limited(response, max_bytes)
                return Fetched(url, response.status_code, body=body, content_type=mime, charset=charset)
        except FetchError as error:
            return Fetched(url, error=str(error))
        except httpx2.TimeoutException:
            return Fetched(url, error="the server did not answer in time")
        except httpx2.HTTPError as error:
            refused = outbound.refused_address_in(error)
            if refused is not None:
                return Fetched(
                    url,
                    error=f"refused: {refused.host} resolves to an internal address ({refused.address})",
                )
            return Fetched(url, error=f"could not connect ({error.__class__.__name__}: {error})"[:400])

    # --- Sitemaps -----------------------------------------------------------------------------

    def sitemap_urls(self, sitemap_url: str, *, follow) -> list[str]:
        """The page URLs a sitemap (or a sitemap index, one level of nesting per index, up to
        MAX_SITEMAPS files) lists, normalised. Raises FetchError saying why it cannot be read."""
        pending, seen, pages = [sitemap_url], set(), []
        while pending and len(seen) < MAX_SITEMAPS:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.add(current)
            refusal = self.robots_refusal(current) or follow(current)
            if refusal:
                raise FetchError(f"the sitemap {current} cannot be read: {refusal}")
            fetched = self.get(current, follow=follow)
            if fetched.error:
                raise FetchError(f"the sitemap {current} cannot be read: {fetched.error}")
            if fetched.status != 200:
                raise FetchError(f"the sitemap {current} answered HTTP {fetched.status}")
            body = fetched.body
            if body[:2] == b"\x1f\x8b":  # a .xml.gz served as it is
                body = _decompress(body, "gzip", self.max_bytes)
            try:
                parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
                root = lxml.etree.fromstring(body, parser=parser)
            except lxml.etree.XMLSyntaxError as error:
                raise FetchError(f"the sitemap {current} is not valid XML ({error})") from error
            locations = [(loc.text or "").strip() for loc in root.iter("{*}loc")]
            if lxml.etree.QName(root).localname == "sitemapindex":
                pending.extend(url for url in (normalized_url(loc) for loc in locations) if url)
                continue
            for location in locations:
                url = normalized_url(location)
                if url and url not in pages:
                    pages.append(url)
                if len(pages) >= MAX_SITEMAP_URLS:
                    return pages
        return pages


def _too_large(max_bytes: int) -> str:
    return f"the page is larger than {max_bytes:,} bytes"


def _decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(47 if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, max_bytes + 1)
    except zlib.error as error:
        raise FetchError(f"the {encoding} body is damaged") from error
    if len(data) > max_bytes:
        raise FetchError(_too_large(max_bytes) + " once decompressed")
    return data


def _read_limited(response: httpx2.Response, max_bytes: int) -> bytes:
    """The body, decompressed here with a bound on its decompressed size."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        decompressor = None
    elif encoding in ("gzip", "x-gzip"):
        decompressor = zlib.decompressobj(47)
    elif encoding == "deflate":
        decompressor = zlib.decompressobj(zlib.MAX_WBITS)
    else:
        raise FetchError(f"the server sent an encoding the crawler does not read ({encoding})")
    parts: list[bytes] = []
    total = 0
    raw_total = 0
    for raw in response.iter_raw():
        raw_total += len(raw)
        if raw_total > max_bytes:
            raise FetchError(_too_large(max_bytes))
        if decompressor is None:
            data = raw
        else:
            try:
                data = decompressor.decompress(raw, max_bytes + 1 - total)
            except zlib.error as error:
                raise FetchError(f"the {encoding} body is damaged") from error
            if decompressor.unconsumed_tail:
                raise FetchError(_too_large(max_bytes) + " once decompressed")
        total += len(data)
        if total > max_bytes:
            raise FetchError(_too_large(max_bytes) + (" once decompressed" if decompressor else ""))
        parts.append(data)
    return b"".join(parts)


# --- Reading a page -------------------------------------------------------------------------


def read_page(body: bytes, *, url: str, charset: str | None, selector: str = "") -> Page:
    """The main content of an HTML page as Markdown (headings, lists and tables kept) through
    trafilatura, or, with a CSS selector, the content of the elements it selects; its title
    and its links (absolute, normalised). Raises ValueError for a selector that does not parse."""
    parser = lxml.html.HTMLParser(encoding=charset) if charset else None
    try:
        tree = lxml.html.document_fromstring(body, parser=parser)
    except (lxml.etree.ParserError, ValueError, LookupError):
        return Page(title="", text="", links=[])
    title = " ".join((tree.findtext(".//title") or "").split())
    if not title:
        heading = tree.find(".//h1")
        title = " ".join(heading.text_content().split()) if heading is not None else ""
    robots = " ".join(
        (meta.get("content") or "").lower()
        for meta in tree.iter("meta")
        if (meta.get("name") or "").lower() == "robots"
    )
    links = []
    base = tree.find(".//base[@href]")
    base_url = urljoin(url, base.get("href")) if base is not None else url
    if "nofollow" not in robots:
        for element in tree.iter("a"):
            href = element.get("href")
            if not href or "nofollow" in (element.get("rel") or "").lower():
                continue
            link = normalized_url(href, base_url)
            if link and link not in links:
                links.append(link)
    content = tree
    if selector:
        chosen = tree.cssselect(selector)
        if not chosen:
            return Page(title=title, text="", links=links, noindex="noindex" in robots)
        content = lxml.html.document_fromstring("<html><head></head><body></body></html>")
        body_element = content.find("body")
        for element in chosen:
            body_element.append(lxml.html.fromstring(lxml.html.tostring(element)))
    text = trafilatura.extract(
        content,
        url=url,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
        deduplicate=False,
    )
    return Page(title=title[:300], text=(text or "").strip(), links=links, noindex="noindex" in robots)


def selector_error(selector: str) -> str | None:
    """Why a CSS selector does not parse, or None."""
    from cssselect import GenericTranslator, SelectorError

    try:
        GenericTranslator().css_to_xpath(selector)
    except SelectorError as error:
        return str(error) or "not a CSS selector"
    return None
