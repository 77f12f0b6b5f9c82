"""What only the PostgreSQL shelf has: the origin's schema and functions, adoption, SQL fusion, concurrent writers."""

from __future__ import annotations

import json
import sys
import threading

import numpy as np
import psycopg
import pytest

from docshelf.errors import ConfigError, StoreError
from docshelf.models import Chunk, Page, Source
from docshelf.search import HybridSearcher, reciprocal_rank_fusion
from docshelf.store import open_store
from docshelf.store.base import SourcePage
from docshelf.store.fts import query_terms
from docshelf.store.pg_migrations import MIGRATIONS, apply_migrations
from docshelf.store.postgres import PostgresStore
from store.shelves import DIM, make_page, sql, unit

ORIGIN_COLUMNS = [
    ("id", "bigint"), ("url", "character varying"), ("chunk_number", "integer"), ("title", "character varying"),
    ("summary", "character varying"), ("content", "text"), ("metadata", "jsonb"), ("embedding", "vector(8)"),
    ("created_at", "timestamp with time zone"),
]

# The origin's site_pages.sql, as origin-schema.md §1–2 describes it (written from that description).
ORIGIN_SQL = """
create extension if not exists vector;
create table site_pages (
    id bigserial primary key,
    url varchar not null,
    chunk_number integer not null,
    title varchar not null,
    summary varchar not null,
    content text not null,
    metadata jsonb not null default '{}'::jsonb,
    embedding vector(1536),
    created_at timestamp with time zone default timezone('utc'::text, now()) not null,
    unique(url, chunk_number)
);
create index on site_pages using ivfflat (embedding vector_cosine_ops);
create index idx_site_pages_metadata on site_pages using gin (metadata);
create function match_site_pages (query_embedding vector(1536), match_count int default 10,
                                  filter jsonb DEFAULT '{}'::jsonb)
returns table (id bigint, url varchar, chunk_number integer, title varchar, summary varchar, content text,
               metadata jsonb, similarity float)
language plpgsql as $$
#variable_conflict use_column
begin
  return query
  select id, url, chunk_number, title, summary, content, metadata,
         1 - (site_pages.embedding <=> query_embedding) as similarity
  from site_pages
  where metadata @> filter
  order by site_pages.embedding <=> query_embedding
  limit match_count;
end;
$$;
alter table site_pages enable row level security;
create policy "Allow public read access" on site_pages as permissive for select to public using (true);
"""

ORIGIN_ROWS = [
    ("https://ai.pydantic.dev/agents/", 0, "Agents - PydanticAI", "Agents are the primary interface.",
     "Agents are PydanticAI's primary interface for interacting with LLMs."),
    ("https://ai.pydantic.dev/agents/", 1, "Running Agents - PydanticAI", "Three ways to run an agent.",
     "There are three ways to run an agent: run, run_sync and run_stream."),
    ("https://ai.pydantic.dev/tools/", 0, "Function Tools - PydanticAI", "Tools let models call functions.",
     "Function tools provide a mechanism for models to retrieve extra information."),
]


def vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


@pytest.fixture
def pg_store(pg_dsn: str):
    s = PostgresStore(pg_dsn)
    s.bind_embedder("test:model", DIM)
    s.upsert_source(Source(name="s1", root="http://example.test/"))
    s.upsert_source(Source(name="s2", root="http://other.test/"))
    yield s
    s.close()


