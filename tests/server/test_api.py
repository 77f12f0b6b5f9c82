"""The HTTP API over a real shelf of the Sphinx fixture site: every endpoint, every error status, SSE streams.

Crawl jobs run for real against fixture sites served on 127.0.0.1 and are followed over SSE
from a real uvicorn server; the ask model is the one fake (a Pydantic AI FunctionModel).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic_ai import models
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

from docshelf.access import AccessPolicy, FolderPolicy
from docshelf.answer import answer_with_passages
from docshelf.cli import cli
from docshelf.llm import ResolvedModel
from docshelf.server.app import create_app
from docshelf.server.state import ServerConfig
from servers import Server

models.ALLOW_MODEL_REQUESTS = False

MKDOCS = Path(__file__).parents[1] / "fixtures" / "sites" / "mkdocs"
LOCAL_SITES = AccessPolicy.for_clients("127.0.0.1")
"""The test sites run on 127.0.0.1, which a server refuses to crawl unless the operator allows it."""
Client = Callable[..., TestClient]


def sse_events(text: str) -> list[tuple[str, Any]]:
    """Return the (event, JSON data) pairs of a text/event-stream body, pings left out."""
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def assert_error(response: httpx.Response, status: int, error: str, detail: str = "") -> None:
    """Check the one error shape: JSON {error, detail}, the status, and no stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == error, body
    assert detail in body["detail"] and "Traceback" not in response.text


