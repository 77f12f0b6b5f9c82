"""`docshelf ask` and `docshelf chat` through click, on a real shelf; the model is a FunctionModel or a stub
OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic_ai import models
from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from docshelf.agent import INSTRUCTIONS, agent
from docshelf.cli import cli
from docshelf.store import open_store
from test_shelf_tools import build_widgets_shelf

models.ALLOW_MODEL_REQUESTS = False

StubReply = Callable[[dict[str, Any]], tuple[int, dict[str, str], dict[str, Any]]]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("shelf") / "shelf.db"
    build_widgets_shelf(path)
    return str(path)


@pytest.fixture
def no_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DOCSHELF_LLM_MODEL", "DOCSHELF_LLM_BASE_URL", "DOCSHELF_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def run(db: str, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["--db", db, *args], input=input, catch_exceptions=False)


def test_ask_without_a_model_answers_with_cited_passages(db: str, no_llm: None) -> None:
    result = run(db, "ask", "how long do widgets stay in the render cache?", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"answer", "citations", "tool_calls", "usage"}
    assert "DOCSHELF_LLM_MODEL" in data["answer"] and data["citations"]
    store = open_store(db)
    for citation in data["citations"]:  # every citation resolves to a stored chunk
        page_url = citation["url"].split("#")[0]
        chunk = store.get_chunks(page_url, start=citation["chunk_number"], limit=1)[0]
        assert citation["url"] in chunk.cite_urls and chunk.title == citation["title"]
    store.close()
    assert data["citations"][0]["url"].split("#")[0].endswith("/configuration.html")


def test_ask_prints_passages_and_the_configuration_hint(db: str, no_llm: None) -> None:
    result = run(db, "ask", "tessellate", "-k", "2")
    assert result.exit_code == 0
    assert "Best passages" in result.output and "/api.html" in result.output
    assert "DOCSHELF_LLM_MODEL" in result.output


def test_ask_usage_and_config_errors_exit_2(db: str, no_llm: None) -> None:
    unknown = run(db, "ask", "cache", "--source", "nope")
    assert unknown.exit_code == 2 and "unknown source 'nope'" in unknown.output
    keyless = run(db, "ask", "cache", "--model", "openai:gpt-4o-mini")
    assert keyless.exit_code == 2
    assert keyless.output.strip() == ("Error: --model openai:gpt-4o-mini needs an API key: "
                                      "set OPENAI_API_KEY (or DOCSHELF_LLM_API_KEY)")


def _citing_model(calls: list[list]) -> FunctionModel:
    """Return a model that searches once, then answers citing the first URL it was given."""

    def play(messages: list, info: AgentInfo) -> ModelResponse:
        calls.append(list(messages))
        last = messages[-1].parts[-1]
        if last.part_kind == "tool-return":
            url = re.findall(r"<(http[^>]+)>", last.content)[0]
            return ModelResponse(parts=[TextPart(f"It is `cache_ttl` ([settings]({url})).")])
        question = messages[-1].parts[-1].content
        return ModelResponse(parts=[ToolCallPart("search_docs", {"query": question, "k": 2})])

    return FunctionModel(play)


def test_ask_with_a_model_returns_validated_citations(db: str, no_llm: None) -> None:
    calls: list[list] = []
    with agent.override(model=_citing_model(calls)):
        result = run(db, "ask", "cache ttl", "--model", "test", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["tool_calls"] == [{"tool": "search_docs", "args": {"query": "cache ttl", "source": None, "k": 2}}]
    assert len(data["citations"]) == 1 and data["unverified_urls"] == []
    assert data["usage"]["requests"] == 2 and data["usage"]["tool_calls"] == 1


def test_ask_prints_a_numbered_sources_list(db: str, no_llm: None) -> None:
    with agent.override(model=_citing_model([])):
        result = run(db, "ask", "WIDGETS_CACHE_TTL", "--model", "test")
    assert result.exit_code == 0
    assert re.search(r"Sources\n 1\. .+ — http://127\.0\.0\.1:\d+/configuration\.html#", result.output)


def test_chat_keeps_history_and_instructions_and_handles_commands(db: str, no_llm: None) -> None:
    calls: list[list] = []

    def play(messages: list, info: AgentInfo) -> ModelResponse:
        calls.append(list(messages))
        return ModelResponse(parts=[TextPart(f"answer {len(calls)}")])

    script = "What is the cache TTL?\n/sources\nAnd the default?\n/clear\nFresh question\n/exit\n"
    with agent.override(model=FunctionModel(play)):
        result = run(db, "chat", "--model", "test", input=script)
    assert result.exit_code == 0, result.output
    assert [len(c) for c in calls] == [1, 3, 1]  # turn 2 sees turn 1; /clear forgets it
    assert all(m.instructions == INSTRUCTIONS.strip() for c in calls for m in c if isinstance(m, ModelRequest))
    assert "widgets" in result.output and "(conversation cleared)" in result.output
    assert "answer 3" in result.output


def test_chat_survives_ctrl_c_during_an_answer(db: str, no_llm: None) -> None:
    calls: list[int] = []

    def play(messages: list, info: AgentInfo) -> ModelResponse:
        calls.append(len(messages))
        if len(calls) == 1:
            raise KeyboardInterrupt
        return ModelResponse(parts=[TextPart("still here")])

    with agent.override(model=FunctionModel(play)):
        result = run(db, "chat", "--model", "test", input="first\nsecond\n")
    assert result.exit_code == 0
    assert "(interrupted)" in result.output and "still here" in result.output
    assert calls == [1, 1]  # the interrupted turn left nothing in the history


def test_chat_without_a_model_answers_with_passages(db: str, no_llm: None) -> None:
    result = run(db, "chat", input="WIDGETS_CACHE_TTL\n")
    assert result.exit_code == 0 and "configuration.html" in result.output


class StubOpenAI:
    """An OpenAI-compatible chat server on 127.0.0.1 that plays scripted replies (the last one repeats)."""

    def __init__(self, *replies: StubReply) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                reply = stub.replies[min(len(stub.requests), len(stub.replies)) - 1]
                status, headers, payload = reply(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": "stub",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}


def _search_call(body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "search_docs", "arguments": json.dumps({"query": "WIDGETS_CACHE_TTL", "k": 2})}}
    return 200, {}, _completion({"content": None, "tool_calls": [call]}, "tool_calls")


def _cite_first(body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    tool_result = next(m for m in reversed(body["messages"]) if m["role"] == "tool")["content"]
    url = re.findall(r"<(http[^>]+)>", tool_result)[0]
    return 200, {}, _completion({"content": f"Set `WIDGETS_CACHE_TTL` ([docs]({url}))."})


def _status(code: int, headers: dict[str, str] | None = None) -> StubReply:
    return lambda body: (code, headers or {}, {"error": {"message": f"stub says {code}", "type": "stub"}})


@pytest.fixture
def stub_env(monkeypatch: pytest.MonkeyPatch, no_llm: None):
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)  # the "provider" is a stub on 127.0.0.1
    servers: list[StubOpenAI] = []

    def start(*replies: StubReply) -> StubOpenAI:
        stub = StubOpenAI(*replies)
        servers.append(stub)
        monkeypatch.setenv("DOCSHELF_LLM_BASE_URL", stub.url)
        monkeypatch.setenv("DOCSHELF_LLM_MODEL", "stub-model")
        return stub

    yield start
    for stub in servers:
        stub.close()


def test_openai_compatible_server_429_is_retried_and_answered(db: str, stub_env) -> None:
    stub = stub_env(_status(429, {"Retry-After": "1"}), _search_call, _cite_first)
    result = run(db, "ask", "cache ttl", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(stub.requests) == 3  # the 429, its retry (a search), then the answer
    assert stub.requests[0]["model"] == "stub-model"
    assert len(data["citations"]) == 1 and data["citations"][0]["url"].split("#")[0].endswith("/configuration.html")
    assert data["model"].startswith("stub-model @ http://127.0.0.1:")


def test_a_persistent_5xx_is_one_line_and_exit_1(db: str, stub_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSHELF_LLM_MAX_RETRIES", "1")
    stub = stub_env(_status(503))
    result = run(db, "ask", "cache ttl")
    assert result.exit_code == 1
    assert len(stub.requests) == 2  # one try and one retry
    assert result.output.strip().splitlines() == [
        "Error: the model provider answered HTTP 503 for stub-model (after retries): stub says 503"]


def test_a_base_url_without_a_model_name_is_a_config_error(db: str, no_llm: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSHELF_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    result = run(db, "ask", "cache ttl")
    assert result.exit_code == 2 and "set DOCSHELF_LLM_MODEL" in result.output


def test_help_loads_no_llm_or_mcp_code() -> None:
    import subprocess
    import sys

    code = ("import sys; from docshelf.cli import cli; from click.testing import CliRunner; "
            "CliRunner().invoke(cli, ['--help']); CliRunner().invoke(cli, ['ask', '--help']); "
            "print(sorted(m for m in ('pydantic_ai', 'mcp', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
