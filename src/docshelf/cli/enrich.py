"""`docshelf enrich`, and the `--enrich llm` / `--context` / `--model` options of `docshelf add`.

Registered on the main group by cli.py. Pydantic AI loads only when a command actually uses a model.

Exit codes: 0 every chunk enriched; 1 some chunks failed and stay pending (re-run to retry them);
2 usage or configuration error (no model configured, bad --model, unknown source).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from docshelf.cli.shelf import ShelfContext, check_sources, config_errors, emit_json
from docshelf.errors import ConfigError

if TYPE_CHECKING:
    from docshelf.enrich_llm import EnrichProgress, LLMEnricher

EXIT_CHUNKS_PENDING = 1

enrich_option = click.option(
    "--enrich", type=click.Choice(["extractive", "llm"]),
    help="Who writes chunk titles and summaries: taken from the page, or a model (--model). "
         "Unset: as the source was last added (extractive for a new source).")
context_option = click.option(
    "--context", "context", type=click.Choice(["none", "llm"]),
    help="llm: a model-written sentence placing each chunk in its page is embedded with it; none: drop it. "
         "Unset: chunks keep theirs (new chunks get none).")
model_option = click.option(
    "--model", metavar="MODEL",
    help="Pydantic AI model string for titles and summaries, e.g. openai:gpt-4o-mini (env DOCSHELF_LLM_MODEL).")


def remembered_enrichment(shelf: ShelfContext, source: str, enrich: str | None, context: str | None,
                          model: str | None) -> tuple[str, str | None, str | None]:
    """Return (enrich, context, model) for `docshelf add`: the flags given, else what the source was added with.

    A refresh without flags then keeps a source's model-written titles instead of writing extractive ones.
    """
    from docshelf.ingest import ENRICH_OPTION

    if enrich is not None:
        return enrich, context, model
    stored = shelf.store.get_source(source)
    remembered = stored.options.get(ENRICH_OPTION) if stored else None
    if not remembered:
        return "extractive", context, model
    return "llm", context or remembered.get("context"), model or remembered.get("model")


def remember_enrichment(shelf: ShelfContext, source: str, enrich: str, context: str | None,
                        model: str | None) -> None:
    """Record on the source how its chunks are enriched, for the next `docshelf add` of it."""
    from dataclasses import replace

    from docshelf.ingest import ENRICH_OPTION

    stored = shelf.store.get_source(source)
    if stored is None:
        return
    options = {k: v for k, v in stored.options.items() if k != ENRICH_OPTION}
    if enrich == "llm":
        options[ENRICH_OPTION] = {"model": model, "context": context}
    if options != stored.options:
        shelf.store.upsert_source(replace(stored, options=options, last_crawl_at=None))


def context_choice(context: str | None) -> bool | None:
    """Return the enricher's `with_context` for a --context value (None: unset, keep each chunk's)."""
    return None if context is None else context == "llm"


def build_enricher(shelf: ShelfContext, model: str | None, with_context: bool | None,
                   progress: EnrichProgress) -> LLMEnricher:
    """Return the model enricher for the shelf.

    Raises:
        ConfigError: no model is configured, the model string is bad, or a setting is not a number.
    """
    from docshelf.enrich_llm import LLMEnricher
    from docshelf.llm import int_setting, resolve_model

    resolved = resolve_model(model)
    if resolved is None:
        raise ConfigError("model-written titles need a model: set DOCSHELF_LLM_MODEL or pass --model "
                          "(e.g. openai:gpt-4o-mini, or a model name with DOCSHELF_LLM_BASE_URL for a local server)")
    concurrency = int_setting("DOCSHELF_ENRICH_CONCURRENCY")
    if concurrency < 1:
        raise ConfigError(f"DOCSHELF_ENRICH_CONCURRENCY={concurrency}: give at least 1")
    return LLMEnricher(shelf.store, resolved.model, resolved.label, with_context=with_context,
                       concurrency=concurrency, progress=progress)


@click.command("enrich")
@click.option("--source", metavar="NAME", help="Enrich only this source (default: the whole shelf).")
@model_option
@context_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.pass_obj
def enrich_command(shelf: ShelfContext, source: str | None, model: str | None, context: str | None,
                   as_json: bool) -> None:
    """Have a model write the titles and summaries of chunks it has not written yet, and re-embed them.

    Resumable: re-run it after an interruption or failures, and it asks only for what is missing.
    Answers are cached in the shelf, so chunks the model has seen cost nothing again.

    \b
    Example:
        DOCSHELF_LLM_MODEL=openai:gpt-4o-mini docshelf enrich --source flask
        docshelf enrich --model openai:gpt-4o-mini --context llm --json
    """
    from docshelf.cli.progress import IngestProgress
    from docshelf.ingest import Ingestor

    with config_errors(), IngestProgress(enabled=not as_json, crawling=False, enriching=True) as progress:
        if source is not None:
            (source,) = check_sources(shelf, (source,))
        enricher = build_enricher(shelf, model, context_choice(context), progress)
        summary = Ingestor(shelf.store, shelf.embedder_factory(), progress, enricher).enrich(source)
    if as_json:
        emit_json(summary.to_json())
    else:
        click.echo(f"{source or 'all sources'}: {report_line(summary.enrichment)}; {summary.embedded} embedded "
                   f"in {summary.seconds:.1f}s")
        echo_failures(summary.enrichment, source)
    if summary.enrichment["failed"]:
        sys.exit(EXIT_CHUNKS_PENDING)


def report_line(report: dict[str, Any]) -> str:
    """Return the one-line account of an enrichment run: chunks, cache hits, failures, tokens, cost."""
    cost = "cost unknown" if report["cost_usd"] is None else f"about ${report['cost_usd']:.4f}"
    return (f"{report['enriched']} chunks enriched by {report['model']} ({report['cache_hits']} from the cache), "
            f"{report['failed']} failed and pending; {report['requests']} requests, "
            f"{report['input_tokens']:,} input + {report['output_tokens']:,} output tokens, {cost}")


def echo_failures(report: dict[str, Any], source: str | None, shown: int = 10) -> None:
    """Print why the model stopped, the first failed chunks with their reasons, and how to retry, on stderr."""
    if report["stopped"]:
        click.echo(f"stopped asking the model: {report['stopped']}", err=True)
    for failure in report["failures"][:shown]:
        click.echo(f"  pending {failure['url']} chunk {failure['chunk_number']}: {failure['reason']}", err=True)
    if len(report["failures"]) > shown:
        click.echo(f"  … and {len(report['failures']) - shown} more (--json lists them all)", err=True)
    if report["failed"]:
        # A source does not remember its --context choice: the retry must repeat it.
        command = " ".join(["docshelf enrich", *(["--source", source] if source else []),
                            *(["--context", "llm"] if report["context"] else [])])
        click.echo(f"  retry the pending chunks with: {command} (and the same --model)", err=True)
