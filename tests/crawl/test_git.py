"""Git repositories: a bare repository made in the test, cloned over file://, read, refreshed by diff."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from counting import CountingEmbedder
from docshelf.cli import cli
from docshelf.crawl import CrawlOptions
from docshelf.crawl.git import file_url, is_git_source, page_url, repository, stored_paths
from docshelf.embed import get_embedder
from docshelf.ingest import Ingestor
from store import shelves
from store.shelves import open_shelf

pg_dsn = shelves.pg_dsn  # fixture shared with tests/store

FORMATS = Path(__file__).parents[1] / "fixtures" / "formats"


def git(cwd: Path, *args: str) -> str:
    env_args = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"]
    return subprocess.run(["git", *env_args, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class Repo:
    """A work tree that pushes to a bare repository, which the crawl clones over file://."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "widgetry.git"
        self.work = root / "work"
        root.mkdir(parents=True)
        git(root, "init", "-q", "--bare", str(self.bare))
        git(root, "init", "-q", str(self.work))
        git(self.work, "remote", "add", "origin", self.bare.as_uri())

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def write(self, path: str, text: str) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def commit(self, message: str, tag: str | None = None) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        if tag:
            git(self.work, "tag", tag)
        git(self.work, "push", "-q", "origin", "HEAD:main", "--tags")
        return git(self.work, "rev-parse", "HEAD").strip()


def page(title: str, body: str) -> str:
    return f"# {title}\n\n{body}\n\n## Details\n\nMore about {title.lower()}: {body}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "origin")
    repo.write("README.md", page("Widgetry", "Widgetry builds sprockets and gears."))
    repo.write("docs/install.md", page("Installing", "Install widgetry with pip and check it with widgetry doctor."))
    repo.write("docs/config.md", page("Configuring", "The frobnicator reads widgetry.toml at start."))
    repo.write("docs/old.md", page("Old notes", "The lanthanum sprocket was retired in version one."))
    repo.write("docs/guide.rst", "Guide\n=====\n\nCall :func:`widgetry.build` to get a widget.\n")
    repo.write("src/widgetry/notes.md", page("Internal", "Not documentation: outside docs/."))
    repo.write("mkdocs.yml", "site_name: Widgetry\n")
    repo.commit("first", tag="v1.0")
    return repo


@pytest.fixture(params=["sqlite", "postgres"])
def shelf_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "shelf.db") if request.param == "sqlite" else request.getfixturevalue("pg_dsn")


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder(get_embedder())


def test_recognising_repositories(tmp_path: Path) -> None:
    assert is_git_source("https://github.com/org/repo")
    assert is_git_source("git+ssh://git@example.com/org/repo.git")
    assert is_git_source("git@github.com:org/repo.git")
    assert is_git_source("https://example.com/x/repo.git")
    assert not is_git_source("https://github.com/org/repo/wiki/Home")
    assert not is_git_source("https://docs.example.com/")
    assert not is_git_source(str(tmp_path))
    clone = tmp_path / "clone"
    git(tmp_path, "init", "-q", str(clone))
    assert not is_git_source(str(clone)) and is_git_source(str(clone), CrawlOptions(ref="main"))


def test_citation_urls_name_the_forge_view_of_the_file() -> None:
    github = repository("https://github.com/org/repo")
    assert github.clone_url == "https://github.com/org/repo.git"
    assert file_url(github, "v2.1", "docs/x.md") == "https://github.com/org/repo/blob/v2.1/docs/x.md"
    ssh = repository("git+ssh://git@gitlab.com/group/repo.git")
    assert ssh.clone_url == "ssh://git@gitlab.com/group/repo.git"
    assert file_url(ssh, None, "docs/x.md") == "https://gitlab.com/group/repo/-/blob/HEAD/docs/x.md"
    assert file_url(repository("git@github.com:org/repo.git"), "main", "a.md") == \
        "https://github.com/org/repo/blob/main/a.md"
    assert file_url(repository("file:///srv/repo.git"), None, "docs/x.md") == "file:///srv/repo.git/docs/x.md"
    assert file_url(github, "v2.1", "docs/x.md", "abc123") == "https://github.com/org/repo/blob/abc123/docs/x.md"


def test_a_forge_page_is_named_at_its_commit_and_keeps_that_url_while_unchanged() -> None:
    repo = repository("https://github.com/org/repo")
    stored = {"https://github.com/org/repo/blob/old1/docs/a.md": ('"blob-a"', None),
              "https://github.com/org/repo/blob/old1/docs/b.md": ('"blob-b"', None),
              "https://github.com/other/repo/blob/old1/docs/c.md": ('"blob-c"', None)}
    paths = stored_paths(repo, stored)
    assert paths == {"docs/a.md": "https://github.com/org/repo/blob/old1/docs/a.md",
                     "docs/b.md": "https://github.com/org/repo/blob/old1/docs/b.md"}

    def plan(path: str, blob: str) -> tuple[str, bool]:
        return page_url(repo, "main", "new2", path, blob, paths, stored.get)

    assert plan("docs/a.md", "blob-a") == ("https://github.com/org/repo/blob/old1/docs/a.md", True)  # unchanged
    assert plan("docs/b.md", "blob-b2") == ("https://github.com/org/repo/blob/new2/docs/b.md", False)  # edited
    assert plan("docs/d.md", "blob-d") == ("https://github.com/org/repo/blob/new2/docs/d.md", False)  # added


