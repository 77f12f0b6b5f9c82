"""`docshelf add` and `docshelf rm`: put a source on the shelf, take it off."""

from __future__ import annotations

import sys

import click

from docshelf.cli.enrich import (
    EXIT_CHUNKS_PENDING,
    context_choice,
    context_option,
    enrich_option,
    model_option,
    remember_enrichment,
    remembered_enrichment,
)
from docshelf.cli.shelf import (
    EXIT_PAGES_FAILED,
    ShelfContext,
    allow_hosts_option,
    config_errors,
    emit_json,
)


@click.command()
@click.argument("url_or_path")
@click.option("--source", "source_name", metavar="NAME[@VERSION]",
              help="Source name (default: derived from the host and path, without a version segment).")
@click.option("--version", "version", metavar="VERSION",
              help="The version the docs are of (default: what the site states, e.g. Sphinx's VERSION or /en/4.2/; "
                   "none found: unversioned).")
@click.option("--package", "packages", multiple=True, metavar="NAME",
              help="A package (PyPI or npm name) these docs are about, for `docshelf project` (repeatable).")
@click.option("--include", multiple=True, metavar="GLOB", help="Only URLs matching this glob (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip URLs matching this glob (repeatable).")
@click.option("--max-pages", type=click.IntRange(min=1), help="Stop after this many pages.")
@click.option("--max-depth", type=click.IntRange(min=0), help="Follow links at most this deep from the start page.")
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=8, show_default=True,
              help="Requests in flight.")
