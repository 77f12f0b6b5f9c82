"""`docshelf …` — a thin command line over the library, one module per command group.

Exit codes: 0 ok, 1 some pages failed or some chunks' model enrichment failed
(the summary says which), 2 usage or configuration error.
"""

from __future__ import annotations

import click

from docshelf import config
from docshelf.cli.ask import ask, chat, mcp_command
from docshelf.cli.browse import pages, search, show, sources
from docshelf.cli.enrich import enrich_command
from docshelf.cli.fresh import changes, refresh
from docshelf.cli.index import add, rm
from docshelf.cli.jobs import jobs, worker
from docshelf.cli.packs import pack_command, search_registry_command
from docshelf.cli.project import project
from docshelf.cli.records import copy_command, export_command, import_command
from docshelf.cli.serve import serve
from docshelf.cli.shelf import ShelfContext

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option("--db", envvar="DOCSHELF_DB", metavar="PATH", help="The shelf file (env DOCSHELF_DB). Default: shelf.db in the user data dir.")
@click.option("--embedder", envvar="DOCSHELF_EMBEDDER", metavar="NAME", hidden=False,
              help="Embedding model for a new shelf (default local:all-MiniLM-L6-v2); an existing shelf keeps its own.")
@click.version_option(package_name="docshelf")
@click.pass_context
def cli(ctx: click.Context, db: str | None, embedder: str | None) -> None:
    """Turn documentation sites into a searchable, citable knowledge base.

    \b
    Example:
        docshelf add https://flask.palletsprojects.com/en/stable/
        docshelf search "how do I stream a response"
    """
    ctx.obj = ShelfContext(db or config.default_db(), embedder)
    ctx.call_on_close(ctx.obj.close)


for command in (add, search, sources, pages, show, rm, refresh, changes, project, import_command, export_command, copy_command,
                ask, chat, mcp_command, serve, enrich_command, pack_command, search_registry_command, worker, jobs):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="docshelf")
