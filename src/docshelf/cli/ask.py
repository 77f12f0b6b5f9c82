"""`docshelf ask`, `docshelf chat` and `docshelf mcp` — thin commands over agent.py, answer.py and mcp.py.

Registered on the main group by cli.py.
Pydantic AI, mcp and the embedder load only inside the commands.

Exit codes: 0 answered (with a model, or with passages when none is
configured); 1 the model provider failed (after retries) or misbehaved;
2 usage or configuration error (unknown source, bad --model, missing key);
130 interrupted.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import click

from docshelf.cli.shelf import (
    ShelfContext,
    access_policies,
    allow_folder_option,
    allow_hosts_option,
    check_sources,
    config_errors,
    emit_json,
    scope_options,
)

if TYPE_CHECKING:
    from rich.console import Console

    from docshelf.agent import AskDeps, Turn
    from docshelf.answer import Answer
    from docshelf.llm import ResolvedModel
    from docshelf.shelf_tools import ShelfTools

EXIT_PROVIDER = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130

source_option = click.option("--source", "sources", multiple=True, metavar="NAME[@VERSION]",
                             help="Answer only from this source (repeatable): its newest version, or the one named.")
model_option = click.option("--model", metavar="MODEL",
                            help="Pydantic AI model string, e.g. openai:gpt-4o-mini (env DOCSHELF_LLM_MODEL). "
                                 "Unset: answer with cited passages.")


def _shelf_tools(shelf: ShelfContext, sources: tuple[str, ...]) -> ShelfTools:
    """Return the read tools over the shelf, after checking the --source names."""
    check_sources(shelf, sources)
    return shelf.tools()


def _config_errors() -> AbstractContextManager[None]:
    return config_errors()


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@click.command()
@click.argument("question")
@source_option
@model_option
@click.option("-k", "k", type=click.IntRange(min=1, max=30), default=8, show_default=True,
              help="Passages per search.")
@click.option("--json", "as_json", is_flag=True,
              help="Print {answer, citations: [{url, title, chunk_number}], tool_calls, usage}.")
@scope_options
@click.pass_obj
def ask(shelf: ShelfContext, question: str, sources: tuple[str, ...], model: str | None, k: int,
        as_json: bool) -> None:
    """Answer a question from the shelf, citing the pages and sections it comes from.

    With no model configured, prints the best passages grouped by page, with their citations.

    \b
    Example:
        docshelf ask "how do I set the cache TTL?"
        DOCSHELF_LLM_MODEL=openai:gpt-4o-mini docshelf ask "how do I stream a response?" --json
        DOCSHELF_LLM_BASE_URL=http://127.0.0.1:11434/v1 docshelf ask "…" --model llama3.1
    """
    from docshelf.answer import answer_with_passages
    from docshelf.llm import LLMError, resolve_model

    with _config_errors():
        tools = _shelf_tools(shelf, sources)
        resolved = resolve_model(model)
        if resolved is None:
            answer = answer_with_passages(tools, question, sources, k)
        else:
            try:
                answer = _ask_model(tools, question, sources, resolved,
                                    stream=not as_json and sys.stdout.isatty())
            except LLMError as exc:  # a provider failure, not a configuration problem: exit 1, not 2
                _fail(str(exc), EXIT_PROVIDER)
    if as_json:
        emit_json(answer.to_json())
    else:
        _print_answer(answer, streamed=resolved is not None and sys.stdout.isatty())


def _ask_model(tools: ShelfTools, question: str, sources: tuple[str, ...], resolved: ResolvedModel,
               *, stream: bool) -> Answer:
    """Return the agent's answer; provider failures end the command with one line and exit 1."""
    from docshelf.agent import AskDeps

    deps = AskDeps(tools, sources)
    with asyncio.Runner() as runner:
        turn = _run_turn(runner, question, deps, resolved, history=[], stream=stream)
    if turn is None:
        sys.exit(EXIT_INTERRUPTED)
    return turn.answer


def _run_turn(runner: asyncio.Runner, question: str, deps: AskDeps, resolved: ResolvedModel, *,
              history: list[Any], stream: bool) -> Turn | None:
    """Return one agent turn, or None when the user pressed Ctrl-C (the turn is dropped).

    Raises:
        LLMError: the provider failed after retries, or the model misbehaved (one line, for the user).
    """
    from pydantic_ai.exceptions import AgentRunError

    from docshelf.agent import run_agent
    from docshelf.llm import LLMError, describe_model_error, int_setting

    limit = int_setting("DOCSHELF_ASK_TOOL_CALLS")
    sink = _TerminalStream(_console()) if stream else None
    try:
        return runner.run(run_agent(question, deps, resolved.model, label=resolved.label, history=history,
                                    tool_calls_limit=limit, sink=sink))
    except AgentRunError as exc:
        raise LLMError(describe_model_error(exc)) from exc
    except KeyboardInterrupt:
        click.echo("\n(interrupted)", err=True)
        return None
    finally:
        if sink is not None:
            sink.close()


def _console() -> Console:
    from rich.console import Console

    return Console()


