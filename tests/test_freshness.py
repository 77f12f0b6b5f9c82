"""Freshness: page dates on every hit, `docshelf refresh`, the change log, and link-following refreshes by 304."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from docshelf.cli import cli
from docshelf.embed import get_embedder
from docshelf.ingest import Ingestor, markdown_diff_lines
from docshelf.models import Source
from docshelf.refresh import parse_duration, stale_sources
from docshelf.store import open_store
from docshelf.store.base import Store
from servers import Reply, Server
from store import shelves

shelf_location = shelves.shelf_location

PARAGRAPH = ("The {name} page explains how the fleet scheduler assigns {topic} to build servers, "
             "how retries back off, and which settings tune the {topic} budget for each queue. ")


def page(title: str, topic: str, links: list[str], extra: str = "") -> Reply:
    body = "".join(f'<p><a href="{link}">{link}</a></p>' for link in links)
    text = "<p>" + PARAGRAPH.format(name=title, topic=topic) * 3 + "</p>"
    return Reply.html(f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1>"
                      f"{text}{extra}{body}</main></body></html>")


def tagged(reply: Reply, etag: str) -> Reply:
    reply.headers["ETag"] = etag
    return reply


def site_that_changes(server: Server, *, detected: bool = False) -> None:
    """A site whose second crawl differs: deep.html edited (reachable only through a.html, which answers 304),
    b.html gone, c.html new. `detected`: the first add also reads the front page for its version."""
    first = page("Home", "queues", ["a.html", "b.html"])
    server.route("/", *([first] * (2 if detected else 1)), page("Home", "queues", ["a.html", "c.html"]))
    server.route("/a.html", tagged(page("Alpha", "leases", ["deep.html"]), '"a1"'), Reply(status=304))
    server.route("/b.html", page("Beta", "quotas", []), Reply(status=404))
    server.route("/c.html", page("Gamma", "tokens", []))
    server.route("/deep.html", tagged(page("Deep", "shards", []), '"d1"'),
                 tagged(page("Deep", "shards", [], extra="<p>Shards now rebalance every night.</p>"
                                                         "<p>A new rebalance setting caps the moves.</p>"), '"d2"'))


def test_a_refresh_logs_added_changed_and_removed_pages_and_follows_the_links_of_a_304_page(
        shelf_location: str) -> None:
    store = open_store(shelf_location)
    ingestor = Ingestor(store, lambda: get_embedder(None))
    with Server() as server:
        site_that_changes(server)
        first = ingestor.add(server.url("/"), source="fleet", version="")
        assert first.pages_ok == 4 and store.list_changes("fleet") == []  # a first crawl logs nothing
        before = store.page_freshness([server.url("/a.html")])[server.url("/a.html")]

        second = ingestor.add(server.url("/"), source="fleet")
        conditional = [r for r in server.requests if r.path == "/a.html"][-1]
        assert conditional.headers.get("If-None-Match") == '"a1"'  # link-following, yet conditional

    assert second.pages_unchanged == 1 and second.pages_removed == 1
    log = {(c.url.removeprefix(server.base), c.change): c for c in store.list_changes("fleet")}
    assert set(log) == {("/", "changed"), ("/deep.html", "changed"), ("/c.html", "added"), ("/b.html", "removed")}
    assert log[("/deep.html", "changed")].diff_lines == 2
    # deep.html is linked only from a.html, which answered 304: its stored links kept the crawl complete.
    assert store.get_page(server.url("/deep.html")).status == "ok"
    after = store.page_freshness([server.url("/a.html")])[server.url("/a.html")]
    assert after.changed_at == before.changed_at and after.fetched_at > before.fetched_at
    deep = store.page_freshness([server.url("/deep.html")])[server.url("/deep.html")]
    assert deep.changed_at == deep.fetched_at > before.changed_at
    future = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert store.list_changes("fleet", since=future) == []
    store.close()


def test_markdown_diff_lines_counts_added_and_removed_lines() -> None:
    assert markdown_diff_lines("a\nb\nc", "a\nB\nc\nd") == 3
    assert markdown_diff_lines("a\n\nb", "a\n\nb\n\nc") == 1  # a new paragraph is one line
    assert markdown_diff_lines("same", "same") == 0


def test_cli_refresh_older_than_and_changes(tmp_path: Path) -> None:
    db = str(tmp_path / "shelf.db")
    runner = CliRunner()
    with Server() as server:
        site_that_changes(server, detected=True)
        assert runner.invoke(cli, ["--db", db, "add", server.url("/"), "--source", "fleet", "--json"]).exit_code == 0
        fresh = runner.invoke(cli, ["--db", db, "refresh", "--older-than", "7d"])
        assert fresh.exit_code == 0 and "nothing to refresh" in fresh.output
        done = runner.invoke(cli, ["--db", db, "refresh", "fleet", "--json"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output.splitlines()[-1])["pages_removed"] == 1
    changes = json.loads(runner.invoke(cli, ["--db", db, "changes", "fleet", "--json"]).output)
    assert sorted(c["change"] for c in changes) == ["added", "changed", "changed", "removed"]
    text = runner.invoke(cli, ["--db", db, "changes", "fleet"], env={"COLUMNS": "200"}).output
    assert "removed" in text and "/b.html" in text
    bad = runner.invoke(cli, ["--db", db, "changes", "fleet", "--since", "last tuesday"])
    assert bad.exit_code == 2 and "ISO date" in bad.output
    assert runner.invoke(cli, ["--db", db, "refresh", "--older-than", "soon"]).exit_code == 2
    assert runner.invoke(cli, ["--db", db, "changes", "nope"]).exit_code == 2


def test_search_hits_show_their_dates_in_text_and_json(tmp_path: Path) -> None:
    db = str(tmp_path / "shelf.db")
    runner = CliRunner()
    with Server() as server:
        site_that_changes(server)
        runner.invoke(cli, ["--db", db, "add", server.url("/"), "--source", "fleet"])
    today = datetime.now(UTC).date().isoformat()
    text = runner.invoke(cli, ["--db", db, "search", "shards budget", "-k", "2"], env={"COLUMNS": "200"}).output
    assert f"fleet · fetched {today}, changed {today}" in text
    hits = json.loads(runner.invoke(cli, ["--db", db, "search", "shards budget", "--json"]).output)
    assert all(h["source"] == "fleet" and h["version"] == "" and h["fetched_at"].startswith(today)
               and h["changed_at"].startswith(today) for h in hits)


def test_parse_duration() -> None:
    assert parse_duration("24h") == timedelta(hours=24) and parse_duration("2w") == timedelta(days=14)
    for bad in ("", "7", "0d", "d7", "1y"):
        with pytest.raises(Exception, match="not a duration"):
            parse_duration(bad)


def test_stale_sources_by_age_and_name(tmp_path: Path) -> None:
    store: Store = open_store(str(tmp_path / "shelf.db"))
    now = datetime.now(UTC)
    for name, days in (("a@1.0", 10), ("a@2.0", 1), ("b", 30)):
        store.upsert_source(Source(name=name, root=f"http://{name}.test/",
                                   last_crawl_at=(now - timedelta(days=days)).isoformat()))
    assert [s.name for s in stale_sources(store, older_than=timedelta(days=7))] == ["b", "a@1.0"]
    assert [s.name for s in stale_sources(store, ["a"])] == ["a@1.0", "a@2.0"]
    assert [s.name for s in stale_sources(store, ["a@2.0"])] == ["a@2.0"]
    store.close()
