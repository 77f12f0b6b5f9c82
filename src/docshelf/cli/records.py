"""`docshelf import`, `docshelf export` and `docshelf copy` — thin commands over records.py and transfer.py.

Registered on the main group by cli.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from docshelf import config
from docshelf.cli.shelf import ShelfContext
from docshelf.cli.shelf import config_errors as _errors
from docshelf.cli.shelf import emit_json as _emit_json

if TYPE_CHECKING:
    from docshelf.records import ImportSummary, RecordFormat
    from docshelf.store.base import Store

EXIT_RECORDS_FAILED = 1
ERRORS_SHOWN = 20
"""Bad records listed one per line; past that only their number is given."""


def _open(db: str) -> Store:
    """Return the store at `db`, closed when the command ends."""
    from docshelf.store import open_store

    store = open_store(db)
    click.get_current_context().call_on_close(store.close)
    return store


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--source", "source_name", metavar="NAME", help="Put every record under this source (default: its session_id).")
@click.option("--model", "vector_model", metavar="MODEL",
              help="The embedding model of the vectors of records that do not name one (embedding_model), "
                   "e.g. openai:text-embedding-3-small.")
@click.option("--reembed", is_flag=True, help="Drop the records' vectors; embed the chunks with the shelf's embedder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.pass_obj
def import_command(shelf: ShelfContext, paths: tuple[Path, ...], source_name: str | None, vector_model: str | None,
                   reembed: bool, as_json: bool) -> None:
    """Import record files or JSONL (files or folders) into the shelf.

    Bad records are reported with file and line and skipped; the rest is
    imported. Vectors are kept as they are, and a new shelf takes their model:
    the one each record names (embedding_model), or --model for records that
    name none. docshelf never guesses a model from a vector's size: a vector
    whose model is not named is an error, unless --reembed embeds the chunks
    again. Exit code 1 if any record was bad.

    \b
    Example:
        docshelf import exported-by-docshelf.jsonl
        docshelf import record-example.txt --model openai:text-embedding-3-small
        docshelf --db shelf.db import exports/ --source pydantic_ai --reembed
    """
    from docshelf.records import import_records

    if vector_model and reembed:
        raise click.UsageError("--model names the records' vectors, --reembed drops them: give one")
    with _errors():
        summary = import_records(shelf.store, paths, source=source_name, reembed=reembed,
                                 embedder=shelf.embedder_factory() if reembed else None, model=vector_model)
    if as_json:
        _emit_json(summary.to_json())
    else:
        _report_import(summary, shelf)
    if summary.errors:
        sys.exit(EXIT_RECORDS_FAILED)


def _report_import(summary: ImportSummary, shelf: ShelfContext) -> None:
    for error in summary.errors[:ERRORS_SHOWN]:
        click.echo(f"{error}", err=True)
    if len(summary.errors) > ERRORS_SHOWN:
        click.echo(f"… and {len(summary.errors) - ERRORS_SHOWN} more bad records", err=True)
    click.echo(f"imported {summary.records} records into {summary.pages} page writes"
               + (f", embedded {summary.embedded}" if summary.embedded else "")
               + (f"; {len(summary.errors)} bad records skipped" if summary.errors else ""))
    configured = shelf.embedder_name or config.setting("DOCSHELF_EMBEDDER")
    if summary.model and summary.model != configured:
        # Vector and hybrid search embed the query with the shelf's model, which may not be set up here.
        click.echo(f"note: the shelf's vectors are {summary.model}; to search them set up that embedder "
                   "(for openai:… an OpenAI-compatible server: DOCSHELF_EMBED_BASE_URL, DOCSHELF_EMBED_API_KEY), "
                   "or search with --mode bm25, or import into a new shelf with --reembed", err=True)


@click.command("export")
@click.option("--source", "source_name", metavar="NAME", help="Only this source.")
@click.option("--url", metavar="URL", help="Only this page.")
@click.option("--format", "fmt", type=click.Choice(["record", "jsonl"]), default="record", show_default=True)
@click.option("-o", "--output", metavar="FILE_OR_DIR",
              help="Write here (default: stdout). A folder (existing, or ending in /) gets one file per page "
                   "for records, one per source for JSONL.")
@click.pass_obj
def export_command(shelf: ShelfContext, source_name: str | None, url: str | None, fmt: str,
                   output: str | None) -> None:
    """Export chunks as record files or JSONL, vectors included.

    Importing an export gives back the same chunks, and exporting them again
    the same bytes.

    \b
    Example:
        docshelf export --url https://ai.pydantic.dev/api/agent/ -o agent.txt
        docshelf export --source pydantic_ai --format jsonl -o exports/
    """
    from docshelf.records import export_records

    record_format = cast("RecordFormat", fmt)
    with _errors():
        if output is None:
            with click.open_file("-", "wb") as stdout:
                export_records(shelf.store, stdout, source=source_name, url=url, fmt=record_format)
            return
        target = Path(output)
        if output.endswith(("/", "\\")):
            target.mkdir(parents=True, exist_ok=True)
        count = export_records(shelf.store, target, source=source_name, url=url, fmt=record_format)
    click.echo(f"exported {count} chunks to {output}", err=True)


@click.command("copy")
@click.option("--from", "from_db", metavar="DB", help="The shelf to copy (default: --db).")
@click.option("--to", "to_db", metavar="DB", required=True, help="The shelf to copy into (a path or postgresql:// URL).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.pass_obj
def copy_command(shelf: ShelfContext, from_db: str | None, to_db: str, as_json: bool) -> None:
    """Copy a whole shelf — sources, pages, chunks and vectors — into another, without re-embedding.

    Works between SQLite and PostgreSQL in both directions.

    \b
    Example:
        docshelf copy --from shelf.db --to postgresql://user@db.example/docs
        docshelf copy --from postgresql://user@db.example/docs --to backup.db
    """
    from docshelf.transfer import copy_shelf

    with _errors():
        src = _open(from_db) if from_db else shelf.store
        dst = _open(to_db)
        summary = copy_shelf(src, dst)
    if as_json:
        _emit_json(summary.to_json())
    else:
        click.echo(f"copied {summary.sources} sources, {summary.pages} pages, {summary.chunks} chunks "
                   f"({summary.vectors} with vectors) to {dst.location}")
