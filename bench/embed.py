"""Benchmark the bundled embedder: the plain model against the optimized graph, printed as Markdown tables.

By default three configurations run: `before`, model.onnx as shipped with
docshelf's threading and batching; `after`, the optimized graph docshelf
runs (docshelf/embed/optimize.py) with the same settings; and `exact`, that
graph without its one approximate step (int8 matrix multiplications). Each
runs in a fresh subprocess, so its peak RSS is its own, and they take turns
round after round, so load from other work on the machine spreads over all
of them; a row reports the median round. The same run then compares the
vectors with before's: the cosine of every text's vector to its `before`
vector (min and mean), and, for 50 queries (headings of the same pages),
whether the 10 nearest texts come back in the same order.

The texts are real documentation: the HTML that Debian's python-*-doc
packages install (Flask first, then Jinja2, Requests, SQLAlchemy, Celery,
Django), stripped of tags and cut at block boundaries into distinct pieces
of at most 150 words, like chunks. `--only` also runs the older study of
threads, batch sizes and session options (on the optimized graph unless a
configuration says otherwise).

    python bench/embed.py                     # 3000 texts, 3 rounds, before, after and exact
    python bench/embed.py --texts 500 --rounds 1
    python bench/embed.py --only default tokens-2048 intra-2
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

DOCS = [
    f"/usr/share/doc/python-{name}-doc/html"
    for name in ("flask", "jinja2", "requests", "sqlalchemy", "celery", "django")
]
PIECE_WORDS = 150
QUERIES = 50
TOP = 10


@dataclass(frozen=True)
class Config:
    """One way to run the embedder over the corpus."""

    name: str
    label: str
    """What the table calls it."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for LocalMiniLM."""
    feed: str = "one-call"
    """How texts reach the embedder: `one-call` (the product's way), `slices` (arrival-order calls of
    `slice` texts, i.e. unsorted batches), `two-instances` (two LocalMiniLM, one per Python thread)."""
    slice: int = 8
    session: dict[str, Any] = field(default_factory=dict)
    """SessionOptions attributes to change from docshelf's, to measure settings it does not expose."""


BEFORE = Config(
    "before",
    "**before**: model.onnx as shipped, 2 Python threads, sorted, ≤512 tokens",
    {"threads": 2, "batch_tokens": 512, "optimize": False},
)
AFTER = Config(
    "after",
    "**after**: optimized graph (docshelf's default), 2 Python threads, sorted, ≤512 tokens",
    {"threads": 2, "batch_tokens": 512, "optimize": True},
)
EXACT = Config(
    "exact",
    "optimized graph without int8 (`int8=False`: fused attention and GELU only), same settings",
    {"threads": 2, "batch_tokens": 512, "optimize": True, "int8": False},
)
CONFIGS = [
    BEFORE,
    AFTER,
    EXACT,
    Config(
        "unsorted-8",
        "1 thread, unsorted, 8 texts per batch (naive baseline)",
        {"threads": 1, "batch_tokens": 8 * 256},
        feed="slices",
    ),
    Config(
        "sorted-8",
        "1 thread, sorted, ≤2048 padded tokens (~8 texts) per batch",
        {"threads": 1, "batch_tokens": 8 * 256},
    ),
    Config(
        "sorted-1t",
        "1 thread, sorted, ≤512 padded tokens per batch",
        {"threads": 1, "batch_tokens": 512},
    ),
    Config(
        "intra-2",
        "(a) 1 session, intra_op_threads=2, no spinning, ≤512 tokens",
        {"threads": 1, "intra_op_threads": 2, "batch_tokens": 512},
    ),
    Config(
        "intra-2-spin",
        "(a) 1 session, intra_op_threads=2, spinning on, ≤512 tokens",
        {"threads": 1, "intra_op_threads": 2, "batch_tokens": 512},
        session={"session.intra_op.allow_spinning": "1"},
    ),
    Config(
        "two-sessions",
        "(b) 2 sessions × 1 thread, 2 Python threads, ≤512 tokens",
        {"threads": 1, "batch_tokens": 512},
        feed="two-instances",
    ),
    Config(
        "inter-2",
        "(c) 1 session, ORT_PARALLEL, inter_op=2, intra_op=1, ≤512 tokens",
        {"threads": 1, "batch_tokens": 512},
        session={"execution_mode": "ORT_PARALLEL", "inter_op_num_threads": 2},
    ),
    Config(
        "unsorted-8-2t",
        "shared session, 2 Python threads, unsorted, 8 texts per batch",
        {"threads": 1, "batch_tokens": 8 * 256},
        feed="slices-2t",
    ),
    Config(
        "tokens-256",
        "shared session, 2 Python threads, sorted, ≤256 tokens (~1 text)",
        {"threads": 2, "batch_tokens": 256},
    ),
    Config(
        "default",
        "default: shared session, 2 Python threads, sorted, ≤512 tokens",
        {"threads": 2, "batch_tokens": 512},
    ),
    Config(
        "tokens-2048",
        "shared session, 2 Python threads, sorted, ≤2048 tokens (~8 texts)",
        {"threads": 2, "batch_tokens": 2048},
    ),
    Config(
        "tokens-8192",
        "shared session, 2 Python threads, sorted, ≤8192 tokens (~32 texts)",
        {"threads": 2, "batch_tokens": 8192},
    ),
    Config(
        "default-arena-off",
        "default, CPU memory arena off",
        {"threads": 2, "batch_tokens": 512},
        session={"enable_cpu_mem_arena": False},
    ),
    Config(
        "default-mempattern-on",
        "default, memory pattern on",
        {"threads": 2, "batch_tokens": 512},
        session={"enable_mem_pattern": True},
    ),
]


