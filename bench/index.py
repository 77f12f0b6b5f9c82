"""Indexing speed per stage, against the embed-only floor measured in the same run; and two versions side by side.

    python bench/index.py                 # flask docs
    python bench/index.py --site sqlite   # or requests, or all

Stages are timed one at a time over the same pages (fetch, extract, chunk,
enrich, embed, store); then the real pipeline (`Ingestor.add`, where they
overlap) runs end to end in a child process, whose peak RSS is reported.
The embed-only floor is the same texts through the embedder alone.

Rendered pages beside plain ones (a client-side app and its static build, same pages):

    python bench/index.py --render --pages 60

crawls the static build plainly, then the app with `render="auto"` at each --render-concurrency,
and prints pages/s for each with the Chromium pool's peak resident memory (all its processes,
sampled every 50 ms, as PSS: shared pages counted once). Only the crawl is timed (fetch, render); extraction onwards is the same for both.

Large sites, a baseline commit against the work tree:

    python bench/index.py --large                                  # django and sqlite, baseline b60759c
    python bench/index.py --large --baseline b60759c --sites django,sqlite --json
    python bench/index.py --large --sites flask --candidate-src /tmp/docshelf-head/src

Each (site, version) runs what `docshelf add` runs (`Ingestor.add`) into a fresh shelf, in a
fresh child process whose PYTHONPATH is that version's source tree: the baseline commit checked
out with `git worktree add` in /tmp/docshelf-baseline-<sha>, the candidate --candidate-src
(default: this work tree's src). The children run one after another, never two at once, and
crawl the same URL on one fixed port, so both versions chunk identical input. Tokens embedded
count each distinct embedding text once, as the model reads it ([CLS] + text + [SEP], at most
256). Main-text tokens are the ok pages' plain text without the navigation pages, measured once,
with the candidate's code on the candidate's shelf.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from docsite import DJANGO_SITES, SITES, docroot, serve  # noqa: E402

# docshelf is imported inside the functions that use it: the --large parent imports none of it,
# and each --large child imports the version its PYTHONPATH points at.

REPO = Path(__file__).resolve().parent.parent
LARGE_SITES = {**DJANGO_SITES, "sqlite": SITES["sqlite"], "flask": SITES["flask"]}
MAX_TOKENS = 256
"""The model reads at most this many tokens of a text, [CLS] and [SEP] included."""


async def fetch_all(url: str) -> list:
    from docshelf.crawl import crawl
    from docshelf.crawl.base import CrawlOptions

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
    from docshelf.store.sqlite import SQLiteStore

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
    from docshelf.embed import get_embedder
    from docshelf.ingest import Ingestor
    from docshelf.store.sqlite import SQLiteStore

    store = SQLiteStore(db)
    started = time.perf_counter()
    summary = Ingestor(store, get_embedder).add(url, source="bench")
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss, **summary.to_json()}))


def stage_rows(url: str, tmp: Path) -> tuple[list[tuple], float, int]:
    from docshelf.chunk import chunk_markdown
    from docshelf.embed import get_embedder
    from docshelf.embed.tokenizer import count_tokens
    from docshelf.enrich import chunk_summary, chunk_title, embedding_text
    from docshelf.errors import ExtractError
    from docshelf.extract import extract_document
    from docshelf.ingest import build_chunks, chunk_embedding_text, text_hash
    from docshelf.models import Source
    from docshelf.store.sqlite import SQLiteStore

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


def stage_report(site: str, base: str, tmp: Path) -> None:
    """Print the stage table of one site, with the end-to-end run of a child process."""
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


# -- large sites: baseline against candidate ----------------------------------------------------


def model_tokens(text: str) -> int:
    """Return the tokens the model reads of `text` when embedding it: [CLS] + text + [SEP], at most 256."""
    from docshelf.embed.tokenizer import count_tokens

    return min(count_tokens(text) + 2, MAX_TOKENS)


def embedded_counts(store) -> dict:
    """Return the chunks of a shelf, those with a vector, and the tokens embedded (once per embed_hash)."""
    from docshelf.ingest import chunk_embedding_text

    rows = list(store.conn.execute("SELECT url, chunk_number, embed_hash FROM chunks WHERE embedded = 1 ORDER BY id"))
    first = {}  # embed_hash -> (url, chunk_number) of the first chunk embedded as that text
    for url, number, embed_hash in rows:
        first.setdefault(embed_hash, (url, number))
    wanted: dict[str, set[int]] = {}
    for url, number in first.values():
        wanted.setdefault(url, set()).add(number)
    tokens = sum(
        model_tokens(chunk_embedding_text(chunk))
        for url, numbers in wanted.items() for chunk in store.get_chunks(url) if chunk.chunk_number in numbers
    )
    chunks = next(iter(store.conn.execute("SELECT count(*) FROM chunks")))[0]
    return {"chunks": chunks, "chunks_embedded": len(rows), "tokens_embedded": tokens}


def main_text_counts(store) -> dict:
    """Return the plain-text tokens of a shelf's ok pages, with and without the navigation pages."""
    from docshelf.embed.tokenizer import count_tokens
    from docshelf.enrich import embedding_text
    from docshelf.page_kind import profile_page

    markdowns = [row[0] or "" for row in store.conn.execute("SELECT markdown FROM pages WHERE status = 'ok'")]
    content = everything = navigation = 0
    for markdown in markdowns:
        tokens = count_tokens(embedding_text("", [], markdown))
        everything += tokens
        if profile_page(markdown).kind == "navigation":
            navigation += 1
        else:
            content += tokens
    return {"main_text_tokens": content, "all_text_tokens": everything, "navigation_pages": navigation}


