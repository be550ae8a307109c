"""Crawl throughput of a web source, beside the raw fetch + extract of the same pages.

    .venv/bin/python bench/crawl_throughput.py               # 300 pages
    .venv/bin/python bench/crawl_throughput.py --pages 60    # quicker, noisier

The site: a threaded http.server on 127.0.0.1 (testsupport/web_site.py) with robots.txt and
`--pages` pages of about 6 KB of HTML each (a navigation of 30 links, a main article of six
paragraphs in English or Traditional Chinese, a footer); every page links to the next five, so
the crawler finds them all by following links.

Raw: one plain httpx client GETs every page in turn and trafilatura extracts its main content to
Markdown (the options the crawler uses): the floor, what any crawler must spend.
Crawl: `sources.services.crawl_run_execute`, as the Celery task runs it, with no pause between
requests (WEB_CRAWL_DELAY_SECONDS=0; production waits 1 s a host, so a real site is crawled at
most 60 pages a minute by design): robots.txt, the outbound guard's checked connection, the
bounded read, the extraction, links and scope, the content hash, the document written to storage
and to the database, its ingestion queued (to a file-system broker nobody reads: embedding is
the ingestion benchmark's business), the page's outcome recorded. Re-sync: the same source again,
every page unchanged (one fetch and a hash each, nothing written). Raw runs before and after the
crawls; the better raw figure is the floor. Everything runs in a private SQLite database.
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from _environment import (
    ROOT,
    Results,
    add_results_argument,
    machine,
    prepare_environment,
    stop_milvus_server,
    versions,
)

ENGLISH = (
    "Returns are accepted within seven days of delivery when the item is unused and in its box.",
    "Refunds go back to the card used for the order within five working days of our receipt.",
    "Opened software, gift cards and personalised items cannot be returned once delivered.",
    "Our warranty covers manufacturing faults for two years from the date on the invoice.",
    "Shipping to the outlying islands takes three more days and costs a flat fee per parcel.",
    "Customer service answers by phone on weekdays from nine in the morning to six at night.",
)
CHINESE = (
    "商品到貨後七天內，未拆封且包裝完整者可申請退貨，運費由本公司負擔。",
    "退款將於收到退貨後五個工作天內退回原信用卡，請留意銀行入帳時間。",
    "已拆封軟體、禮物卡及客製化商品，除瑕疵外恕不接受退貨。",
    "保固期間為兩年，自發票日期起算，人為損壞不在保固範圍內。",
    "離島地區配送需另加三天，並酌收固定運費，詳情請洽客服。",
    "客服專線服務時間為週一至週五上午九點至下午六點，國定假日休息。",
)


def build_site(pages: int, seed: int):
    sys.path.insert(0, str(ROOT))
    from testsupport.web_site import WebSite, serve

    rng = random.Random(seed)
    site = WebSite()
    server = serve(site)
    navigation = tuple(f"/section/{index}" for index in range(30))
    for index in range(pages):
        sentences = CHINESE if index % 2 else ENGLISH
        paragraphs = "".join(
            f"<h2>Part {part + 1}</h2><p>" + " ".join(rng.sample(sentences, 4)) + f" (page {index})</p>"
            for part in range(6)
        )
        links = navigation + tuple(f"/page/{(index + step) % pages}" for step in range(1, 6))
        site.page(f"/page/{index}", f"Help page {index}", paragraphs, links)
    site.text("/robots.txt", "User-agent: *\nDisallow: /section/\n")
    return site, server


def raw_fetch_and_extract(urls: list[str]) -> float:
    """Seconds to GET every URL with a plain client and extract its main content."""
    import httpx2
    import trafilatura

    started = time.perf_counter()
    with httpx2.Client(timeout=15) as client:
        for url in urls:
            response = client.get(url)
            text = trafilatura.extract(
                response.content,
                url=url,
                output_format="markdown",
                include_formatting=True,
                include_tables=True,
                favor_recall=True,
                deduplicate=False,
            )
            assert text, url
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=300, help="pages of the site (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    add_results_argument(parser)
    arguments = parser.parse_args()
    results = Results(arguments.results)

    with tempfile.TemporaryDirectory(prefix="platform-bench-crawl-") as workdir:
        server = prepare_environment(Path(workdir), production=True)
        import os

        # Ingestion is queued, not run: this measures the crawl.
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
        os.environ["WEB_CRAWL_DELAY_SECONDS"] = "0"
        os.environ["WEB_SOURCES_ALLOWED_PRIVATE_NETWORKS"] = "127.0.0.1/32"
        site, web_server = build_site(arguments.pages, arguments.seed)
        try:
            sys.path.insert(0, str(ROOT))
            import django

            django.setup()
            from django.core.management import call_command

            from sources import services
            from sources.models import CrawlRun, WebSource
            from tenants.services import plan_resolve, tenant_create

            call_command("migrate", verbosity=0)
            tenant = tenant_create(name="Crawl bench", plan=plan_resolve(name="enterprise"))
            urls = [site.url(f"/page/{index}") for index in range(arguments.pages)]
            source = WebSource.objects.create(
                tenant=tenant,
                url=urls[0],
                scope_host=f"127.0.0.1:{site.port}",
                scope_path="/page/",
                max_pages=arguments.pages + 10,
            )
            raw_fetch_and_extract(urls[:5])  # warm-up: trafilatura's first call loads its tables

            def crawl() -> tuple[float, dict]:
                run = CrawlRun.objects.create(tenant=tenant, source=source)
                started = time.perf_counter()
                run = services.crawl_run_execute(tenant_id=tenant.pk, run_id=run.pk)
                seconds = time.perf_counter() - started
                assert run.status == "done", run.error
                return seconds, run.counts

            raw_before = raw_fetch_and_extract(urls)
            crawl_seconds, crawl_counts = crawl()
            resync_seconds, resync_counts = crawl()
            raw_after = raw_fetch_and_extract(urls)
            assert crawl_counts.get("added") == arguments.pages, crawl_counts
            assert resync_counts.get("unchanged") == arguments.pages, resync_counts
            raw = min(raw_before, raw_after)
            per_minute = {
                "raw fetch + extract": arguments.pages / raw * 60,
                "crawl (new pages)": arguments.pages / crawl_seconds * 60,
                "re-sync (pages unchanged)": arguments.pages / resync_seconds * 60,
            }

            print("Crawl throughput benchmark")
            print(f"machine: {machine()}")
            print(f"packages: {versions('Django', 'trafilatura', 'lxml', 'httpx2')}\n")
            with results.section():
                print(
                    f"{arguments.pages} pages of about {len(site.routes[urls[1].removeprefix(site.origin)].body) // 1000} KB "
                    "on 127.0.0.1, one after another, no pause between requests; SQLite, DEBUG off.\n"
                )
                print("| run | seconds | pages a minute | ms a page | vs raw |")
                print("| --- | ---: | ---: | ---: | ---: |")
                for name, seconds in (
                    ("raw fetch + extract (better of two)", raw),
                    ("crawl (new pages)", crawl_seconds),
                    ("re-sync (pages unchanged)", resync_seconds),
                ):
                    rate = arguments.pages / seconds * 60
                    print(
                        f"| {name} | {seconds:.2f} | {rate:,.0f} | {seconds / arguments.pages * 1000:.1f} "
                        f"| {rate / per_minute['raw fetch + extract']:.2f} |"
                    )
                print(f"\nraw runs: {raw_before:.2f} s before the crawls, {raw_after:.2f} s after.")
            for name in ("crawl (new pages)", "re-sync (pages unchanged)"):
                results.figure(
                    name,
                    per_minute[name],
                    "pages/min",
                    floor=per_minute["raw fetch + extract"],
                    floor_name="raw fetch + extract of the same pages",
                )
        finally:
            web_server.shutdown()
            stop_milvus_server(server)


if __name__ == "__main__":
    main()