class _TextOnly(HTMLParser):
    """Collects the text of a page, one list of strings per block element, skipping code and navigation.

    The text of h1/h2 headings is kept apart too, as queries.
    """

    BLOCKS = frozenset({"p", "pre", "li", "h1", "h2", "h3", "h4", "dt", "dd", "td", "div", "section"})
    SKIP = frozenset({"script", "style", "nav"})

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[list[str]] = [[]]
        self.headings: list[str] = []
        self._skipping = 0
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skipping += tag in self.SKIP
        if tag in self.BLOCKS:
            self.blocks.append([])
        if tag in ("h1", "h2"):
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        self._skipping -= tag in self.SKIP
        if tag in self.BLOCKS:
            self.blocks.append([])
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()).rstrip("¶ "))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.blocks[-1].append(data)
            if self._heading is not None:
                self._heading.append(data)


def corpus(count: int) -> tuple[list[str], list[str]]:
    """Return `count` distinct texts of at most 150 words and 50 queries, from the installed docs.

    Raises SystemExit if the docs hold fewer distinct pieces than `count`.
    """
    pieces: dict[str, None] = {}
    headings: dict[str, None] = {}
    for folder in DOCS:
        for path in sorted(glob.glob(f"{folder}/**/*.html", recursive=True)):
            parser = _TextOnly()
            with open(path, encoding="utf-8") as page:
                parser.feed(page.read())
            pieces.update(dict.fromkeys(_cut([" ".join(block).split() for block in parser.blocks])))
            headings.update(dict.fromkeys(h for h in parser.headings if len(h.split()) >= 2))
            if len(pieces) >= count:
                texts = list(pieces)[:count]
                # Every few headings, so the queries span all the docs read, not only the first pages.
                step = max(1, len(headings) // QUERIES)
                return texts, list(headings)[::step][:QUERIES]
    sys.exit(
        f"only {len(pieces)} distinct texts under {', '.join(DOCS)}: ask for fewer with --texts, "
        "or apt-get install python-flask-doc python-sqlalchemy-doc python-django-doc"
    )


def _cut(blocks: list[list[str]]) -> list[str]:
    """Return one page's words as pieces of at most PIECE_WORDS words, ending at block boundaries."""
    pieces: list[str] = []
    words: list[str] = []
    for block in filter(None, blocks):
        if words and len(words) + len(block) > PIECE_WORDS:
            pieces.append(" ".join(words))
            words = []
        while len(block) > PIECE_WORDS:
            pieces.append(" ".join(block[:PIECE_WORDS]))
            block = block[PIECE_WORDS:]
        words.extend(block)
    if words:
        pieces.append(" ".join(words))
    return pieces


def measure(config: Config, count: int, vectors: str | None = None) -> dict[str, float]:
    """Return one timed run of `config` over `count` texts: seconds, CPU seconds, tokens, load time, peak RSS.

    With `vectors`, also saves the texts' and the queries' vectors there (an .npz file).
    """
    import numpy as np

    from docshelf.embed import local

    _patch_session_options(local, config.session)
    texts, queries = corpus(count)
    embedder = local.LocalMiniLM(**config.options)
    embed = _feeder(config, embedder, local.LocalMiniLM)
    started = time.perf_counter()
    embedder._load()  # builds the optimized graph if this DOCSHELF_HOME has none yet
    load = time.perf_counter() - started
    embed(texts[:16])  # warms the allocator, outside the clock
    started, cpu_started = time.perf_counter(), time.process_time()
    docs = embed(texts)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert docs.shape == (count, local.DIM)
    if config.options.get("optimize", True) and not embedder.optimized:
        sys.exit(f"{config.name}: the optimized graph did not load (see the log above)")
    if vectors:
        np.savez(vectors, docs=docs, queries=np.stack([embedder.embed_query(q) for q in queries]))
    tokenizer = local._truncating_tokenizer()
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "cpu": cpu, "tokens": tokens, "load": load, "rss_mb": peak / 1024}