def large_child(url: str, db: str, site: str, main_text: bool) -> None:
    """Child process: add `url` to a fresh shelf with the docshelf on PYTHONPATH; print the measures as JSON."""
    import docshelf
    from docshelf.embed import get_embedder
    from docshelf.ingest import Ingestor
    from docshelf.store.sqlite import SQLiteStore

    store = SQLiteStore(db)
    started = time.perf_counter()
    summary = Ingestor(store, get_embedder).add(url, source=site)
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # read before counting adds to it
    result = {
        "docshelf": docshelf.__file__, "pages": summary.pages_ok, "pages_failed": summary.pages_failed,
        "pages_skipped": summary.pages_skipped, **embedded_counts(store), "seconds": seconds, "rss_mb": rss_mb,
    }
    if main_text:
        result |= main_text_counts(store)
    store.close()
    print(json.dumps(result))


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def baseline_src(commit: str) -> Path:
    """Return the src folder of `commit`, checked out in a worktree under /tmp (added once, then reused)."""
    sha = git("rev-parse", f"{commit}^{{commit}}")
    tree = Path(f"/tmp/docshelf-baseline-{git('rev-parse', '--short', sha)}")
    if not tree.exists():
        git("worktree", "add", "--detach", str(tree), sha)
    elif git("rev-parse", "HEAD", cwd=tree) != sha:
        raise SystemExit(f"{tree} is not at {sha}; remove it with `git worktree remove {tree}`")
    return tree / "src"


def run_version(src: Path, url: str, db: Path, site: str, main_text: bool) -> dict:
    """Index `url` with the docshelf in `src`, in a child process; return its measures."""
    command = [sys.executable, __file__, "--large-child", url, str(db), site] + (["--main-text"] if main_text else [])
    child = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
    if child.returncode != 0:
        sys.stderr.write(child.stderr[-4000:])
        raise SystemExit(f"the child for {src} failed; if the work tree is mid-change, "
                         "pass --candidate-src with a worktree of HEAD")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    if not Path(result["docshelf"]).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"the child imported {result['docshelf']}, not the docshelf in {src}")
    return result


def compare_site(site: str, base: str, versions: dict[str, Path], tmp: Path) -> list[dict]:
    """Index one site with every version in turn; return one row per version."""
    url = f"{base}/{site}/"
    rows = []
    for version, src in versions.items():
        measured = run_version(src, url, tmp / f"{site}-{version}.db", site, main_text=version == "candidate")
        rows.append({"site": site, "version": version, "src": str(src), **measured})
    main_text = {k: rows[-1][k] for k in ("main_text_tokens", "all_text_tokens", "navigation_pages")}
    return [row | main_text for row in rows]


