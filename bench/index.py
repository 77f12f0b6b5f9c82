"""Indexing speed per stage, against the embed-only floor measured in the same run.

    python bench/index.py                 # flask docs
    python bench/index.py --site sqlite   # or requests, or all

Stages are timed one at a time over the same pages (fetch, extract, chunk,
enrich, embed, store); then the real pipeline (`Ingestor.add`, where they
overlap) runs end to end in a child process, whose peak RSS is reported.
The embed-only floor is the same texts through the embedder alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from docsite import SITES, docroot, serve  # noqa: E402

from docshelf.chunk import chunk_markdown
from docshelf.crawl import crawl
from docshelf.crawl.base import CrawlOptions
from docshelf.embed import get_embedder
from docshelf.embed.tokenizer import count_tokens
from docshelf.enrich import chunk_summary, chunk_title, embedding_text
from docshelf.extract import extract_document
from docshelf.ingest import build_chunks, chunk_embedding_text, text_hash
from docshelf.errors import ExtractError
from docshelf.models import Source
from docshelf.store.sqlite import SQLiteStore


async def fetch_all(url: str) -> list:
    return [o.fetched async for o in crawl(url, CrawlOptions()) if o.fetched is not None]


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def fences_balanced(markdown: str) -> bool:
    """Return True when every code fence opened in `markdown` is closed (CommonMark rules, simplified)."""
    open_fence: str | None = None
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if not match:
            continue
        fence, rest = match.groups()
        if open_fence is None:
            if not (fence[0] == "`" and "`" in rest):
                open_fence = fence
        elif fence[0] == open_fence[0] and len(fence) >= len(open_fence) and not rest.strip():
            open_fence = None
    return open_fence is None


def fence_report(db: str) -> tuple[int, int]:
    """Return (balanced chunks, all chunks) of a shelf."""
    store = SQLiteStore(db)
    contents = [row[0] for row in store.conn.execute("SELECT content FROM chunks")]
    store.close()
    return sum(fences_balanced(c) for c in contents), len(contents)


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def end_to_end(url: str, db: str) -> None:
    """Child process: run the real pipeline and print its summary and peak RSS as JSON."""
    from docshelf.ingest import Ingestor

    store = SQLiteStore(db)
    started = time.perf_counter()
    summary = Ingestor(store, get_embedder).add(url, source="bench")
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss, **summary.to_json()}))


def stage_rows(url: str, tmp: Path) -> tuple[list[tuple], float, int]:
    fetched, t_fetch = timed(lambda: asyncio.run(fetch_all(url)))
    docs, t_extract = timed(lambda: [extract_document(f.text, f.kind, f.url) for f in fetched])
    sections, t_chunk = timed(lambda: [chunk_markdown(d.markdown) for d in docs])
    texts, t_enrich = timed(lambda: [
        (chunk_title(d.title, s.heading_path), chunk_summary(s.content), s) for d, secs in zip(docs, sections) for s in secs
    ])
    embed_texts = list(dict.fromkeys(embedding_text(title, s.heading_path, s.content) for title, _, s in texts))
    tokens = sum(min(count_tokens(t), 256) for t in embed_texts)
    embedder = get_embedder()
    embedder.embed_documents(["warm up"])
    vectors, t_embed = timed(embedder.embed_documents, embed_texts)

    built = []
    for f in fetched:
        try:
            page, chunks = build_chunks(f, "bench")
        except ExtractError:
            continue
        built.append((page, chunks, [text_hash(chunk_embedding_text(c)) for c in chunks]))
    by_hash = {text_hash(t): v for t, v in zip(embed_texts, vectors)}

    def store_all() -> None:
        store = SQLiteStore(tmp / "stage.db")
        store.bind_embedder(embedder.model_id, embedder.dim)
        store.upsert_source(Source(name="bench", root=url))
        for page, chunks, hashes in built:
            store.replace_page(page, chunks, hashes)
        store.store_embeddings(by_hash)
        store.close()

    _, t_store = timed(store_all)
    n_pages, n_chunks = len(fetched), len(texts)
    mb = sum(len(f.text) for f in fetched) / 1e6
    rows = [
        ("fetch", t_fetch, f"{n_pages / t_fetch:.0f} pages/s", f"{mb / t_fetch:.1f} MB/s"),
        ("extract", t_extract, f"{n_pages / t_extract:.0f} pages/s", f"{mb / t_extract:.1f} MB/s"),
        ("chunk", t_chunk, f"{n_pages / t_chunk:.0f} pages/s", f"{n_chunks / t_chunk:.0f} chunks/s"),
        ("enrich", t_enrich, f"{n_chunks / t_enrich:.0f} chunks/s", ""),
        ("embed (floor)", t_embed, f"{len(embed_texts) / t_embed:.0f} chunks/s", f"{tokens / t_embed:.0f} tokens/s"),
        ("store", t_store, f"{n_chunks / t_store:.0f} chunks/s", ""),
    ]
    return rows, t_embed, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", default="flask", choices=[*SITES, "all"])
    parser.add_argument("--e2e-child", nargs=2, metavar=("URL", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.e2e_child:
        end_to_end(*args.e2e_child)
        return
    sites = list(SITES) if args.site == "all" else [args.site]
    with tempfile.TemporaryDirectory() as tmp_name, serve(docroot(Path(tmp_name) / "root")) as base:
        tmp = Path(tmp_name)
        for site in sites:
            url = f"{base}/{site}/"
            rows, floor, tokens = stage_rows(url, tmp)
            child = subprocess.run(
                [sys.executable, __file__, "--e2e-child", url, str(tmp / f"e2e-{site}.db")],
                capture_output=True, text=True, check=True,
            )
            e2e = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"\n## {site}: {e2e['pages_ok']} pages, {e2e['chunks']} chunks, {tokens} tokens embedded\n")
            print("| stage | seconds | rate | rate |\n|---|---:|---:|---:|")
            for name, seconds, a, b in rows:
                print(f"| {name} | {seconds:.2f} | {a} | {b} |")
            print(f"| **end to end** (pipeline) | {e2e['seconds']:.2f} | {e2e['pages_ok'] / e2e['seconds']:.0f} pages/s"
                  f" | {e2e['chunks'] / e2e['seconds']:.0f} chunks/s |")
            balanced, total = fence_report(str(tmp / f"e2e-{site}.db"))
            print(f"\nchunks with balanced code fences: {balanced}/{total} ({100 * balanced / max(total, 1):.1f} %)")
            print(f"end to end / embed-only floor: **{e2e['seconds'] / floor:.2f}×**; "
                  f"peak RSS of the pipeline process: **{e2e['rss_mb']:.0f} MB**; "
                  f"failed {e2e['pages_failed']}, skipped {e2e['pages_skipped']}")


if __name__ == "__main__":
    main()