def _patch_session_options(local: Any, changes: dict[str, Any]) -> None:
    """Make LocalMiniLM's sessions use `changes` on top of docshelf's options (in this process only)."""
    import onnxruntime as ort

    docshelf_options = local.session_options

    def changed(intra_op_threads: int) -> Any:
        options = docshelf_options(intra_op_threads)
        for name, value in changes.items():
            if name.startswith("session."):
                options.add_session_config_entry(name, value)
            elif name == "execution_mode":
                options.execution_mode = getattr(ort.ExecutionMode, value)
            else:
                setattr(options, name, value)
        return options

    local.session_options = changed


def _feeder(config: Config, embedder: Any, factory: Callable[..., Any]) -> Callable[[list[str]], Any]:
    """Return a function that embeds a list of texts through `embedder` the way `config` says.

    `factory` makes the second embedder of the `two-instances` feed.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    if config.feed == "one-call":
        return embedder.embed_documents
    if config.feed == "slices":
        return lambda texts: np.concatenate(
            [
                embedder.embed_documents(texts[i : i + config.slice])
                for i in range(0, len(texts), config.slice)
            ]
        )
    if config.feed == "slices-2t":

        def two_threads(texts: list[str]) -> Any:
            slices = [texts[i : i + config.slice] for i in range(0, len(texts), config.slice)]
            with ThreadPoolExecutor(2) as pool:
                return np.concatenate(list(pool.map(embedder.embed_documents, slices)))

        return two_threads
    if config.feed == "two-instances":
        second = factory(**config.options)

        def two_sessions(texts: list[str]) -> Any:
            out = np.empty((len(texts), embedder.dim), dtype=np.float32)

            def half(which: Any, start: int) -> None:
                out[start::2] = which.embed_documents(texts[start::2])

            workers = [threading.Thread(target=half, args=(e, i)) for i, e in enumerate((embedder, second))]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            return out

        return two_sessions
    raise ValueError(f"unknown feed {config.feed!r}")


def run_child(name: str, count: int, home: str, vectors: str | None = None) -> dict[str, float]:
    """Return `measure` of the named configuration, run in a fresh process with DOCSHELF_HOME `home`."""
    command = [sys.executable, __file__, "--child", name, "--texts", str(count)]
    if vectors:
        command += ["--vectors", vectors]
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env={**os.environ, "DOCSHELF_HOME": home}
    )
    if result.returncode != 0:
        sys.exit(f"configuration {name} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def report(rounds: dict[str, list[dict[str, float]]], count: int) -> str:
    """Return the Markdown table of speed: the median round of each configuration."""
    lines = [
        "| configuration | chunks/s | tokens/s | seconds | CPU s | load s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    by_name = {config.name: config for config in CONFIGS}
    for name, runs in rounds.items():
        seconds = statistics.median(run["seconds"] for run in runs)
        cpu = statistics.median(run["cpu"] for run in runs)
        load = statistics.median(run["load"] for run in runs)
        rss = max(run["rss_mb"] for run in runs)
        tokens = runs[0]["tokens"]
        lines.append(
            f"| {by_name[name].label} | {count / seconds:.1f} | {tokens / seconds:.0f} "
            f"| {seconds:.1f} | {cpu:.1f} | {load:.2f} | {rss:.0f} |"
        )
    return "\n".join(lines)


def compare(before: str, others: dict[str, str]) -> str:
    """Return the Markdown table of how far the vectors saved in each of `others` are from `before`'s."""
    import numpy as np

    old = np.load(before)
    old_ranks = _nearest(old["queries"], old["docs"])
    columns: list[list[str]] = []
    for path in others.values():
        new = np.load(path)
        cosines = np.sum(old["docs"] * new["docs"], axis=1)
        query_cosines = np.sum(old["queries"] * new["queries"], axis=1)
        new_ranks = _nearest(new["queries"], new["docs"])
        queries = len(old_ranks)
        overlap = np.mean([len(set(a) & set(b)) / TOP for a, b in zip(old_ranks, new_ranks, strict=True)])
        columns.append(
            [
                f"{cosines.min():.6f}",
                f"{cosines.mean():.6f}",
                f"{query_cosines.min():.6f}",
                f"{int(np.sum(np.all(old_ranks == new_ranks, axis=1)))}/{queries}",
                f"{int(np.sum(old_ranks[:, 0] == new_ranks[:, 0]))}/{queries}",
                f"{overlap:.3f}",
            ]
        )
    labels = [
        "texts: cosine to before's vector, min",
        "texts: cosine to before's vector, mean",
        "queries: cosine to before's vector, min",
        f"queries whose {TOP} nearest texts come in before's order",
        "queries whose nearest text is before's",
        f"mean overlap with before's {TOP} nearest texts",
    ]
    lines = [f"| vectors vs before | {' | '.join(others)} |", "|---|" + "---:|" * len(others)]
    lines += [f"| {label} | {' | '.join(row)} |" for label, *row in zip(labels, *columns, strict=True)]
    return "\n".join(lines)


