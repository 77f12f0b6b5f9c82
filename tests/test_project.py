"""`docshelf project`: manifests and lockfiles of real shapes → the dependency table → a scope search honours."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from docshelf.cli import cli
from docshelf.embed import get_embedder
from docshelf.ingest import Ingestor
from docshelf.models import Source
from docshelf.project.manifests import Dependency, read_project
from docshelf.project.matching import match_dependencies
from docshelf.project.scope import SCOPE_FILE, find_scope, read_scope
from docshelf.store import open_store
from servers import Server

FIXTURES = Path(__file__).parent / "fixtures"
PROJECTS = FIXTURES / "projects"
VERSIONED = FIXTURES / "versioned_site"

JS = {"@tanstack/react-query": "5.59.16", "react": "18.3.1", "react-dom": "18.3.1", "typescript": "5.6.3",
      "vite": "5.4.10"}


@pytest.mark.parametrize(("project", "expected"), [
    ("uv", {"Django": "4.2.16", "httpx": "0.27.2", "psycopg": "3.2.3", "pytest": "8.3.3", "ruff": "0.7.1",
            "widgets": "2.3.1"}),
    ("poetry", {"fastapi": "0.115.4", "pytest": "8.3.3", "SQLAlchemy": "2.0.36"}),
    ("requirements", {"black": "24.10.0", "flask": "3.0.3", "gunicorn": "23.0.0", "jinja2": "3.1.4",
                      "pytest": "8.3.3", "requests": None}),
    ("pipenv", {"certifi": "2024.8.30", "pytest": "8.3.3", "requests": "2.32.3"}),
    ("npm", JS), ("pnpm", JS), ("yarn-classic", JS), ("yarn-berry", JS),
])
def test_each_format_gives_the_dependencies_and_their_locked_versions(project: str, expected: dict) -> None:
    found = read_project(PROJECTS / project)
    assert found.problems == []
    assert {d.name: d.locked for d in found.dependencies} == expected


def test_declared_constraints_and_files_are_kept() -> None:
    django = next(d for d in read_project(PROJECTS / "uv").dependencies if d.key == "django")
    assert django.spec == "<5,>=4.2" and django.files == ["pyproject.toml", "uv.lock"]
    # the ruff of a dependency group, not the {include-group} table; the project itself is not a dependency
    assert "fleet-dashboard" not in {d.key for d in read_project(PROJECTS / "uv").dependencies}


def test_a_malformed_file_is_named_with_its_line_and_the_rest_is_read() -> None:
    found = read_project(PROJECTS / "broken")
    problems = {p.file: p for p in found.problems}
    assert set(problems) == {"pyproject.toml", "package-lock.json"}
    assert "line 5" in problems["pyproject.toml"].message and problems["package-lock.json"].line == 2
    assert {d.name: d.locked for d in found.dependencies} == {"flask": "3.0.3"}


def test_a_bad_requirement_line_is_reported_by_number(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask==3.0.3\nthis is not a requirement\nrich>=13\n")
    found = read_project(tmp_path)
    assert [str(p).split(" (")[0] for p in found.problems] == ["requirements.txt:2: not a requirement"]
    assert [d.name for d in found.dependencies] == ["flask", "rich"]


def test_matching_by_package_name_documentation_url_and_version() -> None:
    sources = [
        Source("django@4.2", "https://docs.djangoproject.com/en/4.2/"),
        Source("django@5.1", "https://docs.djangoproject.com/en/5.1/"),
        Source("pallets_click", "https://click.palletsprojects.com/en/stable/"),  # click's installed Project-URL
        Source("reactdocs", "https://react.dev/", packages=["react", "react-dom"]),
        Source("httpx_a", "https://a.example/", packages=["httpx"]),
        Source("httpx_b", "https://b.example/", packages=["httpx"]),
    ]
    deps = [Dependency("Django", "pypi", locked="4.2.16"), Dependency("django", "pypi", locked="3.2.1"),
            Dependency("click", "pypi", locked="8.1.7"), Dependency("react", "npm", locked="18.3.1"),
            Dependency("httpx", "pypi", locked="0.27.2"), Dependency("leftpad", "npm", locked="1.0.0")]
    rows = match_dependencies(deps, sources)
    table = [(r.dependency.name, r.dependency.locked, r.key, r.status, r.matched_by) for r in rows]
    assert table == [
        ("Django", "4.2.16", "django@4.2", "ok", "name"),
        ("django", "3.2.1", "django@5.1", "other version on the shelf", "name"),
        ("click", "8.1.7", "pallets_click", "ok", "documentation URL"),
        ("react", "18.3.1", "reactdocs", "ok", "package"),
        ("httpx", "0.27.2", None, "several sources", "package"),
        ("leftpad", "1.0.0", None, "not on the shelf", ""),
    ]
    assert "--package httpx" in rows[4].hint and "httpx_a, httpx_b" in rows[4].hint
    assert rows[5].hint == "docshelf add DOCS_URL --source leftpad --package leftpad"


@pytest.fixture
def widgets_shelf(tmp_path: Path) -> str:
    """A shelf holding the versioned fixture site as widgets@2.2, @2.3, @2.4 (and one other source)."""
    db = str(tmp_path / "shelf.db")
    store = open_store(db)
    ingestor = Ingestor(store, lambda: get_embedder(None))
    with Server(VERSIONED) as server:
        for version in ("2.2", "2.3", "2.4"):
            ingestor.add(server.url(f"/en/{version}/"), source="widgets")
    store.upsert_source(Source("unrelated", "https://unrelated.example/"))
    store.close()
    return db


def test_project_then_search_scoped_to_it_through_the_cli(widgets_shelf: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "fleet"
    shutil.copytree(PROJECTS / "uv", project)
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", widgets_shelf, "project", str(project), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = {row["dependency"]: row for row in report["dependencies"]}
    assert rows["widgets"]["status"] == "ok" and rows["widgets"]["version"] == "2.3"
    assert rows["Django"]["status"] == "not on the shelf" and "docshelf add" in rows["Django"]["hint"]
    assert report["scope_file"] == str(project / SCOPE_FILE)
    assert read_scope(project / SCOPE_FILE).pins == {"widgets": "2.3"}

    # Inside the project (a subfolder too): only widgets, at 2.3 — though the shelf's newest is 2.4.
    (project / "src").mkdir()
    monkeypatch.chdir(project / "src")
    hits = json.loads(runner.invoke(cli, ["--db", widgets_shelf, "search", "stream events gearbox", "--json"]).output)
    assert hits and {h["version"] for h in hits} == {"2.3"}
    everything = json.loads(runner.invoke(cli, ["--db", widgets_shelf, "search", "telemetry firehose", "--json",
                                                "--all-sources"]).output)
    assert everything[0]["version"] == "2.4"
    monkeypatch.chdir(tmp_path)
    elsewhere = json.loads(runner.invoke(cli, ["--db", widgets_shelf, "search", "telemetry firehose", "--json"]).output)
    assert elsewhere[0]["version"] == "2.4"
    again = json.loads(runner.invoke(cli, ["--db", widgets_shelf, "search", "telemetry firehose", "--json",
                                           "--project", str(project)]).output)
    assert {h["version"] for h in again} == {"2.3"}
    missing = runner.invoke(cli, ["--db", widgets_shelf, "search", "x", "--project", str(tmp_path)])
    assert missing.exit_code == 2 and "no .docshelf.toml" in missing.output


def test_project_then_search_scoped_to_it_through_mcp(widgets_shelf: str, tmp_path: Path) -> None:
    project = tmp_path / "fleet"
    shutil.copytree(PROJECTS / "uv", project)
    assert CliRunner().invoke(cli, ["--db", widgets_shelf, "project", str(project)]).exit_code == 0

    async def session() -> tuple[str, str]:
        params = StdioServerParameters(command=sys.executable, args=["-m", "docshelf", "--db", widgets_shelf, "mcp"],
                                       cwd=str(project), env=dict(os.environ))
        async with Client(params) as client:
            listed = "".join(p.text for p in (await client.call_tool("list_sources", {})).content)
            found = "".join(p.text for p in (await client.call_tool("search_docs", {"query": "gearbox"})).content)
            return listed, found

    listed, found = asyncio.run(session())
    assert "**widgets@2.3**" in listed and "in scope: the project depends on widgets 2.3.1 locked in uv.lock" in listed
    assert "**unrelated**" in listed and "not in the project's scope" in listed
    versions = set(re.findall(r"> · widgets (\d\.\d) · fetched", found))
    assert versions == {"2.3"}


def test_no_manifest_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), "project", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest or lockfile" in result.output


def test_find_scope_walks_up_and_rejects_a_malformed_file(tmp_path: Path) -> None:
    (tmp_path / SCOPE_FILE).write_text('[sources.widgets]\nversion = "2.3"\n')
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_scope(tmp_path / "a" / "b").pins == {"widgets": "2.3"}
    (tmp_path / SCOPE_FILE).write_text("[sources\n")
    with pytest.raises(Exception, match=r"\.docshelf\.toml: not valid TOML"):
        find_scope(tmp_path)


def test_serve_in_a_project_searches_its_scope_and_the_api_takes_source_at_version(widgets_shelf: str,
                                                                                     tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from docshelf.server.app import create_app
    from docshelf.server.state import ServerConfig

    project = tmp_path / "fleet"
    shutil.copytree(PROJECTS / "uv", project)
    assert CliRunner().invoke(cli, ["--db", widgets_shelf, "project", str(project)]).exit_code == 0
    scoped = ServerConfig(db=widgets_shelf, mcp=False, scope=read_scope(project / SCOPE_FILE))
    with TestClient(create_app(scoped)) as client:
        hits = client.get("/api/search", params={"q": "telemetry firehose stream"}).json()["hits"]
        assert hits and {h["version"] for h in hits} == {"2.3"}
    with TestClient(create_app(ServerConfig(db=widgets_shelf, mcp=False))) as client:
        assert client.get("/api/search", params={"q": "telemetry firehose"}).json()["hits"][0]["version"] == "2.4"
        old = client.get("/api/search", params={"q": "gearbox pipeline", "source": "widgets@2.2"}).json()["hits"]
        assert old and {h["version"] for h in old} == {"2.2"} and all("/en/2.2/" in h["url"] for h in old)
        unknown = client.get("/api/search", params={"q": "gearbox", "source": "widgets@9.9"})
        assert unknown.status_code == 404 and "it has: 2.4, 2.3, 2.2" in unknown.json()["detail"]
        several = client.delete("/api/sources/widgets")
        assert several.status_code == 400 and "name one as widgets@VERSION" in several.json()["detail"]
        assert client.delete("/api/sources/widgets@2.2").status_code == 200