def cli_json(db: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(autouse=True)
def no_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every server without a configured model: ask answers with passages unless a test sets one."""
    for name in ("DOCSHELF_LLM_MODEL", "DOCSHELF_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def client(make_client: Client) -> TestClient:
    return make_client()


# -- reading ------------------------------------------------------------------------------------
def test_sources_and_pages(client: TestClient, widgets_shelf: tuple[Path, str]) -> None:
    _, base = widgets_shelf
    sources = client.get("/api/sources").json()["sources"]
    assert [(s["name"], s["pages"]) for s in sources] == [("widgets", 4)] and sources[0]["chunks"] > 10

    first = client.get("/api/sources/widgets/pages", params={"limit": 3}).json()
    rest = client.get("/api/sources/widgets/pages", params={"limit": 3, "offset": 3}).json()
    assert (
        first["total"] == 4 and len(first["pages"]) == 3 and rest["offset"] == 3 and len(rest["pages"]) == 1
    )
    assert {p["url"] for p in first["pages"] + rest["pages"]} == {
        f"{base}/{n}" for n in ("", "api.html", "configuration.html", "quickstart.html")
    }
    prefixed = client.get("/api/sources/widgets/pages", params={"prefix": f"{base}/api"}).json()
    assert [p["url"] for p in prefixed["pages"]] == [f"{base}/api.html"] and prefixed["total"] == 1

    assert_error(
        client.get("/api/sources/nope/pages"),
        404,
        "not_found",
        "unknown source 'nope'; the shelf holds: widgets",
    )
    assert_error(
        client.get("/api/sources/widgets/pages", params={"limit": 0}),
        400,
        "bad_request",
        "query parameter limit",
    )
    assert_error(
        client.get("/api/sources/widgets/pages", params={"offset": -1}), 400, "bad_request", "offset"
    )


def test_read_page_in_windows_and_from_an_anchor(client: TestClient, widgets_shelf: tuple[Path, str]) -> None:
    _, base = widgets_shelf
    url = f"{base}/configuration.html"
    numbers, start = [], 0
    while True:
        window = client.get("/api/page", params={"url": url, "start_chunk": start, "max_chunks": 4}).json()
        numbers += [p["chunk_number"] for p in window["passages"]]
        start += len(window["passages"])
        if start >= window["total_chunks"]:
            break
    assert numbers == list(range(window["total_chunks"])) and window["source"] == "widgets"

    anchored = client.get("/api/page", params={"url": f"{url}#settings-reference", "max_chunks": 1}).json()
    assert anchored["passages"][0]["url"] == f"{url}#settings-reference" and anchored["start_chunk"] > 0

    assert_error(client.get("/api/page", params={"url": f"{base}/missing.html"}), 404, "not_found", "no page")
    assert_error(
        client.get("/api/page", params={"url": url, "start_chunk": 999}), 404, "not_found", "no chunk 999"
    )
    assert_error(
        client.get("/api/page", params={"url": url, "max_chunks": 0}), 400, "bad_request", "max_chunks"
    )
    assert_error(client.get("/api/page"), 400, "bad_request", "query parameter url: Field required")


def test_read_page_and_search_within_a_token_budget(client: TestClient, widgets_shelf: tuple[Path, str]) -> None:
    _, base = widgets_shelf
    url = f"{base}/configuration.html"
    end, cursor = 0, None
    while True:
        part = client.get("/api/page", params={"url": url, "max_tokens": 120} | ({"cursor": cursor} if cursor else {}))
        part = part.json()
        assert part["tokens"] <= 120 and part["max_tokens"] == 120 and part["start"] == end < part["end"]
        end, cursor = part["end"], part["cursor"]
        if cursor is None:
            break
    assert part["end"] == part["total"] > 1000
    around = client.get("/api/page", params={"url": f"{url}#settings-reference", "around": 1, "max_tokens": 2000}).json()
    assert "{#settings-reference}" in around["content"]

    found = client.get("/api/search", params={"q": "WIDGETS_CACHE_TTL", "max_tokens": 300}).json()
    assert found["tokens"] <= 300 and found["more"] > 0 and found["passages"]
    assert_error(client.get("/api/search", params={"q": "x", "max_tokens": 10}), 400, "bad_request", "max_tokens")
    assert_error(client.get("/api/page", params={"url": url, "cursor": "nope"}), 404, "not_found", "not one read_page gave")


def test_search_returns_the_hits_of_the_cli(client: TestClient, shelf_copy: Path) -> None:
    for mode in ("hybrid", "bm25", "vector"):
        api = client.get(
            "/api/search", params={"q": "how long do widgets stay cached", "k": 5, "mode": mode}
        ).json()
        cli_hits = cli_json(
            shelf_copy, "search", "how long do widgets stay cached", "-k", "5", "--mode", mode, "--json"
        )
        assert api["hits"] == cli_hits and len(cli_hits) == 4 and api["mode"] == mode  # the shelf has 4 pages
    filtered = client.get(
        "/api/search", params=[("q", "tessellate"), ("source", "widgets"), ("k", "2")]
    ).json()
    assert filtered["hits"] == cli_json(
        shelf_copy, "search", "tessellate", "--source", "widgets", "-k", "2", "--json"
    )
    assert filtered["hits"][0]["url"].split("#")[0].endswith("/api.html")
    hit = filtered["hits"][0]  # every hit says where it is from and how fresh it is
    assert hit["source"] == "widgets" and hit["version"] == "" and hit["fetched_at"] and hit["changed_at"]


def test_search_errors(client: TestClient) -> None:
    assert_error(client.get("/api/search"), 400, "bad_request", "query parameter q: Field required")
    assert_error(client.get("/api/search", params={"q": ""}), 400, "bad_request", "query parameter q")
    assert_error(
        client.get("/api/search", params={"q": "x", "k": 201}),
        400,
        "bad_request",
        "less than or equal to 200",
    )
    assert_error(client.get("/api/search", params={"q": "x", "mode": "fuzzy"}), 400, "bad_request", "mode")
    assert_error(
        client.get("/api/search", params={"q": "x", "source": "nope"}),
        404,
        "not_found",
        "unknown source 'nope'",
    )
    assert_error(
        client.get("/api/search", params={"q": "x", "source": "widgets@9.9"}),
        404,
        "not_found",
        "source 'widgets' has no version '9.9' on the shelf; it has: (unversioned)",
    )


def test_unknown_routes_and_methods_are_json_errors(client: TestClient) -> None:
    assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert_error(client.put("/api/sources"), 405, "method_not_allowed")
    assert_error(
        client.post("/api/ask", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "bad_request",
        "body",
    )


def test_a_shelf_failure_is_a_500_with_its_reason_and_no_trace(make_client: Client) -> None:
    # The shelf holds MiniLM vectors: a server started with another embedder cannot embed queries for it.
    client = make_client(embedder="openai:text-embedding-3-small")
    assert_error(client.get("/api/search", params={"q": "cache"}), 500, "server_error", "all-MiniLM-L6-v2")
    assert client.get("/api/search", params={"q": "cache", "mode": "bm25"}).status_code == 200


# -- ask ----------------------------------------------------------------------------------------
def test_ask_without_a_model_streams_the_passages_answer(client: TestClient) -> None:
    response = client.post(
        "/api/ask", json={"question": "how long do widgets stay in the render cache?", "k": 4}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [name for name, _ in events] == ["delta", "citations", "usage", "done"]
    state = client.app.state.docshelf
    expected = answer_with_passages(state.tools, "how long do widgets stay in the render cache?", (), 4)
    assert events[0][1] == {"text": expected.answer, "new_part": True}
    assert events[1][1] == {"citations": [c.to_json() for c in expected.citations], "unverified_urls": []}
    assert events[2][1] == {"usage": {}, "model": None}
    assert events[3][1] == expected.to_json()


def test_ask_errors_come_before_the_stream(client: TestClient) -> None:
    assert_error(
        client.post("/api/ask", json={"question": "cache", "sources": ["nope"]}), 404, "not_found", "nope"
    )
    assert_error(client.post("/api/ask", json={"question": ""}), 400, "bad_request", "body field question")
    assert_error(
        client.post("/api/ask", json={"question": "cache", "k": 31}), 400, "bad_request", "body field k"
    )
    assert_error(client.post("/api/ask", json={}), 400, "bad_request", "body field question: Field required")


def _streaming_model(invented: str) -> FunctionModel:
    """Return a model that searches once, then writes (in pieces) an answer citing the first URL it got."""

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise AssertionError("the server streams: only stream_function is used")

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[Any]:
        last = messages[-1].parts[-1]
        if last.part_kind == "tool-return":
            url = re.findall(r"<(http[^>]+)>", last.content)[0]
            for piece in (
                "Widgets stay cached ",
                f"for `cache_ttl` seconds ([settings]({url})); ",
                f"see also [elsewhere]({invented}).",
            ):
                yield piece
        else:
            yield {0: DeltaToolCall(name="search_docs", json_args=json.dumps({"query": "cache ttl", "k": 2}))}

    return FunctionModel(reply, stream_function=stream)


def test_ask_with_a_model_streams_deltas_tool_calls_and_validated_citations(client: TestClient) -> None:
    invented = "http://127.0.0.1:1/made-up.html"
    client.app.state.docshelf.model = ResolvedModel(_streaming_model(invented), "function-model")
    events = sse_events(client.post("/api/ask", json={"question": "how long are widgets cached?"}).text)
    names = [name for name, _ in events]
    assert names[0] == "tool_call" and names[-3:] == ["citations", "usage", "done"]
    assert events[0][1] == {"name": "search_docs", "args": {"query": "cache ttl", "k": 2}}
    deltas = [data for name, data in events if name == "delta"]
    assert len(deltas) >= 3 and deltas[0]["new_part"] and not any(d["new_part"] for d in deltas[1:])
    text = "".join(d["text"] for d in deltas)
    done = events[-1][1]
    assert done["answer"] == text and done["model"] == "function-model"
    cited = events[-3][1]
    assert len(cited["citations"]) == 1 and cited["citations"][0]["url"] in text
    assert cited["unverified_urls"] == [invented]
    assert events[-2][1]["usage"]["requests"] == 2 and events[-2][1]["usage"]["tool_calls"] == 1


def test_ask_reports_a_provider_failure_as_an_error_event(client: TestClient) -> None:
    async def overloaded(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        raise ModelHTTPError(503, "function-model", {"error": {"message": "the model is overloaded"}})
        yield ""  # a generator

    client.app.state.docshelf.model = ResolvedModel(
        FunctionModel(stream_function=overloaded), "function-model"
    )
    events = sse_events(client.post("/api/ask", json={"question": "cache?"}).text)
    assert events == [
        (
            "error",
            {
                "error": "model_error",
                "detail": "the model provider answered HTTP 503 for "
                "function-model (after retries): the model is overloaded",
            },
        )
    ]


# -- export -------------------------------------------------------------------------------------
def _cli_export(db: Path, *args: str) -> bytes:
    result = CliRunner().invoke(cli, ["--db", str(db), "export", *args], catch_exceptions=False)
    assert result.exit_code == 0
    return result.stdout_bytes


@pytest.mark.parametrize("fmt", ["record", "jsonl"])
def test_export_streams_the_bytes_of_the_cli(client: TestClient, shelf_copy: Path, fmt: str) -> None:
    response = client.get("/api/export", params={"source": "widgets", "format": fmt})
    assert response.status_code == 200
    assert response.content == _cli_export(shelf_copy, "--source", "widgets", "--format", fmt)
    assert (
        response.headers["content-disposition"]
        == f'attachment; filename="docshelf-widgets.{"jsonl" if fmt == "jsonl" else "txt"}"'
    )
    if fmt == "jsonl":
        lines = response.text.splitlines()
        assert len(lines) == client.get("/api/sources").json()["sources"][0]["chunks"]
        assert all(len(json.loads(line)["embedding"]) == 384 for line in lines)
        assert {json.loads(line)["embedding_model"] for line in lines} == {"local:all-MiniLM-L6-v2"}
    else:
        assert response.text.startswith("---\nurl: ")
        assert "\nembedding_model: local:all-MiniLM-L6-v2\n" in response.text


def test_export_of_one_page_and_its_errors(
    client: TestClient, shelf_copy: Path, widgets_shelf: tuple[Path, str]
) -> None:
    url = f"{widgets_shelf[1]}/api.html"
    one = client.get("/api/export", params={"url": url, "format": "jsonl"})
    assert one.content == _cli_export(shelf_copy, "--url", url, "--format", "jsonl")
    assert {json.loads(line)["url"] for line in one.text.splitlines()} == {url}
    assert client.get("/api/export").content == _cli_export(shelf_copy)  # the whole shelf, record format
    assert_error(
        client.get("/api/export", params={"source": "nope"}), 404, "not_found", "unknown source 'nope'"
    )
    assert_error(client.get("/api/export", params={"url": url + "x"}), 404, "not_found", "no page")
    assert_error(
        client.get("/api/export", params={"format": "csv"}), 400, "bad_request", "query parameter format"
    )


# -- crawl jobs -----------------------------------------------------------------------------------
@contextmanager
def live_server(config: ServerConfig) -> Iterator[str]:
    """Serve the app with uvicorn on 127.0.0.1 in a thread; yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


def follow(http: httpx.Client, job_id: str) -> list[tuple[str, Any]]:
    """Return the events of a job's SSE stream, read as they arrive, to the end."""
    with http.stream("GET", f"/api/jobs/{job_id}/events", timeout=120) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        return sse_events("".join(response.iter_text()))


def wait_done(http: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (job := http.get(f"/api/jobs/{job_id}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def test_a_crawl_job_is_followed_to_completion_over_sse(shelf_copy: Path) -> None:
    with (
        Server(MKDOCS) as site,
        live_server(ServerConfig(db=str(shelf_copy), access=LOCAL_SITES)) as base,
        httpx.Client(base_url=base) as http,
    ):
        started = http.post("/api/sources", json={"url": site.url("/"), "source": "mk", "max_pages": 50})
        assert started.status_code == 202, started.text
        job = started.json()
        assert started.headers["location"] == f"/api/jobs/{job['id']}" and job["status"] in (
            "queued",
            "running",
        )
        assert_error(
            http.post("/api/sources", json={"url": site.url("/"), "source": "mk"}),
            409,
            "crawl_running",
            f"job {job['id']} is already crawling 'mk'",
        )
        assert_error(http.delete("/api/sources/mk"), 409, "crawl_running")

        events = follow(http, job["id"])
        names = [name for name, _ in events]
        assert names[-1] == "end" and set(names[:-1]) == {"progress"}
        end = events[-1][1]
        assert end["status"] == "done", end["error"]
        assert end["pages_by_status"] == {"ok": 4} and end["summary"]["pages_ok"] == 4
        assert end["chunks"] == end["embedded"] == end["summary"]["chunks"] > 0
        pages = [data["pages_done"] for _, data in events]
        assert pages == sorted(pages) and pages[-1] == 4  # progress only ever grows
        assert http.get(f"/api/jobs/{job['id']}").json() == end
        assert [j["id"] for j in http.get("/api/jobs").json()["jobs"]] == [job["id"]]
        assert http.get("/api/search", params={"q": "plugins", "source": "mk"}).json()["hits"]

        refresh = http.post("/api/sources/mk/refresh")
        assert refresh.status_code == 202 and refresh.json()["kind"] == "refresh"
        refreshed = follow(http, refresh.json()["id"])[-1][1]
        assert refreshed["status"] == "done" and refreshed["summary"]["pages_unchanged"] == 4
        assert refreshed["embedded"] == 0

        removed = http.delete("/api/sources/mk")
        assert removed.json() == {"source": "mk", "pages_removed": 4}
        assert_error(http.get("/api/search", params={"q": "plugins", "source": "mk"}), 404, "not_found")


def test_a_crawl_job_survives_the_client_going_away(shelf_copy: Path) -> None:
    with (
        Server(MKDOCS) as site,
        live_server(ServerConfig(db=str(shelf_copy), access=LOCAL_SITES)) as base,
        httpx.Client(base_url=base) as http,
    ):
        job = http.post("/api/sources", json={"url": site.url("/"), "source": "mk"}).json()
        with http.stream("GET", f"/api/jobs/{job['id']}/events") as response:
            first = next(response.iter_lines())  # one line of the first event, then hang up
            assert first.startswith("event: ")
        done = wait_done(http, job["id"])
        assert done["status"] == "done" and done["pages_by_status"] == {"ok": 4}


def test_a_folder_is_crawled_from_its_path(make_client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tides.md").write_text("# Tides\n\nThe flood tide turns every six hours and twelve minutes.\n")
    client = make_client(folders=FolderPolicy.of([tmp_path]))
    job = client.post("/api/sources", json={"path": str(folder)}).json()
    assert job["source"] == "notes"
    done = wait_done(client, job["id"])
    assert done["status"] == "done" and done["pages_by_status"] == {"ok": 1}
    hits = client.get("/api/search", params={"q": "flood tide", "source": "notes"}).json()["hits"]
    assert hits[0]["url"].startswith("file://") and "twelve minutes" in hits[0]["content"]


def test_a_git_repository_is_crawled_at_a_ref(make_client: Client, tmp_path: Path) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.invalid", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "work" / "guide").mkdir(parents=True)
    (tmp_path / "work" / "guide" / "tides.md").write_text("# Tides\n\nThe ebb tide runs for six hours.\n")
    git("init", "-q", "--bare", "tides.git")
    git("init", "-q", "work")
    git("-C", "work", "add", "-A")
    git("-C", "work", "commit", "-q", "-m", "docs")
    git("-C", "work", "tag", "v1")
    git("-C", "work", "push", "-q", str(tmp_path / "tides.git"), "HEAD:refs/heads/main", "--tags")
    # a local repository a client names is a folder on the server: it must lie under --allow-folder
    assert make_client().post("/api/sources", json={"path": str(tmp_path / "tides.git")}).status_code == 400
    client = make_client(folders=FolderPolicy.of([tmp_path]))
    job = client.post("/api/sources", json={"path": str(tmp_path / "tides.git"), "ref": "v1",
                                            "docs_path": "guide", "render": "never"}).json()
    done = wait_done(client, job["id"])
    assert done["status"] == "done" and done["pages_by_status"] == {"ok": 1}
    hits = client.get("/api/search", params={"q": "ebb tide", "source": job["source"]}).json()["hits"]
    assert hits[0]["url"] == f"{(tmp_path / 'tides.git').as_uri()}/guide/tides.md?ref=v1#tides"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "give either url"),
        ({"url": "http://127.0.0.1:1/", "render": "sometimes"}, "body field render"),
        ({"url": "http://127.0.0.1:1/", "path": "/tmp"}, "give either url"),
        ({"url": "ftp://example.org/docs"}, "is not an http(s) URL"),
        ({"url": "http://127.0.0.1:1/", "source": "../etc"}, "body field source"),
        ({"url": "http://127.0.0.1:1/", "max_pages": 0}, "body field max_pages"),
        ({"url": "http://127.0.0.1:1/", "concurrency": 65}, "body field concurrency"),
        ({"url": "http://127.0.0.1:1/", "include": "*/api/*"}, "body field include"),
    ],
)
def test_add_source_bad_bodies_are_400(client: TestClient, body: dict[str, Any], detail: str) -> None:
    assert_error(client.post("/api/sources", json=body), 400, "bad_request", detail)
    assert client.get("/api/jobs").json() == {"jobs": []}


def test_unknown_sources_and_jobs_are_404(client: TestClient) -> None:
    assert_error(client.post("/api/sources/nope/refresh"), 404, "not_found", "unknown source 'nope'")
    assert_error(client.delete("/api/sources/nope"), 404, "not_found", "unknown source 'nope'")
    assert_error(client.get("/api/jobs/abc"), 404, "not_found", "no job 'abc'")
    assert_error(client.get("/api/jobs/abc/events"), 404, "not_found", "no job 'abc'")


def test_remove_a_source(client: TestClient) -> None:
    assert client.delete("/api/sources/widgets").json() == {"source": "widgets", "pages_removed": 4}
    assert client.get("/api/sources").json() == {"sources": []}
    assert client.get("/api/search", params={"q": "cache"}).json()["hits"] == []


# -- read-only ----------------------------------------------------------------------------------
def test_read_only_refuses_every_write_and_still_reads(make_client: Client) -> None:
    client = make_client(read_only=True)
    assert_error(
        client.post("/api/sources", json={"url": "http://127.0.0.1:1/"}), 403, "read_only", "--read-only"
    )
    assert_error(client.post("/api/sources/widgets/refresh"), 403, "read_only")
    assert_error(client.delete("/api/sources/widgets"), 403, "read_only")
    assert_error(client.get("/api/jobs/abc"), 404, "not_found", "read-only")
    assert client.get("/api/jobs").json() == {"jobs": []}
    assert client.get("/api/sources").json()["sources"][0]["pages"] == 4  # nothing was removed
    assert client.get("/api/search", params={"q": "cache"}).json()["hits"]
    assert sse_events(client.post("/api/ask", json={"question": "cache"}).text)[-1][0] == "done"


# -- concurrency ----------------------------------------------------------------------------------
def test_concurrent_requests_each_get_a_connection_of_their_own(client: TestClient) -> None:
    # One apsw connection shared by the thread pool fails with ThreadingViolationError under this load.
    search = {"q": "render cache", "k": 5}
    expected = (client.get("/api/search", params=search).json(), client.get("/api/export").content)
    results: list[Any] = []

    def hammer() -> None:
        for _ in range(20):
            found, exported = client.get("/api/search", params=search), client.get("/api/export")
            results.append(
                (found.json(), exported.content)
                if found.is_success and exported.is_success
                else found.text + exported.text
            )

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 160 and all(result == expected for result in results)


# -- packs ----------------------------------------------------------------------------------------
def test_a_source_downloads_as_a_pack_and_uploads_into_another_shelf(
        client: TestClient, shelf_copy: Path, tmp_path: Path) -> None:
    from docshelf.store.sqlite import SQLiteStore

    response = client.get("/api/sources/widgets/pack")
    assert response.status_code == 200 and response.headers["content-type"] == "application/vnd.docshelf.pack"
    assert 'filename="widgets.docshelf"' in response.headers["content-disposition"]
    cli_pack = tmp_path / "cli.docshelf"
    CliRunner().invoke(cli, ["--db", str(shelf_copy), "pack", "widgets", "-o", str(cli_pack)], catch_exceptions=False)
    assert response.content == cli_pack.read_bytes()  # the same bytes as `docshelf pack`
    assert_error(client.get("/api/sources/nope/pack"), 404, "not_found", "unknown source 'nope'")

    with TestClient(create_app(ServerConfig(db=str(tmp_path / "empty.db")))) as other:
        added = other.post("/api/packs", files={"pack": ("w.docshelf", response.content)})
        assert added.status_code == 200, added.text
        assert added.json()["vectors_used"] == added.json()["chunks"] > 10 and added.json()["embedded"] == 0
        again = other.post("/api/packs", files={"pack": ("w.docshelf", response.content)}).json()
        assert again["replaced"] and again["chunks"] == added.json()["chunks"]
        hits = other.get("/api/search", params={"q": "WIDGETS_CACHE_TTL", "k": 1}).json()["hits"]
        assert hits[0]["url"].split("#")[0].endswith("/configuration.html")
        assert_error(other.post("/api/packs", files={"pack": ("x.docshelf", response.content[:5000])}), 400,
                     "bad_pack", "damaged")

    mismatched = tmp_path / "other-model.db"
    store = SQLiteStore(mismatched)
    store.bind_embedder("test:model", 8)
    store.close()
    with TestClient(create_app(ServerConfig(db=str(mismatched)))) as other:
        assert_error(other.post("/api/packs", files={"pack": ("w.docshelf", response.content)}), 409,
                     "model_mismatch", "--reembed")
    with TestClient(create_app(ServerConfig(db=str(tmp_path / "ro.db"), read_only=True))) as read_only:
        assert_error(read_only.post("/api/packs", files={"pack": ("w.docshelf", response.content)}), 403,
                     "read_only", "read-only")