def test_add_reads_the_docs_folder_and_the_readme(repo: Repo, tmp_path: Path) -> None:
    db = str(tmp_path / "shelf.db")
    result = CliRunner().invoke(cli, ["--db", db, "add", repo.url, "--source", "widgetry", "--json"])
    summary = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert summary["pages_ok"] == 5 and summary["commit"] == git(repo.work, "rev-parse", "HEAD").strip()
    pages = json.loads(CliRunner().invoke(cli, ["--db", db, "pages", "widgetry", "--json"]).stdout)["pages"]
    assert sorted(p["url"].removeprefix(repo.url + "/") for p in pages) == [
        "README.md", "docs/config.md", "docs/guide.rst", "docs/install.md", "docs/old.md"]
    hits = json.loads(CliRunner().invoke(cli, ["--db", db, "search", "frobnicator widgetry.toml", "-k", "1",
                                               "--json"]).stdout)
    assert hits[0]["url"] == f"{repo.url}/docs/config.md#configuring" and hits[0]["heading_path"] == ["Configuring"]
    show = CliRunner().invoke(cli, ["--db", db, "show", hits[0]["url"], "--json"])
    assert show.exit_code == 0 and "widgetry.toml" in json.loads(show.stdout)["chunks"][0]["content"]


def test_ref_and_path(repo: Repo, tmp_path: Path) -> None:
    repo.write("docs/install.md", page("Installing", "Version two installs with pipx."))
    repo.commit("second")
    db = str(tmp_path / "shelf.db")
    result = CliRunner().invoke(cli, ["--db", db, "add", repo.url, "--ref", "v1.0", "--path", "docs/",
                                      "--source", "w", "--json"])
    assert result.exit_code == 0, result.output
    pages = json.loads(CliRunner().invoke(cli, ["--db", db, "pages", "w", "--json"]).stdout)["pages"]
    assert len(pages) == 5  # docs/ (4) and the README at the top
    assert all(p["url"].endswith("?ref=v1.0") for p in pages)
    show = CliRunner().invoke(cli, ["--db", db, "show", f"{repo.url}/docs/install.md?ref=v1.0", "--json"])
    assert "pip" in json.loads(show.stdout)["chunks"][0]["content"]  # the tagged commit, not the newer one
    again = CliRunner().invoke(cli, ["--db", db, "add", repo.url, "--source", "w", "--json"])
    summary = json.loads(again.stdout)  # a refresh remembers --ref and --path
    assert (summary["pages_unchanged"], summary["pages_ok"], summary["pages_removed"]) == (5, 0, 0)


def test_refresh_embeds_only_the_edited_and_added_files(repo: Repo, shelf_location: str,
                                                        embedder: CountingEmbedder) -> None:
    store = open_shelf(shelf_location)
    ingestor = Ingestor(store, lambda: embedder)
    first = ingestor.add(repo.url, source="w")
    assert first.pages_ok == 5
    repo.write("docs/config.md", page("Configuring", "The frobnicator now reads widgetry.yaml instead."))
    repo.write("docs/new.md", page("New things", "Widgetry two adds the zirconium gear."))
    (repo.work / "docs" / "old.md").unlink()
    new_commit = repo.commit("edit one, add one, delete one")
    embedder.documents.clear()
    second = ingestor.add(repo.url, source="w")
    assert (second.pages_ok, second.pages_unchanged, second.pages_removed) == (2, 3, 1)
    embedded = "\n".join(embedder.documents)
    assert "widgetry.yaml" in embedded and "zirconium" in embedded
    assert "Install widgetry with pip" not in embedded and "Widgetry builds sprockets" not in embedded
    assert store.get_source("w").options["git"]["commit"] == new_commit
    assert store.get_page(f"{repo.url}/docs/old.md") is None
    embedder.documents.clear()
    third = ingestor.add(repo.url, source="w")
    assert (third.pages_ok, third.pages_unchanged, embedder.documents) == (0, 5, [])


def test_ref_and_path_are_only_for_repositories(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\ntext\n")
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), "add", str(tmp_path / "docs"), "--path", "x"])
    assert result.exit_code == 2 and "--path is for Git repositories" in result.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["file:///nonexistent/repo.git"], "does not appear to be a git repository"),
        (["git+file:///nonexistent/other"], "does not appear to be a git repository"),
        (["REPO", "--ref", "no-such-branch"], "couldn't find remote ref no-such-branch"),
    ],
)
def test_a_repository_that_cannot_be_cloned_exits_2_and_leaves_no_cache(
    repo: Repo, tmp_path: Path, docshelf_home: Path, args: list[str], reason: str
) -> None:
    args = [repo.url if a == "REPO" else a for a in args]
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), "add", *args, "--json"])
    assert result.exit_code == 2
    assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1
    cache = docshelf_home / "git"
    assert not cache.exists() or list(cache.iterdir()) == []
