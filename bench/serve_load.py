"""Load test of `docshelf serve`: /api/search latency with 1 and with 20 concurrent clients.

    python bench/serve_load.py                              # 60 s each for 1 and 20 clients
    python bench/serve_load.py --duration 20 --clients 1 4 20
    python bench/serve_load.py --clients 50 --while-crawling /usr/share/doc/python3-doc/html

With `--while-crawling FOLDER` the server is writable and a crawl job of FOLDER writes to the
same shelf while the clients search (tests/server/test_load.py runs that scenario on a small
shelf and requires 0 errors).

The shelf: `--db` (default bench/out/dev.db, the dev-set shelf of the retrieval benchmark) when
it holds at least `--min-chunks` embedded chunks; otherwise the script builds it with
`docshelf add` from a documentation folder on disk (default: Debian's SQLAlchemy docs,
about 21 000 chunks). The server reads a private copy made with `docshelf copy`, so a
benchmark running beside it cannot change the shelf under it.

`docshelf serve` runs as a subprocess on 127.0.0.1 only. Each client is an asyncio task on one
keep-alive connection that asks GET /api/search?q=…&k=10 (hybrid) in a loop, with queries drawn
from the dev-set questions and the shelf's page titles. The baseline row is the same search
called in this process without HTTP (`HybridSearcher.search`, one caller), over the same copy.
Load generator and server share the machine's cores; the table says how many there are.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
QUESTIONS = HERE.parent.parent / "shared" / "eval" / "dev" / "questions.jsonl"
DEFAULT_SITE = Path("/usr/share/doc/python-sqlalchemy-doc/html")
SEARCH_K = 10


@dataclass
class Run:
    """The outcome of one load scenario."""

    label: str
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    """Seconds per successful request."""
    errors: int = 0

    def row(self) -> str:
        """Return the scenario as a Markdown table row (latencies in milliseconds)."""
        cuts = (
            statistics.quantiles(self.latencies, n=100, method="inclusive")
            if len(self.latencies) > 1
            else [0.0] * 99
        )
        ms = [f"{cuts[i] * 1000:.1f}" for i in (49, 94, 98)]
        return (
            f"| {self.label} | {self.clients} | {len(self.latencies) + self.errors} | "
            f"{len(self.latencies) / self.seconds:.1f} | {' | '.join(ms)} | {self.errors} |"
        )


def docshelf(*args: str, db: Path) -> str:
    """Run a docshelf command; return its stdout, or exit with its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "docshelf", "--db", str(db), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):  # 1: some pages failed, the shelf is still usable
        sys.exit(f"docshelf {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def embedded_chunks(db: Path) -> int:
    """Return how many chunks of the shelf have vectors (0 when there is no shelf)."""
    if not db.exists():
        return 0
    return sum(s["embedded"] for s in json.loads(docshelf("sources", "--json", db=db)))


def ensure_shelf(db: Path, site: Path, min_chunks: int) -> None:
    """Build the shelf from `site` when it holds fewer than `min_chunks` embedded chunks."""
    have = embedded_chunks(db)
    if have >= min_chunks:
        print(f"shelf {db}: {have} embedded chunks, reused", file=sys.stderr)
        return
    if not site.is_dir():
        sys.exit(
            f"{db} holds {have} embedded chunks (< {min_chunks}) and {site} is missing to build one: "
            "apt-get install python-sqlalchemy-doc, or pass --db / --site"
        )
    print(f"building {db} from {site} (embedding takes minutes)…", file=sys.stderr)
    db.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    docshelf("add", str(site), "--source", site.parent.name.removesuffix("-doc"), "--json", db=db)
    print(
        f"built in {time.monotonic() - started:.0f}s: {embedded_chunks(db)} embedded chunks", file=sys.stderr
    )


def private_copy(db: Path) -> Path:
    """Return a fresh copy of the shelf (vectors included, nothing re-embedded) for this run alone."""
    copy = OUT / "serve-load.db"
    for stale in OUT.glob("serve-load.db*"):
        stale.unlink()
    docshelf("copy", "--to", str(copy), db=db)
    return copy


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(db: Path, port: int, *flags: str) -> subprocess.Popen[bytes]:
    """Start `docshelf serve` on 127.0.0.1 (read-only unless `flags` are given) and return once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "docshelf", "--db", str(db), "serve", "--port", str(port), "--no-mcp",
         *(flags or ("--read-only",))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/sources", timeout=2).raise_for_status()
            return process
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit("docshelf serve did not start")
            time.sleep(0.2)


def load_queries(base: str, rng: random.Random) -> list[str]:
    """Return varied queries: the dev-set questions and the shelf's page titles (read through the API)."""
    queries = (
        [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines()]
        if QUESTIONS.exists()
        else []
    )
    with httpx.Client(base_url=base, timeout=30) as http:
        for source in http.get("/api/sources").json()["sources"]:
            pages = http.get(f"/api/sources/{source['name']}/pages", params={"limit": 200}).json()["pages"]
            queries += [p["title"] for p in pages if p["title"]]
    rng.shuffle(queries)
    return queries


async def http_clients(base: str, clients: int, seconds: float, queries: list[str], seed: int) -> Run:
    """Run `clients` concurrent search loops against the server for `seconds`."""
    run = Run("HTTP GET /api/search", clients, seconds)
    deadline = time.monotonic() + seconds

    async def client(number: int) -> None:
        rng = random.Random(seed + number)
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while time.monotonic() < deadline:
                query = rng.choice(queries)
                started = time.perf_counter()
                try:
                    response = await http.get("/api/search", params={"q": query, "k": SEARCH_K})
                    ok = response.status_code == 200 and "hits" in response.json()
                except httpx.HTTPError:
                    ok = False
                if ok:
                    run.latencies.append(time.perf_counter() - started)
                else:
                    run.errors += 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    return run


def in_process(db: Path, seconds: float, queries: list[str], seed: int) -> Run:
    """Run the same searches by calling the library directly, one caller: the cost without HTTP."""
    from docshelf.cli.shelf import ShelfContext
    from docshelf.search import HybridSearcher

    shelf = ShelfContext(str(db), None)
    searcher = HybridSearcher(shelf.store, shelf.embedder_factory())
    run = Run("library, in process", 1, seconds)
    rng = random.Random(seed)
    for query in queries[:10]:  # warm up: load the model and the vectors
        searcher.search(query, k=SEARCH_K)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        query = rng.choice(queries)
        started = time.perf_counter()
        searcher.search(query, k=SEARCH_K)
        run.latencies.append(time.perf_counter() - started)
    shelf.store.close()
    return run


def start_crawl(base: str, folder: Path) -> str:
    """Start a crawl job of `folder` on the server; return its id."""
    source = f"load-{int(time.time())}"
    response = httpx.post(f"{base}/api/sources", json={"path": str(folder), "source": source}, timeout=30)
    response.raise_for_status()
    return str(response.json()["id"])


def crawl_progress(base: str, job_id: str) -> str:
    """Return how far a crawl job got, in words."""
    job = httpx.get(f"{base}/api/jobs/{job_id}", timeout=30).json()
    return f"{job['pages_done']} pages, {job['status']}"


def report(runs: list[Run], chunks: int) -> str:
    """Return the Markdown table of the runs."""
    head = (
        f"/api/search (hybrid, k={SEARCH_K}) on a shelf of {chunks} chunks, {os.cpu_count()} cores "
        f"shared by server and load generator\n\n"
        "| scenario | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    return "\n".join([head, *(run.row() for run in runs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--db", type=Path, default=OUT / "dev.db", help="The shelf to serve (built if too small)."
    )
    parser.add_argument("--site", type=Path, default=DEFAULT_SITE, help="Folder to build the shelf from.")
    parser.add_argument("--min-chunks", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds per scenario.")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-baseline", action="store_true", help="Skip the in-process baseline row.")
    parser.add_argument("--while-crawling", type=Path, metavar="FOLDER",
                        help="Crawl this folder into the same shelf (a server job) while the clients search.")
    args = parser.parse_args()

    ensure_shelf(args.db, args.site, args.min_chunks)
    copy = private_copy(args.db)
    chunks = embedded_chunks(copy)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    crawl = args.while_crawling
    server = start_server(copy, port, *(("--allow-folder", str(crawl)) if crawl else ()))
    try:
        rng = random.Random(args.seed)
        queries = load_queries(base, rng)
        # Load the model, and the vectors of every pooled connection, before timing: steady state.
        asyncio.run(http_clients(base, max(args.clients), 5.0, queries, args.seed))
        print(f"{len(queries)} queries; {args.duration:.0f}s per scenario", file=sys.stderr)
        runs: list[Run] = []
        for clients in args.clients:
            job = start_crawl(base, crawl) if crawl else None
            run = asyncio.run(http_clients(base, clients, args.duration, queries, args.seed))
            if job is not None:
                run.label = f"HTTP GET /api/search while a crawl writes ({crawl_progress(base, job)})"
            runs.append(run)
            print(runs[-1].row(), file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if not args.no_baseline:
        runs.insert(0, in_process(copy, args.duration, queries, args.seed))
    print(report(runs, chunks))


if __name__ == "__main__":
    main()
