"""`docshelf project`: a project's dependencies against the shelf, and the scope its searches read."""

from __future__ import annotations

from pathlib import Path

import click

from docshelf.cli.shelf import ShelfContext, config_errors, emit_json


@click.command()
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--add-missing", is_flag=True,
              help="Crawl the docs of every dependency not on the shelf whose documentation URL is known.")
@click.option("--no-write", is_flag=True, help="Do not write the scope to DIR/.docshelf.toml.")
@click.option("--json", "as_json", is_flag=True, help="Print {project, files, problems, dependencies, scope_file}.")
@click.pass_obj
def project(shelf: ShelfContext, directory: Path, add_missing: bool, no_write: bool, as_json: bool) -> None:
    """Match a project's dependencies (manifests and lockfiles) to the shelf, and scope searches to them.

    Reads pyproject.toml (PEP 621, Poetry), requirements*.txt, uv.lock, poetry.lock, Pipfile.lock,
    package.json, package-lock.json, pnpm-lock.yaml and yarn.lock. Each dependency gets the shelf
    source that documents it at the version nearest its lock. The matches are written to
    DIR/.docshelf.toml: search, ask, chat, mcp and serve run inside the project then read only those
    sources at those versions (--all-sources reads everything).

    \b
    Example:
        docshelf project
        docshelf project ../webapp --add-missing
        docshelf project --json
    """
    from docshelf.project.manifests import LOCKFILES, MANIFESTS, read_project
    from docshelf.project.matching import match_dependencies
    from docshelf.project.scope import SCOPE_FILE, scope_from_statuses, write_scope

    if not directory.is_dir():
        raise click.BadParameter(f"{directory} is not a folder", param_hint="DIR")
    found = read_project(directory)
    if not found.files:
        raise click.UsageError(f"no manifest or lockfile in {directory}: looked for {', '.join(MANIFESTS)}, "
                               f"requirements*.txt and {', '.join(LOCKFILES)}")
    for problem in found.problems:
        click.echo(f"warning: {directory / str(problem)}", err=True)
    with config_errors():
        rows = match_dependencies(found.dependencies, [s.source for s in shelf.store.list_sources()])
        if add_missing:
            rows = _add_missing(shelf, rows, found.dependencies, as_json)
    scope_file = directory / SCOPE_FILE
    scope = scope_from_statuses(scope_file, rows)
    written = bool(scope.sources) and not no_write
    if written:
        write_scope(scope)
    if as_json:
        emit_json({"project": str(directory.resolve()), "files": found.files,
                   "problems": [{"file": p.file, "line": p.line, "message": p.message} for p in found.problems],
                   "dependencies": [row.to_json() for row in rows],
                   "scope_file": str(scope_file) if written else None})
        return
    from docshelf.cli.render import render_project

    render_project(rows, found.files)
    if written:
        click.echo(f"scope: {len(scope.sources)} sources written to {scope_file}")
    elif not scope.sources:
        click.echo("scope: no dependency has docs on the shelf yet; nothing written "
                   "(docshelf project --add-missing crawls those with a known documentation URL)")


def _add_missing(shelf: ShelfContext, rows, dependencies, as_json: bool):
    """Crawl the docs of the rows not on the shelf that have a documentation URL; return the rows matched again."""
    from docshelf.cli.progress import IngestProgress
    from docshelf.crawl.naming import sanitise
    from docshelf.ingest import Ingestor
    from docshelf.project.matching import match_dependencies

    missing = [row for row in rows if row.status == "not on the shelf"]
    for row in missing:
        if row.docs_url is None:
            click.echo(f"{row.dependency.name}: no documentation URL known; add it with: {row.hint}", err=True)
            continue
        with IngestProgress(enabled=not as_json) as progress:
            summary = Ingestor(shelf.store, shelf.embedder_factory(), progress).add(
                row.docs_url, source=sanitise(row.dependency.name), packages=[row.dependency.name])
        if not as_json:
            click.echo(f"added {summary.source}: {summary.pages_ok} pages from {row.docs_url}")
    return match_dependencies(dependencies, [s.source for s in shelf.store.list_sources()])