def test_chunk_table_is_the_origins_column_for_column(pg_store: PostgresStore, pg_dsn: str) -> None:
    columns = sql(pg_dsn, """SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
                             WHERE attrelid = 'site_pages'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum""")
    assert columns[:9] == ORIGIN_COLUMNS
    assert {"source", "heading_path", "anchor", "embed_hash", "fts"} <= {name for name, _ in columns[9:]}
    indexes = dict(sql(pg_dsn, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'site_pages'"))
    assert "site_pages_url_chunk_number_key" in indexes
    assert "hnsw (embedding vector_cosine_ops)" in indexes["docshelf_site_pages_embedding_hnsw"]
    assert "gin (fts)" in indexes["docshelf_site_pages_fts"]
    assert [r[0] for r in sql(pg_dsn, "SELECT name FROM docshelf_migrations ORDER BY name")] == [n for n, _ in MIGRATIONS]
    signature = sql(pg_dsn, "SELECT pg_get_function_arguments('match_site_pages'::regproc), "
                            "pg_get_function_result('match_site_pages'::regproc)")[0]
    assert signature == (
        "query_embedding vector, match_count integer DEFAULT 10, filter jsonb DEFAULT '{}'::jsonb",
        ("TABLE(id bigint, url character varying, chunk_number integer, title character varying, summary character "
         "varying, content text, metadata jsonb, similarity double precision)"),
    )


def test_vector_search_widens_the_hnsw_search_beyond_the_candidates(pg_store: PostgresStore, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:  # one transaction: the function's settings are transaction-local
        for count, ef_search in ((10, "400"), (100, "400"), (200, "800"), (5000, "1000")):
            conn.execute("SELECT * FROM docshelf_vector(%s::vector, %s)", (vector_literal(unit(1)), count))
            assert conn.execute("SELECT current_setting('hnsw.ef_search')").fetchone()[0] == ef_search


def test_reopening_applies_no_migration_again(pg_store: PostgresStore, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert apply_migrations(conn) == []


def test_m009_demotes_per_version_pages(pg_store: PostgresStore, pg_dsn: str) -> None:
    titles = {"http://x/r/3_40_1.html": "Widgets Release 3.40.1 On 2022-12-28",
              "http://x/r/3_40_0.html": "Widgets Release 3.40.0 On 2022-11-16",
              "http://x/r/3_39_4.html": "Widgets Release 3.39.4 On 2022-09-29",
              "http://x/tutorial.html": "Widgets 3.40 Tutorial"}
    for url, title in titles.items():
        pg_store.replace_page(*make_page(url, [f"{title} notes"], title=title))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM docshelf_migrations WHERE name = 'm009_version_series'")
        assert apply_migrations(conn) == ["m009_version_series"]
    assert pg_store.page_priors(list(titles)) == {
        "http://x/r/3_40_1.html": 0.5, "http://x/r/3_40_0.html": 0.5, "http://x/r/3_39_4.html": 0.5,
        "http://x/tutorial.html": 1.0}


def test_m011_recomputes_priors_and_keeps_per_version_pages_demoted(pg_store: PostgresStore, pg_dsn: str) -> None:
    from store.test_sqlite_store import MODULE_INDEX

    titles = {f"http://x/r/3_40_{i}.html": f"Widgets Release 3.40.{i}" for i in range(3)}
    for url, title in titles.items():
        pg_store.replace_page(*make_page(url, [f"{title} notes"], title=title))
    page, chunks, hashes = make_page("http://x/py-modindex.html", ["index"], title="Module index")
    page.markdown = MODULE_INDEX
    pg_store.replace_page(page, chunks, hashes)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM docshelf_migrations WHERE name = 'm011_navigation_by_entries'")
        assert apply_migrations(conn) == ["m011_navigation_by_entries"]
    assert set(pg_store.page_priors([*titles, page.url]).values()) == {0.5}


def test_match_site_pages_answers_as_the_origins_did(pg_store: PostgresStore, pg_dsn: str) -> None:
    for i, url in enumerate(["http://example.test/a", "http://example.test/b"]):
        page, chunks, hashes = make_page(url, [f"text {i}"])
        pg_store.replace_page(page, chunks, hashes)
        pg_store.store_embeddings({hashes[0]: unit(i)})
    rows = sql(pg_dsn, "SELECT * FROM match_site_pages(%s::vector, 5, '{\"source\": \"s1\"}')", (vector_literal(unit(1)),))
    assert [r[1] for r in rows] == ["http://example.test/b", "http://example.test/a"]
    assert len(rows[0]) == 8 and rows[0][7] == pytest.approx(1.0, abs=1e-6)
    assert sql(pg_dsn, "SELECT count(*) FROM match_site_pages(%s::vector, 5, '{\"source\": \"nope\"}')",
               (vector_literal(unit(1)),))[0][0] == 0


VOCABULARY = ["agent", "model", "tool", "stream", "response", "request", "retry", "cache", "token", "prompt", "schema", "validate", "settings", "dependency", "result", "message", "history", "usage", "limit", "graph", "node", "state"]


def test_sql_hybrid_search_ranks_as_the_python_fusion(pg_store: PostgresStore, pg_dsn: str) -> None:
    rng = np.random.default_rng(7)
    for p in range(12):
        texts = [" ".join(rng.choice(VOCABULARY, size=12)) for _ in range(4)]
        page, chunks, hashes = make_page(f"http://example.test/p{p}", texts)
        pg_store.replace_page(page, chunks, hashes)
        pg_store.store_embeddings({h: unit(1000 + p * 10 + i) for i, h in enumerate(hashes)})
    for seed, question in enumerate(["How do I stream a response with retry?", "agent tool usage limit", "graph"]):
        query_vector = unit(seed)
        bm25 = pg_store.search_bm25(question, limit=100)
        vector = pg_store.search_vector(query_vector, limit=100)
        fused = sorted(reciprocal_rank_fusion([bm25, vector], 60).items(), key=lambda item: (-item[1], item[0]))[:10]
        rows = sql(pg_dsn, "SELECT id, score FROM docshelf_hybrid_search(%s, %s::vector, 10)",
                   (question, vector_literal(query_vector)))
        assert [r[0] for r in rows] == [i for i, _ in fused]
        assert [r[1] for r in rows] == pytest.approx([s for _, s in fused], rel=1e-12)
    # without a query vector it is BM25 alone
    bm25_only = sql(pg_dsn, "SELECT id FROM docshelf_hybrid_search('stream retry', NULL, 5)")
    assert [r[0] for r in bm25_only] == [i for i, _ in pg_store.search_bm25("stream retry", limit=5)]


@pytest.mark.parametrize("question", ["How do I use os.makedirs with exist_ok?", "__init__ of Foo and foo",
                                      "a b c 1 2", "Session.get() / x:y:z . _", "", "über naïve café"])
def test_sql_query_terms_match_python(pg_store: PostgresStore, pg_dsn: str, question: str) -> None:
    assert sql(pg_dsn, "SELECT docshelf_query_terms(%s)", (question,))[0][0] == query_terms(question)


def test_concurrent_writers_on_different_sources_lose_nothing(pg_store: PostgresStore, pg_dsn: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(source: str) -> None:
        store = PostgresStore(pg_dsn)
        try:
            start.wait()
            for p in range(30):
                # boilerplate shared by both sources: the same embed hash, written from both sides
                page, chunks, hashes = make_page(f"http://{source}.test/p{p}", [f"{source} page {p} part {i}" for i in range(3)]
                                                 + ["shared footer"], source=source)
                store.replace_page(page, chunks, hashes)
                store.store_embeddings({h: unit(hash(h) % 10_000) for h, _ in store.pending_embeddings(source)})
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("s1", "s2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    stats = {s.source.name: s for s in pg_store.list_sources()}
    for name in ("s1", "s2"):
        assert (stats[name].pages, stats[name].chunks, stats[name].embedded) == (30, 120, 120)


def test_an_open_page_write_does_not_block_another_source(pg_store: PostgresStore, pg_dsn: str) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["held"])
    pg_store.replace_page(page, chunks, hashes)
    with psycopg.connect(pg_dsn) as holder:  # another writer, mid-transaction on source s1
        holder.execute("DELETE FROM site_pages WHERE url = 'http://example.test/a'")
        done = threading.Event()

        def other_source() -> None:
            other, other_chunks, other_hashes = make_page("http://other.test/b", ["free"], source="s2")
            pg_store.replace_page(other, other_chunks, other_hashes)
            pg_store.store_embeddings({other_hashes[0]: unit(5)})
            done.set()

        thread = threading.Thread(target=other_source)
        thread.start()
        assert done.wait(timeout=15), "a write to source s2 waited for a transaction on source s1"
        holder.rollback()
    thread.join()


def test_same_page_written_concurrently_is_serialised(pg_store: PostgresStore, pg_dsn: str) -> None:
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        store = PostgresStore(pg_dsn)
        try:
            for n in range(15):
                page, chunks, hashes = make_page("http://example.test/same", [f"{tag} {n} {i}" for i in range(5)])
                store.replace_page(page, chunks, hashes)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    contents = [c.content for c in pg_store.get_chunks("http://example.test/same")]
    assert len(contents) == 5 and len({c.split()[0] for c in contents}) == 1


def test_server_errors_name_what_failed(pg_store: PostgresStore) -> None:
    page, chunks, hashes = make_page("http://example.test/a", ["text"])
    pg_store.replace_page(page, chunks, hashes)
    with pytest.raises(StoreError, match=r"storing 1 vectors failed: expected 8 dimensions, not 3") as info:
        pg_store.store_embeddings({hashes[0]: np.ones(3, dtype=np.float32)})
    assert isinstance(info.value.__cause__, psycopg.Error)
    orphan = Page(url="http://nowhere.test/", source="no-such-source", title="", markdown="", content_hash="")
    with pytest.raises(StoreError, match=r"writing page http://nowhere.test/ failed: .*foreign key"):
        pg_store.replace_page(orphan, [], [])


def test_unreachable_server_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(StoreError, match=r"cannot open PostgreSQL shelf postgresql://u@.*: .*") as info:
        PostgresStore(f"postgresql://u:secret@/db?host={tmp_path}")
    assert "secret" not in str(info.value)


def test_open_store_routes_urls_and_names_the_extra(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(pg_dsn)
    assert isinstance(store, PostgresStore)
    store.close()
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "docshelf.store.postgres")
    with pytest.raises(ConfigError, match=r"pip install 'docshelf\[postgres\]'"):
        open_store(pg_dsn)


def test_an_unrelated_site_pages_table_is_left_alone(pg_dsn: str) -> None:
    sql(pg_dsn, "CREATE TABLE site_pages (id serial primary key, slug text, body text)")
    with pytest.raises(StoreError, match="not an origin-style chunk table"):
        PostgresStore(pg_dsn)
    assert sql(pg_dsn, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'site_pages'")[0][0] == 3


def _origin_database(dsn: str) -> list[np.ndarray]:
    """Build the origin's schema with its rows, as its crawler wrote them; return the rows' vectors."""
    sql(dsn, ORIGIN_SQL)
    vectors = [unit(100 + i, 1536) for i in range(len(ORIGIN_ROWS))]
    for (url, number, title, summary, content), vector in zip(ORIGIN_ROWS, vectors):
        metadata = {"source": "pydantic_ai_docs", "chunk_size": len(content),
                    "crawled_at": "2025-01-15T13:58:45.123456+00:00", "url_path": url.split("ai.pydantic.dev")[1]}
        sql(dsn, """INSERT INTO site_pages (url, chunk_number, title, summary, content, metadata, embedding)
                    VALUES (%s, %s, %s, %s, %s, %s, %s::vector)""",
            (url, number, title, summary, content, json.dumps(metadata), vector_literal(vector)))
    return vectors


ORIGIN_STATE = "SELECT id, url, chunk_number, title, summary, content, metadata, embedding::text, created_at FROM site_pages ORDER BY id"


def test_an_origin_table_with_rows_is_adopted_and_searchable(pg_dsn: str) -> None:
    vectors = _origin_database(pg_dsn)
    before = sql(pg_dsn, ORIGIN_STATE)
    function_before = sql(pg_dsn, "SELECT prosrc FROM pg_proc WHERE proname = 'match_site_pages'")
    store = PostgresStore(pg_dsn)
    try:
        assert store.embedder_identity() == ("openai:text-embedding-3-small", 1536)
        [stats] = store.list_sources()
        assert (stats.source.name, stats.source.root, stats.pages, stats.chunks, stats.embedded) == (
            "pydantic_ai_docs", "https://ai.pydantic.dev/", 2, 3, 3)
        assert [c.content for c in store.get_chunks("https://ai.pydantic.dev/agents/")] == [r[4] for r in ORIGIN_ROWS[:2]]
        assert store.get_page("https://ai.pydantic.dev/agents/").title == "Agents"
        assert store.get_page_markdown("https://ai.pydantic.dev/agents/") == ORIGIN_ROWS[0][4] + "\n\n" + ORIGIN_ROWS[1][4]
        # BM25 at once; vectors with a query embedding of the origin's model
        searcher = HybridSearcher(store, lambda: pytest.fail("bm25 needs no embedder"))
        hits = searcher.search("run_stream and run_sync", mode="bm25", k=3)
        assert (hits[0].page_url, hits[0].chunk_number) == ("https://ai.pydantic.dev/agents/", 1)
        [(best, similarity)] = store.search_vector(vectors[2], limit=1)
        assert store.chunks_by_id([best])[best].url == "https://ai.pydantic.dev/tools/"
        assert similarity == pytest.approx(1.0, abs=1e-5)
        # the origin's data, function, index and policy are untouched
        assert sql(pg_dsn, ORIGIN_STATE) == before
        assert sql(pg_dsn, "SELECT prosrc FROM pg_proc WHERE proname = 'match_site_pages'") == function_before
        assert sql(pg_dsn, "SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%ivfflat%'")[0][0] == 1
        assert sql(pg_dsn, "SELECT polname FROM pg_policy") == [("Allow public read access",)]
        rows = sql(pg_dsn, "SELECT url, chunk_number, similarity FROM match_site_pages(%s::vector, 2, %s)",
                   (vector_literal(vectors[0]), '{"source": "pydantic_ai_docs"}'))
        assert rows[0][:2] == ("https://ai.pydantic.dev/agents/", 0) and rows[0][2] == pytest.approx(1.0, abs=1e-5)
    finally:
        store.close()


def test_rows_the_origin_crawler_adds_later_are_adopted_on_next_open(pg_dsn: str) -> None:
    _origin_database(pg_dsn)
    PostgresStore(pg_dsn).close()
    # the origin's crawler keeps INSERTing only its own columns: nothing docshelf added may refuse that
    sql(pg_dsn, """INSERT INTO site_pages (url, chunk_number, title, summary, content, metadata, embedding)
                   VALUES ('https://ai.pydantic.dev/models/', 0, 'Models', 'Models.', 'OpenAI and Anthropic models',
                           '{"source": "pydantic_ai_docs"}', %s::vector)""", (vector_literal(unit(9, 1536)),))
    store = PostgresStore(pg_dsn)
    try:
        assert store.get_page("https://ai.pydantic.dev/models/") is not None
        assert store.list_sources()[0].chunks == 4
        hits = store.search_bm25("anthropic", sources=["pydantic_ai_docs"])
        assert [store.chunks_by_id([i])[i].url for i, _ in hits] == ["https://ai.pydantic.dev/models/"]
        # and docshelf writes 1536-d pages into the adopted table like any other
        page = Page(url="https://ai.pydantic.dev/new/", source="pydantic_ai_docs", title="New", markdown="fresh",
                    content_hash="x")
        chunk = Chunk(url=page.url, source="pydantic_ai_docs", chunk_number=0, title="New", summary="", content="fresh")
        store.replace_page(page, [chunk], ["h:fresh"])
        assert store.store_embeddings({"h:fresh": unit(3, 1536)}) == 1
    finally:
        store.close()


def test_m010_rebuilds_the_full_text_column_with_inbound_text(pg_store: PostgresStore, pg_dsn: str) -> None:
    pg_store.replace_page(*make_page("http://example.test/http", ["Send If-None-Match with the stored ETag."]))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        # a shelf from before m010: no inbound column, m002's fts
        conn.execute("DELETE FROM docshelf_migrations WHERE name = 'm012_inbound_text'")
        conn.execute("ALTER TABLE site_pages DROP COLUMN index_inbound CASCADE")
        assert apply_migrations(conn) == ["m012_inbound_text"]
    assert pg_store.search_bm25("stored ETag")
    [(chunk_id, _)] = pg_store.source_chunks("s1")
    assert pg_store.set_inbound_text("s1", {chunk_id: "caching, conditional_get"}) == 1
    assert [i for i, _ in pg_store.search_bm25("caching")] == [chunk_id]
    assert [i for i, _ in pg_store.search_bm25("conditional get")] == [chunk_id]
    assert sql(pg_dsn, "SELECT index_inbound FROM site_pages")[0][0] == "caching, conditional_get conditional get"
    indexes = dict(sql(pg_dsn, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'site_pages'"))
    assert "gin (fts)" in indexes["docshelf_site_pages_fts"]
    assert sql(pg_dsn, "SELECT attstorage FROM pg_attribute WHERE attrelid = 'site_pages'::regclass "
                       "AND attname = 'fts'") == [("m",)]


def _has_hnsw(dsn: str) -> bool:
    return bool(sql(dsn, "SELECT 1 FROM pg_indexes WHERE indexname = 'docshelf_site_pages_embedding_hnsw'"))


def _load(store: PostgresStore, url: str, seed: int) -> None:
    page, chunks, hashes = make_page(url, [f"bulk text {seed}"])
    store.write_pages([SourcePage(page, chunks, hashes, [unit(seed)])])


def test_bulk_load_into_a_new_shelf_builds_the_vector_index_at_the_end(pg_store: PostgresStore, pg_dsn: str) -> None:
    with pg_store.bulk_load():
        assert not _has_hnsw(pg_dsn)
        _load(pg_store, "http://example.test/a", 1)
        assert pg_store.search_vector(unit(1), limit=1)  # searchable meanwhile, by an exact scan
    assert _has_hnsw(pg_dsn)
    assert not sql(pg_dsn, "SELECT 1 FROM docshelf_meta WHERE key = 'vector_index_deferred'")
    assert pg_store.search_vector(unit(1), limit=1)[0][1] == pytest.approx(1.0, abs=1e-5)


def test_bulk_load_keeps_the_vector_index_of_a_shelf_with_vectors(pg_store: PostgresStore, pg_dsn: str) -> None:
    _load(pg_store, "http://example.test/a", 1)
    with pg_store.bulk_load():
        assert _has_hnsw(pg_dsn)
        _load(pg_store, "http://example.test/b", 2)
    assert _has_hnsw(pg_dsn)


def test_an_interrupted_bulk_load_gets_its_vector_index_at_the_next_open(pg_store: PostgresStore, pg_dsn: str) -> None:
    load = pg_store.bulk_load()
    load.__enter__()  # the process dies inside the block: its end never runs
    _load(pg_store, "http://example.test/a", 1)
    assert not _has_hnsw(pg_dsn)
    again = PostgresStore(pg_dsn)
    try:
        assert _has_hnsw(pg_dsn)
        assert not sql(pg_dsn, "SELECT 1 FROM docshelf_meta WHERE key = 'vector_index_deferred'")
    finally:
        again.close()
    load.__exit__(None, None, None)  # (only so the generator is not finalised after the pool is closed)
