"""The crawler: turns a website, a local folder or a Git repository into a stream of fetched documents.

The pipeline calls `crawl()` and reads `CrawlOutcome`s; everything else here is how.
One module, one job: `urls` (normalisation), `scope`, `robots`, `politeness` (per-host
gates), `fetcher` (HTTP), `content` (types and decoding), `links`, `discover` (llms.txt,
llms-full.txt and sitemaps), `frontier`, `page`, `app_shell` and `render` (pages built by
scripts, rendered in Chromium), `crawler` (the website crawl), `local` (folders), `git`
(repositories) and `api_descriptions` (an OpenAPI file as one page per tag).
"""

from docshelf.crawl.base import CrawlOptions, CrawlOutcome, CrawlReport, DiscoveryMethod, Fetched, Validators
from docshelf.crawl.crawler import CrawlRun, crawl
from docshelf.crawl.local import is_local
from docshelf.crawl.naming import default_source_name
from docshelf.crawl.urls import normalize_url

__all__ = [
    "CrawlOptions",
    "CrawlOutcome",
    "CrawlReport",
    "CrawlRun",
    "DiscoveryMethod",
    "Fetched",
    "Validators",
    "crawl",
    "default_source_name",
    "is_local",
    "normalize_url",
]
