"""Two and four worker processes index the fixture sites together into the shelf one process would build."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from docshelf.embed import get_embedder
from docshelf.ingest import IndexSettings, Ingestor
from docshelf.store.postgres import PostgresStore
from servers import Server
from workers.conftest import Workers, no_duplicates, queue_add, sql, wait_for

SITES = Path(__file__).parent.parent / "fixtures" / "sites"
NAMES = ["sphinx", "mkdocs", "material", "docusaurus"]
PORT = re.compile(r"http://127\.0\.0\.1:\d+")


def shelf_rows(dsn: str) -> dict[tuple[str, str, int], tuple[str, str, np.ndarray]]:
    """Return each chunk's title, text and vector by (source, path, number), the servers' random ports left out."""
    rows = sql(dsn, "SELECT source, url, chunk_number, title, content, embedding::text FROM site_pages")
    return {(source, url.split("/", 3)[3], number): (PORT.sub("BASE", title), PORT.sub("BASE", content),
                                                     np.array(json_vector(vector)))
            for source, url, number, title, content, vector in rows}


def json_vector(text: str | None) -> list[float]:
    assert text is not None, "a chunk without a vector"
    return [float(x) for x in text.strip("[]").split(",")]


@pytest.fixture(scope="module")
def single_process(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shelf `Ingestor` builds in one process from the same sites (each chunk its own vector, as workers do)."""
    from store.shelves import drop_database, new_database

    dsn = new_database()
    store = PostgresStore(dsn)
    embedder = get_embedder()
    try:
        for name in NAMES:
            with Server(SITES / name) as server:
                Ingestor(store, lambda: embedder, settings=IndexSettings(dedup=False)).add(
                    server.url("/"), source=name)
        return shelf_rows(dsn)
    finally:
        store.close()
        drop_database(dsn)


@pytest.mark.parametrize("count", [2, 4])
def test_workers_build_the_shelf_one_process_builds(count: int, dsn: str, workers: Workers,
                                                     single_process: dict) -> None:
    servers = [Server(SITES / name).start() for name in NAMES]
    try:
        jobs = [queue_add(dsn, server.url("/"), name) for server, name in zip(servers, NAMES)]
        workers.start(count, "--concurrency", "2")
        rows = wait_for(dsn, jobs, workers)
    finally:
        for server in servers:
            server.stop()
    assert [row["status"] for row in rows] == ["done"] * len(NAMES), rows
    no_duplicates(dsn)
    team = shelf_rows(dsn)
    assert team.keys() == single_process.keys()
    for key, (title, content, vector) in team.items():
        assert (title, content) == single_process[key][:2], key
        # The same text, embedded in another batch (other padding), is the same vector to int8 rounding.
        assert float(vector @ single_process[key][2]) > 0.999, key
    # The work was shared: more than one worker recorded page outcomes.
    assert len(sql(dsn, "SELECT DISTINCT worker FROM docshelf_frontier WHERE outcome IS NOT NULL")) >= 2