def _nearest(queries: Any, docs: Any) -> Any:
    """Return, for each query, the indexes of its TOP nearest texts, nearest first."""
    import numpy as np

    return np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :TOP]


def _median_ratio(before: list[dict[str, float]], other: list[dict[str, float]], key: str) -> float:
    """Return the median of `key` over the rounds of `before`, divided by its median over `other`'s."""
    return statistics.median(r[key] for r in before) / statistics.median(r[key] for r in other)


def _first_optimized(names: list[str]) -> str:
    """Return the first configuration among `names` that runs the optimized graph (it builds the cache)."""
    by_name = {config.name: config for config in CONFIGS}
    return next((n for n in names if by_name[n].options.get("optimize", True)), names[0])


def main() -> None:
    """Run the benchmark, or one measurement when called as a child."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only",
        nargs="*",
        help="configuration names (default: before after)",
        choices=[c.name for c in CONFIGS],
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--vectors", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        config = next(c for c in CONFIGS if c.name == args.child)
        print(json.dumps(measure(config, args.texts, args.vectors)))
        return
    names = args.only or [BEFORE.name, AFTER.name, EXACT.name]
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    # One DOCSHELF_HOME for the run: the first child to need the optimized graph builds it (in its load
    # time), the others read it, as every docshelf run after the first does; the user's home is not touched.
    with tempfile.TemporaryDirectory(prefix="docshelf-bench-embed-") as home:
        vectors = {name: os.path.join(home, f"{name}.npz") for name in names}
        for round_number in range(args.rounds):
            for name in names:
                saved = vectors[name] if round_number == 0 else None
                rounds[name].append(run_child(name, args.texts, home, saved))
                print(
                    f"round {round_number + 1}/{args.rounds} {name}: {rounds[name][-1]}",
                    file=sys.stderr,
                )
        print(
            f"{args.texts} texts, {rounds[names[0]][0]['tokens']:.0f} tokens (truncated to 256, special "
            f"tokens included); median of {args.rounds} rounds; peak RSS is the largest round's; load s is "
            "the model's loading before the first embed, in a fresh process (the first load of the "
            "optimized graph in a fresh DOCSHELF_HOME also builds it; round 1 of "
            f"{_first_optimized(names)}: {rounds[_first_optimized(names)][0]['load']:.2f} s)\n"
        )
        print(report(rounds, args.texts))
        if BEFORE.name in names and len(names) > 1:
            before = rounds[BEFORE.name]
            print()
            for name in names[1:]:
                speed = _median_ratio(before, rounds[name], "seconds")
                cpu = _median_ratio(before, rounds[name], "cpu")
                print(f"{name} / before: {speed:.2f}× the throughput, {cpu:.2f}× less CPU per text")
            print()
            print(compare(vectors[BEFORE.name], {name: vectors[name] for name in names[1:]}))


if __name__ == "__main__":
    main()