def print_comparison(site: str, rows: list[dict]) -> None:
    """Print one site's rows as a Markdown table, then the main-text totals and the time ratio."""
    print(f"\n## {site}\n")
    print("| version | pages | chunks | chunks embedded | tokens embedded | main-text tokens | embedded ÷ main text"
          " | seconds | chunks/s | peak RSS MB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['version']} | {r['pages']} | {r['chunks']} | {r['chunks_embedded']} | {r['tokens_embedded']}"
              f" | {r['main_text_tokens']} | {r['tokens_embedded'] / max(r['main_text_tokens'], 1):.2f}"
              f" | {r['seconds']:.1f} | {r['chunks'] / r['seconds']:.1f} | {r['rss_mb']:.0f} |")
    r = rows[-1]
    print(f"\nmain text with the {r['navigation_pages']} navigation pages: {r['all_text_tokens']} tokens")
    for r in rows:
        print(f"{r['version']}: {r['docshelf']} (failed {r['pages_failed']}, skipped {r['pages_skipped']})")
    print(f"candidate / baseline time: **{rows[-1]['seconds'] / rows[0]['seconds']:.2f}×**")


def compare(args: argparse.Namespace) -> None:
    sites = args.sites.split(",")
    unknown = [s for s in sites if s not in LARGE_SITES]
    if unknown:
        raise SystemExit(f"unknown sites {unknown}; choose from {', '.join(LARGE_SITES)}")
    versions = {"baseline": baseline_src(args.baseline), "candidate": Path(args.candidate_src)}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        shelves = Path(args.keep) if args.keep else tmp
        shelves.mkdir(parents=True, exist_ok=True)
        if existing := [p.name for s in sites for v in versions if (p := shelves / f"{s}-{v}.db").exists()]:
            raise SystemExit(f"{shelves} already holds {', '.join(existing)}: indexing into it would be a refresh")
        folder = docroot(tmp / "root", {s: LARGE_SITES[s] for s in sites})
        with serve(folder, port=args.port) as base:
            for site in sites:
                rows = compare_site(site, base, versions, shelves)
                if args.json:
                    for row in rows:
                        print(json.dumps(row))
                else:
                    print_comparison(site, rows)


def app_sites(folder: Path, pages: int) -> tuple[Path, Path]:
    """Write a client-side app with `pages` pages (tests/fixtures/js_app's, repeated) and its static build."""
    import html as html_module
    import shutil

    fixture = REPO / "tests" / "fixtures" / "js_app"
    app, static = folder / "app", folder / "static"
    (app / "content").mkdir(parents=True)
    static.mkdir()
    shutil.copy(fixture / "index.html", app / "index.html")
    shutil.copy(fixture / "app.js", app / "app.js")
    sources = [json.loads((fixture / "content" / f"{n}.json").read_text()) for n in ("index", "install", "gears")]
    entries = [{"route": "index" if i == 0 else f"page-{i}", "title": f"{sources[i % 3]['title']} {i}"}
               for i in range(pages)]
    (app / "content" / "pages.json").write_text(json.dumps(entries))
    nav = "".join(f'<li><a href="{e["route"]}.html">{e["title"]}</a></li>' for e in entries)
    for number, entry in enumerate(entries):
        page = {**sources[number % 3], "title": entry["title"]}
        (app / "content" / f"{entry['route']}.json").write_text(json.dumps(page))
        body = "".join(f"<p>{html_module.escape(b.get('text') or b.get('code', ''))}</p>" for b in page["blocks"])
        (static / f"{entry['route']}.html").write_text(
            f"<html><head><title>{entry['title']}</title></head><body><nav><ul>{nav}</ul></nav>"
            f"<main><h1>{entry['title']}</h1>{body}</main></body></html>")
    return app, static


