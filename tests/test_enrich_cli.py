"""`docshelf add --enrich llm` and `docshelf enrich` through click, on a real site and shelf; the model is a
FunctionModel (through `--model test` and `enrich_agent.override`) or a stub OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from servers import Server
from test_ask_cli import StubReply, _completion, _status, no_llm, stub_env  # noqa: F401 (fixtures)
from test_enrich_llm import ScriptedModel
from test_ingest import write_site

from docshelf.cli import cli
from docshelf.enrich_llm import enrich_agent
from docshelf.store import open_store


@pytest.fixture
def site(tmp_path: Path):
    write_site(tmp_path / "www")
    with Server(tmp_path / "www") as server:
        yield server


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)


def titles(db: Path) -> dict[str, tuple[str, str | None]]:
    """Return {page url: (title, enriched_by)} of every chunk 0 on the shelf."""
    store = open_store(str(db))
    try:
        return {p.url: (c.title, c.enriched_by) for p in store.list_pages("widgets")
                for c in store.get_chunks(p.url, limit=1)}
    finally:
        store.close()


def test_add_with_llm_titles_then_enrich_asks_nothing(db_path: Path, site: Server, no_llm: None) -> None:
    model = ScriptedModel()
    with enrich_agent.override(model=model.model):
        added = run(db_path, "add", site.url("/docs/"), "--source", "widgets", "--enrich", "llm", "--model", "test",
                    "--json")
        assert added.exit_code == 0, added.output
        report = json.loads(added.stdout)["enrichment"]
        assert (report["model"], report["enriched"], report["requests"], report["failed"]) == ("test", 6, 6, 0)
        again = run(db_path, "enrich", "--model", "test", "--json")
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["source"] is None and summary["enrichment"]["enriched"] == 0 and len(model.prompts) == 6
    assert titles(db_path)[site.url("/docs/streaming.html")] == ("How Streaming works", "llm:test")


def test_failed_chunks_exit_1_and_enrich_retries_only_them(db_path: Path, site: Server, no_llm: None) -> None:
    with enrich_agent.override(model=ScriptedModel(fail_on="streaming").model):
        added = run(db_path, "add", site.url("/docs/"), "--source", "widgets", "--enrich", "llm", "--model", "test")
    assert added.exit_code == 1
    assert "titles and summaries: 5 chunks enriched by test (0 from the cache), 1 failed and pending" in added.stdout
    assert re.search(r"pending http://127\.0\.0\.1:\d+/docs/streaming\.html chunk 0: the model provider answered "
                     r"HTTP 500", added.stderr)
    assert "retry the pending chunks with: docshelf enrich --source widgets (and the same --model)" in added.stderr
    assert titles(db_path)[site.url("/docs/streaming.html")] == ("Streaming", "extractive")

    retry = ScriptedModel()
    with enrich_agent.override(model=retry.model):
        fixed = run(db_path, "enrich", "--source", "widgets", "--model", "test")
    assert fixed.exit_code == 0, fixed.output
    assert len(retry.prompts) == 1 and "Section: Streaming" in retry.prompts[0]
    assert fixed.stdout.startswith("widgets: 1 chunks enriched by test (0 from the cache), 0 failed and pending; "
                                   "1 requests, ")
    assert "cost unknown; 1 embedded in" in fixed.stdout
    assert titles(db_path)[site.url("/docs/streaming.html")] == ("How Streaming works", "llm:test")


def test_no_model_and_bad_options_are_exit_2(db_path: Path, site: Server, no_llm: None) -> None:
    for args in (["add", site.url("/docs/"), "--enrich", "llm"], ["enrich"]):
        result = run(db_path, *args)
        assert result.exit_code == 2
        assert "set DOCSHELF_LLM_MODEL or pass --model" in result.stderr
    context = run(db_path, "add", site.url("/docs/"), "--context", "llm")
    assert context.exit_code == 2 and "--context llm needs --enrich llm" in context.output
    unknown = run(db_path, "enrich", "--source", "nope", "--model", "test")
    assert unknown.exit_code == 2 and "unknown source 'nope'" in unknown.output


def _timed(reply: StubReply, times: list[float]) -> StubReply:
    """Return `reply`, noting when each request it answers arrives."""

    def play(body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        times.append(time.monotonic())
        return reply(body)

    return play


def _enrichment(body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Answer with the output tool the request offers, titled after the prompt's section."""
    prompt = body["messages"][-1]["content"]
    text = prompt if isinstance(prompt, str) else " ".join(part.get("text", "") for part in prompt)
    section = re.search(r"^Section: (.*)$", text, re.M).group(1)  # type: ignore[union-attr]
    arguments = json.dumps({"title": f"Stub {section}", "summary": f"About {section}.", "context": "In the guide."})
    call = {"id": "call_1", "type": "function",
            "function": {"name": body["tools"][0]["function"]["name"], "arguments": arguments}}
    return 200, {}, _completion({"content": None, "tool_calls": [call]}, "tool_calls")


