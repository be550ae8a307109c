import ipaddress

import pytest

from testsupport.web_site import WebSite, serve

SHOP_TEXT = {
    "returns": "<p>Returns are accepted within seven days of delivery for a full refund to the card.</p>"
    "<h2>Exceptions</h2><p>Opened software and gift cards cannot be returned after the seal is broken.</p>",
    "warranty": "<p>保固期間為兩年，自購買日起算。人為損壞不在保固範圍內，請保留發票以便送修。</p>",
    "news": "<p>The spring sale starts on the first of March with twenty percent off every kettle.</p>",
    "gone": "<p>This autumn clearance page lists discontinued toasters sold at half their price.</p>",
    "shipping": "<p>Orders ship within two working days; island deliveries take three more days.</p>",
    "home": "<p>Welcome to the example shop. Read our policies on returns, warranty and shipping.</p>",
}


@pytest.fixture
def site():
    """The shop's website on 127.0.0.1: six pages, robots.txt keeping out /private/, a redirect
    (/old-shipping to /shipping), a sitemap, and links to another host (localhost) and to a
    private address (127.0.0.2, 10.0.0.8) the crawler must never fetch."""
    website = WebSite()
    server = serve(website)
    port = website.port
    home_links = (
        "/returns",
        "/warranty",
        "/news",
        "/gone",
        "/private/secret",
        "/old-shipping",
        "/brochure.pdf",
        f"http://localhost:{port}/elsewhere",
        f"http://127.0.0.2:{port}/internal",
        "http://10.0.0.8/admin",
        "mailto:shop@example.com",
        "/returns#exceptions",
    )
    website.page("/", "Example shop", SHOP_TEXT["home"], home_links)
    website.page("/returns", "Returns policy", SHOP_TEXT["returns"], ("/",))
    website.page("/warranty", "保固說明", SHOP_TEXT["warranty"], ("/",))
    website.page("/news", "News", SHOP_TEXT["news"], ("/",))
    website.page("/gone", "Autumn clearance", SHOP_TEXT["gone"], ("/",))
    website.page("/shipping", "Shipping", SHOP_TEXT["shipping"], ("/",))
    website.page("/private/secret", "Staff only", "<p>The staff discount code is SECRET42 for everyone.</p>")
    website.redirect("/old-shipping", "/shipping", 301)
    website.text("/brochure.pdf", "%PDF-1.4 not really", content_type="application/pdf")
    website.text("/robots.txt", "User-agent: *\nDisallow: /private/\n")
    sitemap = "".join(
        f"<url><loc>{website.url(path)}</loc></url>" for path in ("/returns", "/warranty", "/news")
    )
    website.text(
        "/sitemap.xml",
        f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{sitemap}</urlset>',
        content_type="application/xml",
    )
    yield website
    server.shutdown()
    server.server_close()


@pytest.fixture
def crawler_settings(settings):
    """The production setting (private addresses refused) with only 127.0.0.1 opened, where the
    test's site is; no pause between requests."""
    settings.WEB_SOURCES_ALLOW_PRIVATE_ADDRESSES = False
    settings.WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS = (ipaddress.ip_network("127.0.0.1/32"),)
    settings.WEB_CRAWL_DELAY_SECONDS = 0
    return settings