def render_report(pages: int, concurrencies: list[int]) -> None:
    """Print pages/s of plain and rendered crawls of the same pages, and the browser pool's peak memory."""
    import threading

    from docshelf.crawl import CrawlOptions, crawl
    from docshelf.crawl.render import browser_processes, chromium_path, _rss

    async def run(url: str, options: CrawlOptions) -> tuple[int, int, float]:
        started = time.monotonic()
        ok = failed = 0
        async with crawl(url, options) as outcomes:
            async for outcome in outcomes:
                ok += outcome.fetched is not None
                failed += outcome.error is not None
        return ok, failed, time.monotonic() - started

    def peak_memory(stop: threading.Event, peak: list[int]) -> None:
        executable = chromium_path()
        while not stop.wait(0.05):
            peak[0] = max(peak[0], sum(_rss(pid) for pid, _ in browser_processes(executable)))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        app, static = app_sites(Path(tmp), pages)
        with serve(static) as static_base, serve(app) as app_base:
            ok, failed, seconds = asyncio.run(run(f"{static_base}/index.html", CrawlOptions(render="never")))
            rows.append(("plain (static build)", "-", ok, failed, seconds, None))
            for concurrency in concurrencies:
                stop, peak = threading.Event(), [0]
                sampler = threading.Thread(target=peak_memory, args=(stop, peak), daemon=True)
                sampler.start()
                options = CrawlOptions(render="auto", render_concurrency=concurrency)
                ok, failed, seconds = asyncio.run(run(f"{app_base}/", options))
                stop.set()
                sampler.join()
                rows.append(("rendered (client-side app)", str(concurrency), ok, failed, seconds, peak[0]))
    print(f"\n{pages} pages, plain vs rendered (crawl only)\n")
    print(f"{'crawl':28} {'render pool':>11} {'pages':>6} {'failed':>6} {'seconds':>8} {'pages/s':>8} {'pool peak PSS':>14}")
    for name, concurrency, ok, failed, seconds, peak in rows:
        memory = f"{peak / 2**20:.0f} MB" if peak is not None else "-"
        print(f"{name:28} {concurrency:>11} {ok:>6} {failed:>6} {seconds:>8.2f} {ok / seconds:>8.1f} {memory:>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", default="flask", choices=[*SITES, "all"])
    parser.add_argument("--large", action="store_true", help="compare --baseline with the candidate on --sites")
    parser.add_argument("--baseline", default="b60759c", help="git commit of the baseline (--large)")
    parser.add_argument("--candidate-src", default=str(REPO / "src"), help="source tree of the candidate (--large)")
    parser.add_argument("--sites", default="django,sqlite", help=f"comma-separated, of {', '.join(LARGE_SITES)} (--large)")
    parser.add_argument("--port", type=int, default=8765, help="port of the docs server (--large)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines (--large)")
    parser.add_argument("--keep", metavar="DIR", help="write the shelves to DIR/<site>-<version>.db and keep them "
                        "(--large; e.g. to score them with bench/retrieval.py --db)")
    parser.add_argument("--render", action="store_true", help="plain vs rendered pages/s and the browser's memory")
    parser.add_argument("--pages", type=int, default=60, help="pages of the app (--render)")
    parser.add_argument("--render-concurrency", default="1,2,4", help="comma-separated pool sizes (--render)")
    parser.add_argument("--e2e-child", nargs=2, metavar=("URL", "DB"), help=argparse.SUPPRESS)
    parser.add_argument("--large-child", nargs=3, metavar=("URL", "DB", "SITE"), help=argparse.SUPPRESS)
    parser.add_argument("--main-text", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render:
        render_report(args.pages, [int(n) for n in args.render_concurrency.split(",")])
    elif args.e2e_child:
        end_to_end(*args.e2e_child)
    elif args.large_child:
        large_child(*args.large_child, main_text=args.main_text)
    elif args.large:
        compare(args)
    else:
        sites = list(SITES) if args.site == "all" else [args.site]
        with tempfile.TemporaryDirectory() as tmp_name, serve(docroot(Path(tmp_name) / "root")) as base:
            for site in sites:
                stage_report(site, base, Path(tmp_name))


if __name__ == "__main__":
    main()