def test_a_429_is_retried_after_retry_after(db_path: Path, site: Server, stub_env,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSHELF_ENRICH_CONCURRENCY", "1")
    times: list[float] = []
    stub = stub_env(_timed(_status(429, {"Retry-After": "1"}), times), _timed(_enrichment, times))
    result = run(db_path, "add", site.url("/docs/"), "--source", "widgets", "--enrich", "llm", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["enrichment"]
    assert len(stub.requests) == 7 and report["requests"] == 6 and report["failed"] == 0  # the 429 and 6 answers
    assert times[1] - times[0] >= 0.9  # the client waited as Retry-After asked
    assert report["input_tokens"] == 6 * 50 and report["output_tokens"] == 6 * 10  # the server's usage counts
    assert titles(db_path)[site.url("/docs/streaming.html")][0] == "Stub Streaming"


def test_a_rejected_key_stops_asking_and_leaves_chunks_pending(db_path: Path, site: Server, stub_env,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSHELF_ENRICH_CONCURRENCY", "1")
    stub = stub_env(_status(401))
    result = run(db_path, "add", site.url("/docs/"), "--source", "widgets", "--enrich", "llm")
    assert result.exit_code == 1
    assert len(stub.requests) == 1
    assert "stopped asking the model: the model provider answered HTTP 401" in result.stderr
    assert {by for _, by in titles(db_path).values()} == {"extractive"}
    store = open_store(str(db_path))
    assert [s.embedded for s in store.list_sources()] == [6]  # still searchable by vector, extractively
    store.close()


def test_help_of_the_enrich_options_loads_no_model_code() -> None:
    code = ("import sys; from docshelf.cli import cli; from click.testing import CliRunner; "
            "CliRunner().invoke(cli, ['add', '--help']); CliRunner().invoke(cli, ['enrich', '--help']); "
            "print(sorted(m for m in ('pydantic_ai', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_refresh_keeps_the_sources_enrichment_until_told_otherwise(
    db_path: Path, tmp_path: Path, site: Server, no_llm: None
) -> None:
    from test_ingest import TOPICS, page_html

    model = ScriptedModel()
    with enrich_agent.override(model=model.model):
        assert run(db_path, "add", site.url("/docs/"), "--source", "widgets", "--enrich", "llm",
                   "--model", "test").exit_code == 0
        (tmp_path / "www" / "docs" / "streaming.html").write_text(
            page_html("Streaming", "Stream a large body in parts, now with back-pressure.", ["index.html", *(f"{n}.html" for n, _ in TOPICS)]))
        refreshed = run(db_path, "add", site.url("/docs/"), "--source", "widgets")  # no --enrich: as last time
    assert refreshed.exit_code == 0, refreshed.output
    assert "titles and summaries: 1 chunks enriched by test" in refreshed.stdout
    assert titles(db_path)[site.url("/docs/streaming.html")][1] == "llm:test"

    (tmp_path / "www" / "docs" / "streaming.html").write_text(
        page_html("Streaming", "Stream a large body in parts; back-pressure is on by default.", ["index.html", *(f"{n}.html" for n, _ in TOPICS)]))
    extractive = run(db_path, "add", site.url("/docs/"), "--source", "widgets", "--enrich", "extractive")
    assert extractive.exit_code == 0 and "titles and summaries" not in extractive.stdout
    assert titles(db_path)[site.url("/docs/streaming.html")] == ("Streaming", "extractive")
    with enrich_agent.override(model=ScriptedModel().model):
        assert "titles and summaries" not in run(db_path, "add", site.url("/docs/"), "--source", "widgets").stdout