class _TerminalStream:
    """Renders the answer as Markdown while it streams, and shows tool calls as dim status lines."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.console = console
        self.buffer = ""
        self.live = Live(console=console, refresh_per_second=12, vertical_overflow="visible")
        self.live.start()

    def text(self, delta: str, *, new_part: bool) -> None:
        from rich.markdown import Markdown

        self.buffer = delta if new_part else self.buffer + delta
        self.live.update(Markdown(self.buffer))

    def tool_call(self, name: str, args: dict[str, Any]) -> None:
        from rich.text import Text

        shown = ", ".join(f"{k}={v!r}" for k, v in args.items() if v is not None)
        self.buffer = ""  # text written before a tool call is thinking aloud, not the answer
        self.live.update(Text(f"… {name}({shown})", style="dim"))

    def close(self) -> None:
        self.live.stop()


def _print_answer(answer: Answer, *, streamed: bool) -> None:
    """Print the answer as Markdown (unless it was streamed), then the numbered cited sources."""
    from rich.markdown import Markdown

    console = _console()
    if not streamed:
        console.print(Markdown(answer.answer))
    if answer.model is None:
        return  # the passages answer numbers its citations inline
    if answer.citations:
        console.print("\n[bold]Sources[/]")
        for number, ref in enumerate(answer.citations, 1):
            console.print(f" {number}. {ref.title} — {ref.url}", highlight=False, soft_wrap=True)
    for url in answer.unverified:
        console.print(f"[yellow]⚠ not a citation (no tool returned it in this run): {url}[/]", soft_wrap=True)


@click.command()
@source_option
@model_option
@click.option("-k", "k", type=click.IntRange(min=1, max=30), default=8, show_default=True,
              help="Passages per search (without a model).")
@scope_options
@click.pass_obj
def chat(shelf: ShelfContext, sources: tuple[str, ...], model: str | None, k: int) -> None:
    """Ask questions in a conversation; the model keeps the earlier turns in mind.

    Commands: /sources lists the shelf's sources, /clear forgets the conversation, /exit (or Ctrl-D) quits.
    Ctrl-C stops the current answer.

    \b
    Example:
        DOCSHELF_LLM_MODEL=anthropic:claude-sonnet-4-5 docshelf chat --source widgets
    """
    from docshelf.agent import AskDeps
    from docshelf.answer import answer_with_passages
    from docshelf.llm import LLMError, resolve_model

    with _config_errors():
        tools = _shelf_tools(shelf, sources)
        resolved = resolve_model(model)
    console = _console()
    console.print(f"docshelf chat — {resolved.label if resolved else 'no model: answers are passages'}. "
                  "/sources, /clear, /exit")
    deps = AskDeps(tools, sources)
    history: list[Any] = []
    with asyncio.Runner() as runner:  # one event loop for the session: the model's HTTP client lives on it
        while (line := _read_line()) is not None:
            if not line:
                continue
            if line in ("/exit", "/quit"):
                break
            if line == "/sources":
                console.print(tools.list_sources().to_markdown(), highlight=False)
            elif line == "/clear":
                history, deps = [], AskDeps(tools, sources)
                console.print("(conversation cleared)")
            elif line.startswith("/"):
                console.print("commands: /sources, /clear, /exit")
            elif resolved is None:
                with _config_errors():
                    _print_answer(answer_with_passages(tools, line, sources, k), streamed=False)
            else:
                stream = sys.stdout.isatty()
                try:
                    turn = _run_turn(runner, line, deps, resolved, history=history, stream=stream)
                except LLMError as exc:  # one failed turn does not end the conversation
                    click.echo(f"Error: {exc}", err=True)
                    continue
                if turn is not None:
                    history = turn.messages
                    _print_answer(turn.answer, streamed=stream)


def _read_line() -> str | None:
    """Return the user's next line (stripped), or None at end of input or Ctrl-C at the prompt."""
    try:
        return input("\n> ").strip()
    except (EOFError, KeyboardInterrupt):
        click.echo()
        return None


@click.command("mcp")
@click.option("--http", "use_http", is_flag=True, help="Serve streamable HTTP at http://HOST:PORT/mcp "
                                                       "instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on with --http. Any other than 127.0.0.1 / localhost needs --token.")
@click.option("--port", type=click.IntRange(min=1, max=65535), default=8765, show_default=True)
@click.option("--token", envvar="DOCSHELF_TOKEN", metavar="TOKEN",
              help="With --http, require 'Authorization: Bearer TOKEN' of every request (env DOCSHELF_TOKEN).")
@click.option("--allow-write", is_flag=True,
              help="Also offer add_source, refresh_source, remove_source and job_status.")
@scope_options
@allow_hosts_option
@allow_folder_option
@click.pass_obj
def mcp_command(shelf: ShelfContext, use_http: bool, host: str, port: int, token: str | None, allow_write: bool,
                allow_hosts: str | None, allow_folders: tuple[str, ...]) -> None:
    """Serve the shelf to coding agents over MCP (stdio by default).

    With --allow-write, the crawls an agent starts may not reach private, loopback, link-local or
    reserved addresses, nor read folders, unless --allow-hosts and --allow-folder name them.

    \b
    Example (Claude Code):
        claude mcp add docshelf -- docshelf mcp
        docshelf mcp --http --port 8765      # then connect to http://127.0.0.1:8765/mcp
        docshelf mcp --http --host 0.0.0.0 --token "$TOKEN"
    """
    from docshelf.cli.serve import require_token_off_loopback
    from docshelf.jobs import crawl_jobs
    from docshelf.mcp import build_server, http_app

    if use_http:
        token = require_token_off_loopback(host, token)
    access, folders = access_policies(allow_hosts, allow_folders)
    with _config_errors():
        tools = _shelf_tools(shelf, ())
        tools.store.list_sources()  # fail now, not at the first tool call, on a shelf that cannot open
    with _config_errors():
        jobs = crawl_jobs(shelf.db, shelf.embedder_factory(), access=access, folders=folders) if allow_write else None
    server = build_server(tools, jobs)
    if use_http:
        import uvicorn

        uvicorn.run(http_app(server, host=host, port=port, token=token), host=host, port=port, log_level="info")
    else:
        server.run()
