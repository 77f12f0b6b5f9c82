"""The in-memory vector matrix of the SQLite shelf: the same answers as sqlite-vec, and in step with every write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from docshelf.models import Source
from docshelf.store.sqlite import SQLiteStore
from store.shelves import DIM, make_page, unit


def open_store(path: Path, *, in_memory: bool = True) -> SQLiteStore:
    store = SQLiteStore(path, vectors_in_memory=in_memory)
    store.bind_embedder("test:model", DIM)
    for name in ("s1", "s2"):
        store.upsert_source(Source(name=name, root=f"http://{name}.test/"))
    return store


def add_page(store: SQLiteStore, url: str, seeds: list[int], source: str = "s1") -> None:
    """Store a page of one chunk per seed, each chunk's vector `unit(seed)` (scaled, as imported records may be)."""
    page, chunks, hashes = make_page(url, [f"text {url} {s}" for s in seeds], source=source)
    store.replace_page(page, chunks, hashes)
    store.store_embeddings({h: unit(s) * 3.0 for h, s in zip(hashes, seeds)})


def found(store: SQLiteStore, seed: int, **options) -> list[tuple[str, int]]:
    chunks = store.chunks_by_id([i for i, _ in store.search_vector(unit(seed), **options)])
    return [(chunks[i].url, chunks[i].chunk_number) for i, _ in store.search_vector(unit(seed), **options)]


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(tmp_path / "shelf.db")
    for n in range(20):
        add_page(s, f"http://s1.test/{n}", [n * 3, n * 3 + 1, n * 3 + 2], source="s1" if n % 2 else "s2")
    yield s
    s.close()


def test_same_ranking_and_scores_as_sqlite_vec(store: SQLiteStore) -> None:
    scan = SQLiteStore(store.location, vectors_in_memory=False)
    try:
        for seed, sources in ((4, ()), (17, ("s1",)), (100, ("s2", "s1")), (5, ("nope",))):
            memory = store.search_vector(unit(seed), sources, limit=7)
            expected = scan.search_vector(unit(seed), sources, limit=7)
            assert [i for i, _ in memory] == [i for i, _ in expected]
            assert np.allclose([s for _, s in memory], [s for _, s in expected], atol=1e-5)
    finally:
        scan.close()


def test_follows_writes_of_this_connection(store: SQLiteStore) -> None:
    assert found(store, 500, limit=1) != [("http://s1.test/new", 0)]
    add_page(store, "http://s1.test/new", [500])
    assert found(store, 500, limit=1) == [("http://s1.test/new", 0)]
    store.remove_source("s2")
    assert all(url != "http://s1.test/0" for url, _ in found(store, 0, limit=60))


def test_follows_writes_of_another_process(store: SQLiteStore) -> None:
    store.search_vector(unit(1))  # loads the matrix
    other = open_store(Path(store.location))
    try:
        add_page(other, "http://s1.test/elsewhere", [900])
    finally:
        other.close()
    assert found(store, 900, limit=1) == [("http://s1.test/elsewhere", 0)]


def test_a_reused_chunk_id_gets_its_new_vector(store: SQLiteStore) -> None:
    add_page(store, "http://s1.test/last", [700])
    [(last_id, _)] = store.search_vector(unit(700), limit=1)
    other = open_store(Path(store.location))
    try:
        other.remove_source("s1")  # frees the highest ids; SQLite hands them out again
        other.upsert_source(Source(name="s1", root="http://s1.test/"))
        add_page(other, "http://s1.test/reborn", [800])
        [(reborn_id, _)] = other.search_vector(unit(800), limit=1)
    finally:
        other.close()
    assert reborn_id <= last_id
    [(best, score)] = store.search_vector(unit(800), limit=1)
    assert best == reborn_id and score == pytest.approx(1.0, abs=1e-5)
    assert store.search_vector(unit(700), limit=1)[0][1] < 0.9
