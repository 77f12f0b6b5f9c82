"""Model-written titles, summaries and context sentences: the pipeline on a real site, a real shelf (SQLite and
PostgreSQL) and the real bundled embedder; the model is a FunctionModel that counts its calls."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from counting import CountingEmbedder
from pydantic_ai import models
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from servers import Server
from store.shelves import DIM, make_page, open_shelf, shelf_location, unit  # noqa: F401 (shelf_location: fixture)
from test_ingest import write_site

from docshelf.embed import get_embedder
from docshelf.enrich import chunk_title
from docshelf.enrich_llm import PROMPT_MAX_CHARS, ChunkEnrichment, LLMEnricher, cleaned, prompt_text
from docshelf.ingest import Ingestor, chunk_embedding_text
from docshelf.models import Chunk, Enrichment, Source
from docshelf.store.base import Store

models.ALLOW_MODEL_REQUESTS = False


class ScriptedModel:
    """A FunctionModel whose answer is derived from the prompt's section; counts calls and requests in flight.

    Args:
        fail_on: prompts containing this word get an HTTP 500 (as after the client's retries).
        delay: seconds each answer takes, so that requests overlap.
    """

    def __init__(self, fail_on: str | None = None, delay: float = 0.0) -> None:
        self.fail_on = fail_on
        self.delay = delay
        self.prompts: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.model = FunctionModel(self._answer, model_name="scripted")

    async def _answer(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = messages[-1].parts[-1].content
        assert isinstance(prompt, str)
        self.prompts.append(prompt)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.fail_on and self.fail_on in prompt.lower():
            raise ModelHTTPError(status_code=500, model_name="scripted", body={"error": {"message": "overloaded"}})
        section = re.search(r"^Section: (.*)$", prompt, re.M).group(1)  # type: ignore[union-attr]
        answer = {"title": f"How {section} works", "summary": f"Explains {section} with an example.",
                  "context": f"This chunk is the {section} part of the Widgets guide."}
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, answer)])


@pytest.fixture
def site(tmp_path: Path):
    write_site(tmp_path / "www")
    with Server(tmp_path / "www") as server:
        yield server


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder(get_embedder())


@pytest.fixture
def store(shelf_location: str):  # noqa: F811 (the fixture imported above)
    s = open_shelf(shelf_location)
    yield s
    s.close()


def add(store: Store, server: Server, model: ScriptedModel, embedder: CountingEmbedder, **kwargs) -> dict:
    """Crawl the site into `store` with `model` enriching; return the enrichment report."""
    enricher = LLMEnricher(store, model.model, "scripted", **kwargs)
    summary = Ingestor(store, lambda: embedder, enricher=enricher).add(server.url("/docs/"), source="widgets")
    assert summary.enrichment is not None
    return summary.enrichment


def chunks(store: Store, server: Server) -> list[Chunk]:
    """Return every chunk of the site's source, page by page in URL order."""
    return [c for page in store.list_pages("widgets") for c in store.get_chunks(page.url)]


def test_titles_are_written_once_then_served_from_the_cache(store: Store, site: Server,
                                                            embedder: CountingEmbedder) -> None:
    model = ScriptedModel()
    embedder.reset()
    report = add(store, site, model, embedder)
    stored = chunks(store, site)
    assert len(model.prompts) == len(stored) == report["enriched"] == report["requests"] == 6
    assert report["cache_hits"] == 0 and report["failed"] == 0 and report["input_tokens"] > 0
    assert report["cost_usd"] is None  # genai-prices does not know a FunctionModel's price
    assert {c.enriched_by for c in stored} == {"llm:scripted"}
    assert "How Configuration works" in {c.title for c in stored}
    # each chunk was embedded once, with its model-written title: never first with the extractive one
    assert sorted(embedder.documents) == sorted(chunk_embedding_text(c) for c in stored)
    assert store.pending_embeddings("widgets") == []

    model.prompts.clear()
    assert add(store, site, model, embedder)["requests"] == 0  # a re-crawl of an unchanged site
    store.remove_source("widgets")
    embedder.reset()
    again = add(store, site, model, embedder)
    assert model.prompts == [] and again["cache_hits"] == again["enriched"] == 6
    assert [(c.title, c.summary) for c in chunks(store, site)] == [(c.title, c.summary) for c in stored]
    assert sorted(embedder.documents) == sorted(chunk_embedding_text(c) for c in stored)  # once each, as before


def test_the_prompt_sees_page_title_headings_and_the_whole_chunk(store: Store, site: Server,
                                                                 embedder: CountingEmbedder) -> None:
    model = ScriptedModel()
    add(store, site, model, embedder)
    prompt = next(p for p in model.prompts if "Section: Streaming" in p)
    assert prompt.startswith("Page title: Streaming\nSection: Streaming\n\n<chunk>\n")
    chunk = store.get_chunks(site.url("/docs/streaming.html"))[0]
    assert chunk.content in prompt and "client.streaming()" in prompt
    long = Chunk(url="u", source="s", chunk_number=0, title="", summary="", content="word " * PROMPT_MAX_CHARS)
    assert len(prompt_text("Page", long)) < PROMPT_MAX_CHARS + 200 and "[… cut:" in prompt_text("Page", long)


def test_a_failed_chunk_keeps_its_extractive_title_and_is_retried_later(store: Store, site: Server,
                                                                        embedder: CountingEmbedder) -> None:
    report = add(store, site, ScriptedModel(fail_on="streaming"), embedder)
    assert report["failed"] == 1 and report["enriched"] == 5
    assert report["failures"][0]["url"] == site.url("/docs/streaming.html")
    assert "HTTP 500" in report["failures"][0]["reason"]
    failed = store.get_chunks(site.url("/docs/streaming.html"))[0]
    assert failed.enriched_by == "extractive"
    page = store.get_page(site.url("/docs/streaming.html"))
    assert page is not None and failed.title == chunk_title(page.title, failed.heading_path) == "Streaming"
    assert store.pending_embeddings("widgets") == []  # embedded with its extractive title, not left without a vector

    retry = ScriptedModel()
    enricher = LLMEnricher(store, retry.model, "scripted")
    summary = Ingestor(store, lambda: embedder, enricher=enricher).enrich("widgets")
    assert len(retry.prompts) == 1 and "Section: Streaming" in retry.prompts[0]
    assert summary.enrichment["enriched"] == 1 and summary.embedded == 1
    assert store.get_chunks(site.url("/docs/streaming.html"))[0].title == "How Streaming works"
    assert {c.enriched_by for c in chunks(store, site)} == {"llm:scripted"}


def test_requests_in_flight_stay_within_the_bound(tmp_path: Path, site: Server, embedder: CountingEmbedder) -> None:
    store = open_shelf(str(tmp_path / "shelf.db"))
    Ingestor(store, lambda: embedder).add(site.url("/docs/"), source="widgets")  # extractive first: one batch of 6
    model = ScriptedModel(delay=0.05)
    enricher = LLMEnricher(store, model.model, "scripted", concurrency=2)
    Ingestor(store, lambda: embedder, enricher=enricher).enrich("widgets")
    assert len(model.prompts) == 6 and model.max_in_flight == 2
    store.close()


def test_context_sentences_are_embedded_with_their_chunks(store: Store, site: Server,
                                                          embedder: CountingEmbedder) -> None:
    embedder.reset()
    model = ScriptedModel()
    add(store, site, model, embedder, with_context=True)
    stored = chunks(store, site)
    assert all(c.context == f"This chunk is the {c.heading_path[0]} part of the Widgets guide." for c in stored)
    assert sorted(embedder.documents) == sorted(chunk_embedding_text(c) for c in stored)
    assert all(text.startswith(f"This chunk is the {c.heading_path[0]} part of the Widgets guide.\nHow ")
               for text, c in zip(map(chunk_embedding_text, stored), stored))

    embedder.reset()  # dropping the context is a cache hit, and re-embeds every chunk without it
    enricher = LLMEnricher(store, model.model, "scripted", with_context=False)
    summary = Ingestor(store, lambda: embedder, enricher=enricher).enrich("widgets")
    assert summary.enrichment["cache_hits"] == 6 and len(model.prompts) == 6
    assert all(c.context is None for c in chunks(store, site)) and summary.embedded == 6
    assert not any("Widgets guide" in text for text in embedder.documents)


def test_unset_context_keeps_each_chunks_choice(tmp_path: Path, site: Server, embedder: CountingEmbedder) -> None:
    store = open_shelf(str(tmp_path / "shelf.db"))
    model = ScriptedModel()
    add(store, site, model, embedder, with_context=True)
    again = LLMEnricher(store, model.model, "other")  # another model, with_context None
    Ingestor(store, lambda: embedder, enricher=again).enrich(None)
    assert all(c.context and c.enriched_by == "llm:other" for c in chunks(store, site))
    store.close()


def test_model_output_is_cleaned_to_the_stored_limits() -> None:
    output = ChunkEnrichment(title='  "Stream   a body."  ', summary="x " * 400, context="Part of the guide.")
    got = cleaned(output)
    assert got.title == "Stream a body" and len(got.summary) <= 400 and got.summary.endswith("…")


# -- the store side, on SQLite and PostgreSQL --------------------------------------------------------------
@pytest.fixture
def bound(store: Store) -> Store:
    store.bind_embedder("test:model", DIM)
    store.upsert_source(Source(name="s1", root="http://example.test/"))
    return store


def test_cache_round_trips_and_replaces(bound: Store) -> None:
    bound.put_enrichments("m", "1", {"h1": Enrichment("T1", "S1", "C1"), "h2": Enrichment("T2", "S2", None)})
    bound.put_enrichments("m", "1", {"h1": Enrichment("T1b", "S1b", "C1b")})
    assert bound.get_enrichments("m", "1", ["h1", "h2", "h3"]) == {
        "h1": Enrichment("T1b", "S1b", "C1b"), "h2": Enrichment("T2", "S2", None)}
    assert bound.get_enrichments("m", "2", ["h1"]) == {} and bound.get_enrichments("other", "1", ["h1"]) == {}


def test_chunks_to_enrich_select_by_enricher_and_context(bound: Store) -> None:
    page, stored, hashes = make_page("http://example.test/a", ["one", "two", "three"])
    stored[0].enriched_by, stored[1].enriched_by, stored[1].context = "llm:m", "llm:m", "ctx"
    bound.replace_page(page, stored, hashes)

    def numbers(with_context: bool | None) -> list[int]:
        return [c.chunk_number for _, _, c in bound.chunks_to_enrich("s1", "llm:m", with_context)]

    assert numbers(None) == [2] and numbers(False) == [1, 2] and numbers(True) == [0, 2]
    assert bound.chunks_to_enrich("s1", "llm:m", None)[0][:2] == ("h:three", "Page")
    assert bound.chunks_to_enrich("s2", "llm:m", None) == []


def test_update_enrichments_moves_vectors_with_the_text(bound: Store) -> None:
    page, stored, hashes = make_page("http://example.test/a", ["one", "two", "three"])
    bound.replace_page(page, stored, hashes)
    bound.replace_page(*make_page("http://example.test/b", ["other"]))
    bound.store_embeddings({"h:one": unit(1), "h:two": unit(2), "h:other": unit(3)})
    new = [Chunk(**{**vars(c), "title": f"LLM {c.content}", "enriched_by": "llm:m"}) for c in stored]
    # one: text changed, vector dropped; two: same text, vector kept; three: a stored vector reused; stale: skipped
    delta = bound.update_enrichments([("h:one", new[0], "h:one2"), ("h:two", new[1], "h:two"),
                                      ("h:three", new[2], "h:other"), ("h:stale", new[0], "h:x")])
    assert delta == 0  # one chunk lost its vector, one got a vector it lacked
    assert [c.title for c in bound.get_chunks(page.url)] == ["LLM one", "LLM two", "LLM three"]
    assert [h for h, _ in bound.pending_embeddings("s1")] == ["h:one2"]
    assert [h for h, _ in bound.pending_embeddings("s1", enriched_by="llm:m")] == ["h:one2"]
    assert bound.pending_embeddings("s1", enriched_by="extractive") == []


def test_m004_opens_a_shelf_built_before_it_and_its_chunks_become_enrichable(tmp_path: Path) -> None:
    import apsw

    from docshelf.store.migrations import MIGRATIONS
    from docshelf.store.sqlite import SQLiteStore

    path = tmp_path / "old.db"
    conn = apsw.Connection(str(path))
    conn.execute("CREATE TABLE migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, migration in MIGRATIONS[: [n for n, _ in MIGRATIONS].index("m004_enrichment")]:
        migration(conn)
        conn.execute("INSERT INTO migrations VALUES (?, '2026-01-01')", (name,))
    conn.execute("INSERT INTO sources(name, root, created_at) VALUES ('s', 'http://x/', '2026-01-01')")
    conn.execute("INSERT INTO pages(url, source, title, fetched_at, status) VALUES ('http://x/a', 's', 'A', 'now', 'ok')")
    conn.execute("INSERT INTO chunks(url, source, chunk_number, title, summary, content, embed_hash) "
                 "VALUES ('http://x/a', 's', 0, 'A', 'old summary', 'Some text.', 'h')")
    conn.close()
    store = SQLiteStore(path)
    assert store.get_chunks("http://x/a")[0].enriched_by is None  # not known: written before enrichers were recorded
    assert [(h, t, c.summary) for h, t, c in store.chunks_to_enrich("s", "llm:m", None)] == [("h", "A", "old summary")]
    store.put_enrichments("m", "1", {"p": Enrichment("T", "S")})
    assert store.get_enrichments("m", "1", ["p"]) == {"p": Enrichment("T", "S")}
    store.close()
