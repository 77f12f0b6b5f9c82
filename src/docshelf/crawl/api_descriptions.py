"""An OpenAPI / Swagger file is several pages: its overview and one page per tag, each its own outcome.

The split happens here, between the crawl and the pipeline, so that every tag page
is a page of its own on the shelf (stored, refreshed and removed like any other).
A file that is no API description is skipped; one that is malformed is passed on
whole, and fails in extraction with the reason (a dangling `$ref`, bad YAML).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import replace

from docshelf.crawl.base import CrawlOutcome
from docshelf.crawl.links import markdown_links
from docshelf.errors import ExtractError, SkippedPage


async def split_api_descriptions(outcomes: AsyncGenerator[CrawlOutcome, None]) -> AsyncIterator[CrawlOutcome]:
    """Yield `outcomes`, each API description replaced by the outcomes of its pages."""
    async with aclosing(outcomes):
        async for outcome in outcomes:
            if outcome.fetched is not None and outcome.fetched.kind == "openapi":
                for page in api_pages(outcome):
                    yield page
            else:
                yield outcome


def api_pages(outcome: CrawlOutcome) -> list[CrawlOutcome]:
    """Return the outcomes of an API description's pages (Markdown), or why it has none."""
    from docshelf.extract.formats.openapi import looks_like_openapi, openapi_pages

    fetched = outcome.fetched
    assert fetched is not None
    if not looks_like_openapi(fetched.text):
        return [CrawlOutcome(fetched.url, error=SkippedPage(fetched.url, "JSON/YAML that is not an OpenAPI document"))]
    try:
        pages = openapi_pages(fetched.text, fetched.url)
    except ExtractError:
        return [outcome]  # extraction fails on it again and records the reason as this one page's failure
    return [
        CrawlOutcome(page.url, fetched=replace(fetched, url=page.url, kind="markdown", text=page.markdown,
                                               links=[link for link in markdown_links(page.markdown, page.url)
                                                      if not link.startswith(fetched.url)]))
        for page in pages
    ]