@click.option("--render", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Render pages in Chromium: auto renders only app shells (pages built by scripts).")
@click.option("--render-concurrency", type=click.IntRange(min=1, max=16), default=2, show_default=True,
              help="Pages rendered at once.")
@click.option("--ref", metavar="REF", help="Git repository: the branch, tag or commit to read (default: its HEAD).")
@click.option("--path", "repo_path", metavar="FOLDER",
              help="Git repository: the folder holding the docs (default: docs/, doc/, mkdocs.yml's or conf.py's).")
@click.option("--prefer-llms-full", is_flag=True,
              help="Read the site from its llms-full.txt when it publishes one, instead of crawling its pages.")
@click.option("--prefer-markdown", is_flag=True,
              help='Read each page from the Markdown twin it advertises (<link rel="alternate" type="text/markdown">).')
@click.option("--include-pdf", is_flag=True,
              help="Also read the PDFs a site links to or a folder holds (a PDF named as URL_OR_PATH always is).")
@enrich_option
@context_option
@model_option
@click.option("--reembed", is_flag=True,
              help="For a pack: embed its chunks with the shelf's model instead of using its vectors.")
@allow_hosts_option
@click.option("--queue", is_flag=True,
              help="PostgreSQL shelf: queue the crawl for `docshelf worker`s (on any machine) and return its job id.")
@click.option("--wait", is_flag=True, help="With --queue: follow the job until it ends, and exit as add would.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.pass_obj
def add(shelf: ShelfContext, url_or_path: str, source_name: str | None, version: str | None,
        packages: tuple[str, ...], include: tuple[str, ...],
        exclude: tuple[str, ...], max_pages: int | None, max_depth: int | None, concurrency: int, render: str,
        render_concurrency: int, ref: str | None, repo_path: str | None, prefer_llms_full: bool,
        prefer_markdown: bool, include_pdf: bool,
        enrich: str | None, context: str | None, model: str | None, reembed: bool,
        allow_hosts: str | None, queue: bool, wait: bool, as_json: bool) -> None:
    """Crawl a documentation site, folder or Git repository into the shelf (re-run it to refresh), or add a pack.

    Reads HTML, Markdown, text, reStructuredText, Jupyter notebooks, OpenAPI/Swagger
    descriptions (a page per tag) and, with --include-pdf or when named, PDF. A pack (a
    .docshelf file or URL, or NAME in a registry: https://host/shelves/NAME) is added
    without crawling or embedding; a newer pack of the same source replaces it.

    A source is stored per version (`name@version`): the version is --version, else the one in
    --source NAME@VERSION, else what the site states; none found: unversioned.

    The host you give is trusted; a redirect, sitemap or robots.txt leading elsewhere to a private,
    loopback, link-local or reserved address is refused unless --allow-hosts names it.

    \b
    Example:
        docshelf add https://docs.python.org/3/library/ --max-pages 200
        docshelf add ./docs --source mydocs
        docshelf add https://github.com/org/repo --ref v2.1 --path docs/
        docshelf add ./docs --enrich llm --model openai:gpt-4o-mini --context llm
        docshelf add https://docs.djangoproject.com/en/4.2/ --source django --package django
        docshelf add flask.docshelf
        docshelf add https://example.org/shelves/flask
    """
    import asyncio

    from docshelf.cli.packs import add_pack_command, pack_location

    with config_errors():
        pack = pack_location(url_or_path)
    if pack is not None:
        crawl_flags = {"--source": source_name, "--version": version, "--package": packages, "--include": include,
                       "--exclude": exclude, "--max-pages": max_pages,
                       "--max-depth": max_depth, "--enrich": enrich, "--context": context, "--model": model,
                       "--render": render != "auto", "--ref": ref, "--path": repo_path,
                       "--prefer-llms-full": prefer_llms_full, "--prefer-markdown": prefer_markdown,
                       "--include-pdf": include_pdf}
        given = [flag for flag, value in crawl_flags.items() if value]
        if given:
            raise click.UsageError(f"{', '.join(given)}: crawl options do not apply to a pack ({url_or_path})")
        add_pack_command(shelf, pack[0], pack[1], reembed, as_json)
        return
    if reembed:
        raise click.UsageError(f"--reembed applies to packs; {url_or_path} is crawled (and embedded) anyway")
    from docshelf.access import AccessPolicy
    from docshelf.cli.enrich import build_enricher, echo_failures, report_line
    from docshelf.cli.progress import IngestProgress
    from docshelf.crawl.base import CrawlOptions
    from docshelf.crawl.git import is_git_source
    from docshelf.ingest import Ingestor

    if version is not None and (not version.strip() or "@" in version or "/" in version):
        raise click.BadParameter(f"{version!r} is not a version (e.g. 4.2, 5.1.3, v2)", param_hint="--version")
    with config_errors():
        access = AccessPolicy.parse(allow_hosts or "")
        ingestor = Ingestor(shelf.store, shelf.embedder_factory(), access=access)
        name = asyncio.run(ingestor.source_for(url_or_path, source_name, version, CrawlOptions(ref=ref, path=repo_path)))
        enrich, context, model = remembered_enrichment(shelf, name, enrich, context, model)
        existing = shelf.store.get_source(name)
    # A repository's refresh reads the ref and folder it was added with: another ref would be another source.
    if existing is not None and existing.root == url_or_path:
        ref = ref or existing.options.get("ref")
        repo_path = repo_path or existing.options.get("path")
    if context is not None and enrich != "llm":
        raise click.UsageError(f"--context {context} needs --enrich llm")
    options = CrawlOptions(include=include, exclude=exclude, max_pages=max_pages, max_depth=max_depth,
                           concurrency=concurrency, per_host=min(concurrency, 4), include_pdf=include_pdf,
                           render=render, render_concurrency=render_concurrency,  # type: ignore[arg-type]
                           ref=ref, path=repo_path, prefer_llms_full=prefer_llms_full,
                           prefer_markdown=prefer_markdown)
    if (ref or repo_path) and not is_git_source(url_or_path, options):
        flag = "--ref" if ref else "--path"
        raise click.UsageError(f"{flag} is for Git repositories, and {url_or_path} is not one "
                               "(a repository URL, git+ssh://…, file://…/repo.git, or a local clone with --ref)")
    if queue:
        from docshelf.cli.jobs import queue_add

        if enrich == "llm":
            raise click.UsageError("--queue: workers write extractive titles; run `docshelf enrich` after the job")
        queue_add(shelf, url_or_path, name, options, access, wait=wait, as_json=as_json)
        return
    if wait:
        raise click.UsageError("--wait goes with --queue (without it, add runs the crawl itself and returns when done)")
    with config_errors(), IngestProgress(enabled=not as_json, enriching=enrich == "llm") as progress:
        ingestor.enricher = build_enricher(shelf, model, context_choice(context), progress) if enrich == "llm" else None
        ingestor.progress = progress
        # The key is settled: "" keeps an unversioned one from being detected again.
        summary = ingestor.add(url_or_path, source=name, options=options, packages=packages,
                               version=name.partition("@")[2])
        remember_enrichment(shelf, name, enrich, context, model)
    if as_json:
        emit_json(summary.to_json())
    else:
        from docshelf.cli.render import render_summary

        render_summary(summary)
        if summary.enrichment is not None:
            click.echo(f"titles and summaries: {report_line(summary.enrichment)}")
            echo_failures(summary.enrichment, summary.source)
    if summary.pages_failed:
        sys.exit(EXIT_PAGES_FAILED)
    if summary.enrichment is not None and summary.enrichment["failed"]:
        sys.exit(EXIT_CHUNKS_PENDING)


@click.command()
@click.argument("source", metavar="SOURCE[@VERSION]")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def rm(shelf: ShelfContext, source: str, as_json: bool) -> None:
    """Remove a source, or one version of it, with all its pages, chunks and vectors.

    A source with several versions is removed one version at a time; removing one never touches
    another's pages, and removing the last one removes the source.

    \b
    Example:
        docshelf rm django@4.2
    """
    from docshelf.versions import NotOnShelfError, ShelfVersions

    with config_errors():
        try:
            source = ShelfVersions.of(shelf.store.source_names()).only_version(source)
        except NotOnShelfError as exc:
            raise click.UsageError(str(exc)) from exc
        removed = shelf.store.remove_source(source)
    if as_json:
        emit_json({"source": source, "pages_removed": removed})
    else:
        click.echo(f"removed {source}: {removed} pages")
