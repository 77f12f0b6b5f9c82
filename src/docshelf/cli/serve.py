"""`docshelf serve` — the web UI, the HTTP API and MCP over HTTP, in one process (server/app.py).

Registered on the main group by cli.py. FastAPI and uvicorn load only inside the command.

Exit codes: 0 stopped; 2 usage or configuration error (a non-loopback --host without a
token, a shelf that cannot open, a bad --model).
"""

from __future__ import annotations

import ipaddress
import sys

import click

from docshelf.cli.ask import model_option
from docshelf.cli.shelf import (
    EXIT_CONFIG,
    ShelfContext,
    access_policies,
    allow_folder_option,
    allow_hosts_option,
    config_errors,
    scope_options,
)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    """Return True when `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_token_off_loopback(host: str, token: str | None) -> str | None:
    """Return the token (None when unset or empty); exit 2 when `host` is reachable from other machines without one."""
    token = token or None  # DOCSHELF_TOKEN= (set but empty) is no token, not an empty one
    if not is_loopback(host) and token is None:
        click.echo(
            f"Error: --host {host} makes the shelf reachable from other machines; give --token TOKEN "
            "(or set DOCSHELF_TOKEN), or serve on 127.0.0.1",
            err=True,
        )
        sys.exit(EXIT_CONFIG)
    return token


def loopback_host_names(host: str, token: str | None) -> tuple[str, ...] | None:
    """Return the Host header names a server without a token answers to (DNS rebinding), None with a token."""
    return tuple(dict.fromkeys((*LOOPBACK_NAMES, host.strip("[]").lower()))) if token is None else None


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Any other than 127.0.0.1 / localhost needs --token.",
)
@click.option("--port", type=click.IntRange(min=1, max=65535), default=8765, show_default=True)
@click.option(
    "--token",
    envvar="DOCSHELF_TOKEN",
    metavar="TOKEN",
    help="Require this token of every request: 'Authorization: Bearer TOKEN', or the login form "
    "in a browser (env DOCSHELF_TOKEN).",
)
@click.option("--read-only", is_flag=True, help="No crawl, refresh or remove, in the UI, the API or MCP.")
@model_option
@click.option("--no-mcp", is_flag=True, help="Do not serve MCP streamable HTTP at /mcp.")
@click.option("--refresh-every", metavar="AGE",
              help="Refresh each source version in the background once its last crawl is this old "
                   "(e.g. 24h, 7d), one at a time through the job queue.")
@scope_options
@allow_hosts_option
@allow_folder_option
@click.pass_obj
def serve(
    shelf: ShelfContext,
    host: str,
    port: int,
    token: str | None,
    read_only: bool,
    model: str | None,
    no_mcp: bool,
    refresh_every: str | None,
    allow_hosts: str | None,
    allow_folders: tuple[str, ...],
) -> None:
    """Serve the shelf: the web UI at /, the HTTP API under /api (OpenAPI at /docs), MCP at /mcp.

    \b
    Example:
        docshelf serve                                   # http://127.0.0.1:8765
        docshelf serve --host 0.0.0.0 --token "$TOKEN"   # reachable from other machines
        docshelf serve --read-only
        docshelf serve --refresh-every 24h
        docshelf serve --allow-hosts 10.0.0.0/8 --allow-folder /srv/docs

    Crawls that clients start (API, web UI, MCP) may not reach private, loopback, link-local or
    reserved addresses, nor read folders, unless --allow-hosts and --allow-folder name them.
    With --refresh-every, each source version is re-crawled once its last crawl is that old
    (under the same access policy: a source it refuses is skipped).
    """
    token = require_token_off_loopback(host, token)
    access, folders = access_policies(allow_hosts, allow_folders)
    from docshelf.refresh import parse_duration

    with config_errors():
        every = parse_duration(refresh_every) if refresh_every else None
        scope = shelf.scope()
    if every is not None and read_only:
        click.echo("Error: --refresh-every crawls; it cannot go with --read-only", err=True)
        sys.exit(EXIT_CONFIG)
    import uvicorn

    from docshelf.server.app import create_app
    from docshelf.server.state import ServerConfig

    # Without a token the only guard is the loopback address; refuse other Host names (DNS rebinding).
    allowed = loopback_host_names(host, token)
    config = ServerConfig(
        db=shelf.db,
        embedder=shelf.embedder_name,
        host=host,
        port=port,
        token=token,
        read_only=read_only,
        model=model,
        mcp=not no_mcp,
        allowed_hosts=allowed,
        refresh_every=every,
        scope=scope,
        access=access,
        folders=folders,
    )
    with config_errors():
        app = create_app(config)
    shown = f"[{host}]" if ":" in host else host
    notes = [n for n in ("read-only" if read_only else "", "token required" if token else "",
                         f"refreshing every {refresh_every}" if every else "") if n]
    click.echo(
        f"docshelf: serving {shelf.db} at http://{shown}:{port}/ — API /api, OpenAPI /docs"
        + ("" if no_mcp else ", MCP /mcp")
        + (f" ({', '.join(notes)})" if notes else ""),
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
