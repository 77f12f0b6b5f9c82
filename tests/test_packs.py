"""Packs: one source as one file, added elsewhere without crawling or embedding (real shelves, real model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import apsw
import pytest
from click.testing import CliRunner

from counting import CountingEmbedder
from docshelf.cli import cli
from docshelf.embed import get_embedder
from docshelf.errors import ModelMismatchError
from docshelf.models import Source
from docshelf.packs import PackError, add_pack, open_pack, write_pack
from docshelf.search import HybridSearcher
from docshelf.store.base import Store
from servers import Server
from store import shelves
from store.shelves import make_page, open_shelf, unit
from test_shelf_tools import build_widgets_shelf

pg_dsn = shelves.pg_dsn  # fixture shared with tests/store

DEV_QUESTIONS = [
    "WIDGETS_CACHE_TTL", "how long are results cached", "register a widget", "Registry.lookup",
    "configuration settings reference", "tessellate", "clamp_load", "install widgets",
]


@pytest.fixture(scope="module")
def widgets_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("widgets") / "shelf.db"
    build_widgets_shelf(path)
    return path


@pytest.fixture(scope="module")
def widgets_pack(widgets_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = open_shelf(str(widgets_db))
    try:
        return write_pack(store, "widgets", tmp_path_factory.mktemp("packs") / "widgets.docshelf").path
    finally:
        store.close()


def results(store: Store, mode: str = "hybrid") -> list[list[tuple[str, int, float]]]:
    searcher = HybridSearcher(store, lambda: get_embedder(None))
    return [[(h.url, h.chunk_number, round(h.score, 5)) for h in searcher.search(q, k=8, mode=mode)]
            for q in DEV_QUESTIONS]


def counted() -> CountingEmbedder:
    return CountingEmbedder(get_embedder(None))


def test_the_same_source_packs_to_the_same_bytes(widgets_db: Path, widgets_pack: Path, tmp_path: Path) -> None:
    store = open_shelf(str(widgets_db))
    again = write_pack(store, "widgets", tmp_path / "again.docshelf")
    store.close()
    assert again.path.read_bytes() == widgets_pack.read_bytes()
    pack = open_pack(widgets_pack)
    manifest = pack.manifest
    pack.close()
    assert manifest["source"] == "widgets" and manifest["embed_model"] == "local:all-MiniLM-L6-v2"
    assert manifest["embed_dim"] == 384 and len(manifest["embed_model_sha256"]) == 64
    assert manifest["pages"] == 4 and manifest["chunks"] == manifest["vectors"] > 10
    assert manifest["crawled_at"] and manifest["docshelf_version"] and manifest["root"].startswith("http://127.0.0.1")


def test_sqlite_to_postgres_and_back_searches_the_same_with_no_embedding(
        widgets_db: Path, widgets_pack: Path, pg_dsn: str, tmp_path: Path) -> None:
    origin = open_shelf(str(widgets_db))
    expected, expected_vector = results(origin), results(origin, "vector")
    origin.close()

    pg, embedder = open_shelf(pg_dsn), counted()
    summary = add_pack(pg, widgets_pack, embedder_factory=lambda: embedder)
    assert summary.vectors_used == summary.chunks > 10 and summary.embedded == 0 and not summary.replaced
    assert results(pg, "vector") == expected_vector  # the same vectors, searched by pgvector
    via_pg = write_pack(pg, "widgets", tmp_path / "via-pg.docshelf")
    pg.close()

    back = open_shelf(str(tmp_path / "back.db"))
    add_pack(back, via_pg.path, embedder_factory=lambda: embedder)
    assert results(back) == expected and results(back, "vector") == expected_vector
    assert write_pack(back, "widgets", tmp_path / "back.docshelf").path.read_bytes() == widgets_pack.read_bytes()
    back.close()
    assert embedder.documents == [] and embedder.calls == 0  # nothing embedded anywhere on the way


def test_a_pack_of_another_model_is_refused_then_reembedded(tmp_path: Path) -> None:
    other = open_shelf(str(tmp_path / "other.db"))
    other.bind_embedder("test:model", 8)
    other.upsert_source(Source("tiny", "http://tiny.test/", last_crawl_at="2025-01-02T00:00:00+00:00"))
    page, chunks, hashes = make_page("http://tiny.test/a", ["alpha text", "beta text", "gamma text"], source="tiny")
    other.replace_page(page, chunks, hashes)
    other.store_embeddings({h: unit(i) for i, h in enumerate(hashes)})
    pack = write_pack(other, "tiny", tmp_path / "tiny.docshelf").path
    other.close()

    shelf = open_shelf(str(tmp_path / "minilm.db"))
    shelf.bind_embedder("local:all-MiniLM-L6-v2", 384)
    embedder = counted()
    with pytest.raises(ModelMismatchError, match="test:model.*--reembed"):
        add_pack(shelf, pack, embedder_factory=lambda: embedder)
    assert shelf.list_sources() == [] and embedder.calls == 0
    summary = add_pack(shelf, pack, reembed=True, embedder_factory=lambda: embedder)
    assert summary.embedded == 3 and summary.vectors_used == 0
    assert len(embedder.documents) == 3 and all(any(t in d for d in embedder.documents) for t in ("alpha", "beta"))
    [stats] = shelf.list_sources()
    assert stats.chunks == stats.embedded == 3
    hits = HybridSearcher(shelf, lambda: embedder).search("beta", k=1, mode="vector")
    assert hits[0].content == "beta text"
    shelf.close()


def altered(pack: Path, target: Path) -> Path:
    shutil.copy(pack, target)
    conn = apsw.Connection(str(target))
    conn.execute("UPDATE chunks SET content = content || ' (edited)' WHERE chunk_number = 0")
    conn.close()
    return target


@pytest.mark.parametrize("damage", ["truncated", "altered", "flipped", "not a pack"])
def test_a_damaged_pack_is_refused_before_anything_is_written(widgets_pack: Path, tmp_path: Path, damage: str) -> None:
    data = widgets_pack.read_bytes()
    target = tmp_path / "bad.docshelf"
    if damage == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "altered":
        altered(widgets_pack, target)
    elif damage == "flipped":
        middle = len(data) * 3 // 4
        target.write_bytes(data[:middle] + bytes([data[middle] ^ 0x20]) + data[middle + 1:])
    else:
        target.write_text("# not a pack\n")
    shelf = open_shelf(str(tmp_path / "shelf.db"))
    with pytest.raises(PackError, match="damaged|not a docshelf pack"):
        add_pack(shelf, target, embedder_factory=counted)
    assert shelf.list_sources() == [] and shelf.embedder_identity() is None
    shelf.close()


shelf_location = shelves.shelf_location  # a new SQLite file, or a fresh PostgreSQL database


def test_a_newer_pack_replaces_the_source_in_one_go(widgets_db: Path, widgets_pack: Path, tmp_path: Path,
                                                     shelf_location: str) -> None:
    smaller_db = tmp_path / "smaller.db"
    shutil.copy(widgets_db, smaller_db)
    smaller = open_shelf(str(smaller_db))
    dropped = smaller.list_pages("widgets", limit=1)[0].url
    smaller.remove_pages("widgets", [dropped])
    newer = write_pack(smaller, "widgets", tmp_path / "newer.docshelf").path
    smaller.close()

    shelf = open_shelf(shelf_location)
    first = add_pack(shelf, widgets_pack, embedder_factory=counted)
    second = add_pack(shelf, newer, embedder_factory=counted)
    assert not first.replaced and second.replaced and second.pages == first.pages - 1
    assert shelf.get_page(dropped) is None and shelf.list_sources()[0].chunks == second.chunks
    shelf.close()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_a_registry_folder_served_on_localhost_end_to_end(widgets_db: Path, tmp_path: Path) -> None:
    registry = tmp_path / "shelves"
    code, out, _ = run("--db", str(widgets_db), "pack", "--all", "-o", str(registry), "--json")
    assert code == 0 and [p["name"] for p in json.loads(out)] == ["widgets"]
    index = json.loads((registry / "index.json").read_text())
    assert index["format"] == "docshelf-registry" and index["packs"][0]["file"] == "widgets.docshelf"
    assert index["packs"][0]["size"] == (registry / "widgets.docshelf").stat().st_size

    with Server(tmp_path) as server:
        code, out, _ = run("search-registry", server.url("/shelves/"), "--json")
        [entry] = json.loads(out)
        assert code == 0 and entry["name"] == "widgets" and entry["url"] == server.url("/shelves/widgets.docshelf")
        assert entry["pages"] == 4 and entry["model"] == "local:all-MiniLM-L6-v2"

        shelf = tmp_path / "new.db"
        code, out, err = run("--db", str(shelf), "add", server.url("/shelves/widgets"), "--json")
        summary = json.loads(out)
        assert code == 0, err
        assert summary["source"] == "widgets" and summary["embedded"] == 0 and summary["vectors_used"] > 10
        code, out, _ = run("--db", str(shelf), "search", "WIDGETS_CACHE_TTL", "-k", "1", "--json")
        assert code == 0 and "/configuration.html" in json.loads(out)[0]["url"]

        code, _, err = run("--db", str(shelf), "add", server.url("/shelves/nope"))
        assert code == 2 and "offers no nope; it offers: widgets" in err
        code, out, _ = run("--db", str(tmp_path / "direct.db"), "add", server.url("/shelves/widgets.docshelf"), "--json")
        assert code == 0 and json.loads(out)["chunks"] == summary["chunks"]

        # The index promises other bytes than the folder serves: refused before anything is written.
        (registry / "widgets.docshelf").write_bytes((registry / "widgets.docshelf").read_bytes()[:-10] + b"0" * 10)
        code, _, err = run("--db", str(tmp_path / "third.db"), "add", server.url("/shelves/widgets"))
        assert code == 2 and "sha256 differs" in err
        assert not (tmp_path / "third.db").exists() or open_shelf(str(tmp_path / "third.db")).list_sources() == []


def test_cli_pack_and_add_refuse_clearly(widgets_db: Path, widgets_pack: Path, tmp_path: Path) -> None:
    code, _, err = run("--db", str(widgets_db), "pack", "nope", "-o", str(tmp_path / "x.docshelf"))
    assert code == 2 and "unknown source 'nope'" in err and "widgets" in err
    code, _, err = run("--db", str(widgets_db), "pack", "-o", str(tmp_path / "x.docshelf"))
    assert code == 2 and "either a SOURCE or --all" in err
    code, _, err = run("--db", str(tmp_path / "s.db"), "add", str(widgets_pack), "--include", "*/api/*")
    assert code == 2 and "--include" in err and "do not apply to a pack" in err
    other = tmp_path / "other.db"
    store = open_shelf(str(other))
    store.bind_embedder("test:model", 8)
    store.close()
    code, _, err = run("--db", str(other), "add", str(widgets_pack))
    assert code == 2 and "--reembed" in err and "local:all-MiniLM-L6-v2" in err


def test_a_version_packs_as_that_version_and_adds_back_as_it(tmp_path: Path) -> None:
    shelf = tmp_path / "versions.db"
    store = open_shelf(str(shelf))
    store.bind_embedder("test:model", 8)
    for version, word in (("4.2", "select_for_update"), ("5.1", "generated_field")):
        key = f"lib@{version}"
        store.upsert_source(Source(key, f"http://lib.test/{version}/", last_crawl_at="2025-01-02T00:00:00+00:00",
                                   packages=["lib"]))
        page, chunks, hashes = make_page(f"http://lib.test/{version}/a", [f"{word} text"], source=key)
        store.replace_page(page, chunks, hashes)
        store.store_embeddings({h: unit(i) for i, h in enumerate(hashes)})
    store.close()

    code, out, err = run("--db", str(shelf), "pack", "lib@4.2", "-o", str(tmp_path), "--json")
    assert code == 0, err
    [info] = json.loads(out)
    assert (info["name"], info["version"]) == ("lib", "4.2") and info["path"].endswith("lib@4.2.docshelf")
    code, out, _ = run("--db", str(shelf), "pack", "lib", "-o", str(tmp_path / "newest.docshelf"), "--json")
    assert code == 0 and json.loads(out)[0]["version"] == "5.1"  # a bare name packs the newest version
    pack = open_pack(Path(info["path"]))
    assert pack.manifest["source"] == "lib@4.2" and pack.manifest["packages"] == ["lib"]
    pack.close()

    other = tmp_path / "other.db"
    code, _, err = run("--db", str(other), "add", info["path"])
    assert code == 0, err
    store = open_shelf(str(other))
    [stats] = store.list_sources()
    assert stats.source.name == "lib@4.2" and stats.source.version == "4.2" and stats.source.packages == ["lib"]
    store.close()

    registry = tmp_path / "shelves"
    code, out, _ = run("--db", str(shelf), "pack", "--all", "-o", str(registry), "--json")
    index = json.loads((registry / "index.json").read_text())
    assert [(p["name"], p["version"]) for p in index["packs"]] == [("lib", "4.2"), ("lib", "5.1")]
