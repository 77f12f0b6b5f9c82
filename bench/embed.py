"""Benchmark the bundled embedder: threading, batch planning and memory, printed as one Markdown table.

Each configuration runs in a fresh subprocess, so its peak RSS is its own,
and the configurations take turns round after round, so load from other work
on the machine spreads over all of them; a row reports the median round.
The corpus is the Flask documentation installed by Debian's python-flask-doc,
stripped of tags and cut into pieces of about 150 words, like real chunks.

    python bench/embed.py                  # ~1000 texts, 3 rounds, all configurations
    python bench/embed.py --texts 200 --rounds 1 --only default
"""

from __future__ import annotations

import argparse
import glob
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

FLASK_DOCS = "/usr/share/doc/python-flask-doc/html"
PIECE_WORDS = 150


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


CONFIGS = [
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
        "**default**: shared session, 2 Python threads, sorted, ≤512 tokens",
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
    """Collects the text of a page, one list of strings per block element, skipping code and navigation."""

    BLOCKS = frozenset({"p", "pre", "li", "h1", "h2", "h3", "h4", "dt", "dd", "td", "div", "section"})
    SKIP = frozenset({"script", "style", "nav"})

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[list[str]] = [[]]
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skipping += tag in self.SKIP
        if tag in self.BLOCKS:
            self.blocks.append([])

    def handle_endtag(self, tag: str) -> None:
        self._skipping -= tag in self.SKIP
        if tag in self.BLOCKS:
            self.blocks.append([])

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.blocks[-1].append(data)


def corpus(count: int) -> list[str]:
    """Return `count` texts of at most 150 words, cut from the Flask docs at block boundaries (cycled)."""
    pieces: list[str] = []
    for path in sorted(glob.glob(f"{FLASK_DOCS}/**/*.html", recursive=True)):
        parser = _TextOnly()
        with open(path, encoding="utf-8") as page:
            parser.feed(page.read())
        pieces.extend(_cut([" ".join(block).split() for block in parser.blocks]))
    if not pieces:
        sys.exit(f"no HTML under {FLASK_DOCS}: apt-get install python-flask-doc")
    return [pieces[i % len(pieces)] for i in range(count)]


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


def measure(config: Config, count: int) -> dict[str, float]:
    """Return one timed run of `config` over `count` texts: seconds, CPU seconds, tokens, peak RSS."""
    from docshelf.embed import local

    _patch_session_options(local, config.session)
    texts = corpus(count)
    embed = _feeder(config, local.LocalMiniLM)
    embed(texts[:16])  # loads the model and warms the allocator, outside the clock
    started, cpu_started = time.perf_counter(), time.process_time()
    vectors = embed(texts)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert vectors.shape == (count, local.DIM)
    tokenizer = local._truncating_tokenizer()
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "cpu": cpu, "tokens": tokens, "rss_mb": peak / 1024}


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


def _feeder(config: Config, factory: Callable[..., Any]) -> Callable[[list[str]], Any]:
    """Return a function that embeds a list of texts the way `config` says."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    embedder = factory(**config.options)
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


def run_child(name: str, count: int) -> dict[str, float]:
    """Return `measure` of the named configuration, run in a fresh Python process."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", name, "--texts", str(count)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"configuration {name} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def report(rounds: dict[str, list[dict[str, float]]], count: int) -> str:
    """Return the Markdown table: the median round of each configuration."""
    lines = [
        "| configuration | texts/s | tokens/s | seconds | CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_name = {config.name: config for config in CONFIGS}
    for name, runs in rounds.items():
        seconds = statistics.median(run["seconds"] for run in runs)
        cpu = statistics.median(run["cpu"] for run in runs)
        rss = max(run["rss_mb"] for run in runs)
        tokens = runs[0]["tokens"]
        lines.append(
            f"| {by_name[name].label} | {count / seconds:.1f} | {tokens / seconds:.0f} "
            f"| {seconds:.1f} | {cpu:.1f} | {rss:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark, or one measurement when called as a child."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only",
        nargs="*",
        help="configuration names",
        choices=[c.name for c in CONFIGS],
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        config = next(c for c in CONFIGS if c.name == args.child)
        print(json.dumps(measure(config, args.texts)))
        return
    names = args.only or [config.name for config in CONFIGS]
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        for name in names:
            rounds[name].append(run_child(name, args.texts))
            print(
                f"round {round_number + 1}/{args.rounds} {name}: {rounds[name][-1]}",
                file=sys.stderr,
            )
    print(
        f"{args.texts} texts, {rounds[names[0]][0]['tokens']:.0f} tokens (truncated to 256, special "
        f"tokens included); median of {args.rounds} rounds; peak RSS is the largest round's\n"
    )
    print(report(rounds, args.texts))


if __name__ == "__main__":
    main()
