"""Retrieval quality on the question sets: Hit@1/5/10 and MRR@10 for bm25, vector and hybrid.

    python bench/retrieval.py                     # both sets, dev then own
    python bench/retrieval.py --set dev           # flask, requests, sqlite (shelf bench/out/dev.db)
    python bench/retrieval.py --set own           # sqlalchemy, jinja2 (shelf bench/out/own.db)
    python bench/retrieval.py --set fresh         # Django REST framework, celery (bench/out/fresh.db)
    python bench/retrieval.py --set django        # the Django docs (bench/out/django.db)
    python bench/retrieval.py --set all           # the four
    python bench/retrieval.py --reindex           # rebuild the shelves first
    python bench/retrieval.py --questions FILE    # another question set (same format) over the dev sites
    python bench/retrieval.py --inbound-weights 0,1,2   # BM25 weight of the inbound link text (0: off)

Each set has its own shelf: all of its sites go into one shelf and every question
is searched in all of it, as ../shared/eval/README.md prescribes. Prints Markdown
tables per set, and query latency (p50/p95, query embedding included) for each mode.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from docshelf.embed import get_embedder
from docshelf.ingest import Ingestor
from docshelf.search import FusionSettings, HybridSearcher
from docshelf.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).parent))
from docsite import DJANGO_SITES, EVAL, FRESH_SITES, OWN_SITES, SITES, docroot, serve  # noqa: E402

OUT = Path(__file__).parent / "out"
PORT = 8731  # fixed, so a reused shelf keeps matching URLs across runs


@dataclass(frozen=True)
class QuestionSet:
    name: str
    questions: Path
    sites: dict[str, str]
    db: Path


SETS = {
    "dev": QuestionSet("dev", EVAL / "dev" / "questions.jsonl", SITES, OUT / "dev.db"),
    # frozen before any tuning; see bench/questions/README.md
    "own": QuestionSet("own", Path(__file__).parent / "questions" / "own.jsonl", OWN_SITES, OUT / "own.db"),
    # written blind after the ranking changes, to check them on sites nothing was tuned on
    "fresh": QuestionSet("fresh", Path(__file__).parent / "questions" / "fresh.jsonl", FRESH_SITES, OUT / "fresh.db"),
    # written blind on one large site (Django, ~690 pages); see bench/questions/README.md
    "django": QuestionSet("django", Path(__file__).parent / "questions" / "django.jsonl", DJANGO_SITES, OUT / "django.db"),
}


def load_scorer():
    spec = importlib.util.spec_from_file_location("score", EVAL / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_shelf(db: Path, sites: dict[str, str], port: int = PORT, settings=None) -> None:
    db.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp, serve(docroot(Path(tmp), sites), port) as base:
        store = SQLiteStore(db)
        ingestor = Ingestor(store, get_embedder, **({"settings": settings} if settings else {}))
        for name in sites:
            started = time.monotonic()
            summary = ingestor.add(f"{base}/{name}/", source=name)
            print(f"indexed {name}: {summary.pages_ok} pages, {summary.chunks} chunks, "
                  f"{summary.pages_failed} failed, {time.monotonic() - started:.1f}s", file=sys.stderr)
        store.close()


def run_mode(searcher: HybridSearcher, questions: list[dict], mode: str, k: int) -> tuple[list[dict], list[float]]:
    results, latencies = [], []
    for q in questions:
        started = time.perf_counter()
        hits = searcher.search(q["question"], k=k, mode=mode)
        latencies.append((time.perf_counter() - started) * 1000)
        results.append({"id": q["id"], "hits": [{"url": h.url} for h in hits]})
    return results, latencies


ABLATIONS: list[tuple[str, FusionSettings, tuple[float, ...] | None]] = [
    # name, fusion settings, BM25 weights of the FTS columns (title, headings, body, inbound); None: the store's
    ("hybrid (defaults)", FusionSettings(), None),
    ("lexical lead off", FusionSettings(lexical_lead=None), None),
    ("lexical lead 1.1", FusionSettings(lexical_lead=1.1), None),
    ("lexical lead 1.5", FusionSettings(lexical_lead=1.5), None),
    ("page priors off", FusionSettings(page_priors=False), None),
    ("rrf k=20", FusionSettings(rrf_k=20), None),
    ("candidates 50", FusionSettings(candidates=50), None),
    ("candidates 200", FusionSettings(candidates=200), None),
    ("page score: best + 0.2 decayed", FusionSettings(page_decay=0.2), None),
    ("bm25 fields flat (1, 1, 1, 1)", FusionSettings(), (1.0, 1.0, 1.0, 1.0)),
    ("bm25 fields (2, 1, 1, 1)", FusionSettings(), (2.0, 1.0, 1.0, 1.0)),
    ("bm25 fields (8, 4, 1, 1)", FusionSettings(), (8.0, 4.0, 1.0, 1.0)),
]
if "lead_vector_pages" in FusionSettings.__dataclass_fields__:  # absent in checkouts older than the rule
    ABLATIONS += [
        ("lead: BM25 margin alone", FusionSettings(lead_vector_pages=None), None),
        ("lead: backed by vector top 5", FusionSettings(lead_vector_pages=5), None),
        ("lead: backed by vector top 10", FusionSettings(lead_vector_pages=10), None),
        ("lead: backed by vector top 50", FusionSettings(lead_vector_pages=50), None),
    ]
if "vector_lead" in FusionSettings.__dataclass_fields__:
    ABLATIONS += [
        ("vector lead off", FusionSettings(vector_lead=None), None),
        ("vector lead 0.05", FusionSettings(vector_lead=0.05), None),
        ("vector lead 0.15", FusionSettings(vector_lead=0.15), None),
    ]


def table(rows: list[tuple[str, dict]]) -> str:
    lines = ["| run | n | Hit@1 | Hit@5 | Hit@10 | MRR@10 |", "|---|---:|---:|---:|---:|---:|"]
    for name, m in rows:
        lines.append(f"| {name} | {m['n']} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | {m['hit@10']:.3f} | {m['mrr@10']:.3f} |")
    return "\n".join(lines)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def score_modes(
    searcher: HybridSearcher, questions: list[dict], modes: list[str], scorer
) -> tuple[dict, list[str]]:
    """Score every mode; return {mode: score dict} and the latency table rows."""
    scored, latency_rows = {}, []
    for mode in modes:
        results, latencies = run_mode(searcher, questions, mode, 10)
        scored[mode] = scorer.score(questions, results)
        latency_rows.append(f"| {mode} | {percentile(latencies, 50):.1f} | {percentile(latencies, 95):.1f} |")
    return scored, latency_rows


def print_scores(qset: QuestionSet, questions: list[dict], scored: dict) -> None:
    print(f"## {qset.name}: {qset.questions} ({len(questions)} questions)\n")
    print(table([(mode, s["overall"]) for mode, s in scored.items()]))
    for group in ("by_kind", "by_site"):
        print(f"\n### {qset.name} · {group.replace('_', ' ')}\n")
        print(table([(f"{mode} · {key}", m) for mode, s in scored.items() for key, m in s[group].items()]))


def print_ablations(
    qset: QuestionSet, store: SQLiteStore, searcher: HybridSearcher, questions: list[dict], scorer
) -> None:
    rows = []
    defaults = store.bm25_weights
    for name, settings, weights in ABLATIONS:
        store.bm25_weights = weights or defaults
        results, _ = run_mode(HybridSearcher(store, lambda: searcher.embedder(), settings), questions, "hybrid", 10)
        s = scorer.score(questions, results)
        rows.append((name, s["overall"]))
        rows.append((f"{name} · howto", s["by_kind"].get("howto", s["overall"])))
    store.bm25_weights = defaults
    print(f"\n### {qset.name} · ablations (hybrid)\n")
    print(table(rows))


def print_inbound_weights(
    qset: QuestionSet, store: SQLiteStore, searcher: HybridSearcher, questions: list[dict], scorer, weights: list[float]
) -> None:
    """Score bm25 and hybrid with each multiplier of the inbound link text's bm25 (0 leaves its table out of the match)."""
    defaults = store.bm25_weights
    lines = ["| inbound weight | bm25 MRR@10 | bm25 howto | hybrid MRR@10 | hybrid howto | hybrid Hit@1 |",
             "|---:|---:|---:|---:|---:|---:|"]
    for weight in weights:
        store.bm25_weights = (*defaults[:3], weight)
        scored, _ = score_modes(searcher, questions, ["bm25", "hybrid"], scorer)
        bm25, hybrid = scored["bm25"], scored["hybrid"]
        lines.append(
            f"| {weight:g} | {bm25['overall']['mrr@10']:.3f} | {_howto(bm25)['mrr@10']:.3f} "
            f"| {hybrid['overall']['mrr@10']:.3f} | {_howto(hybrid)['mrr@10']:.3f} | {hybrid['overall']['hit@1']:.3f} |"
        )
    store.bm25_weights = defaults
    print(f"\n### {qset.name} · inbound link text weight (title, headings, body = {defaults[:3]})\n")
    print("\n".join(lines))


def _howto(scores: dict) -> dict:
    return scores["by_kind"].get("howto", scores["overall"])


def print_misses(qset: QuestionSet, questions: list[dict], hybrid: dict) -> None:
    print(f"\n### {qset.name} · hybrid: questions not answered at rank 1\n")
    for q in questions:
        rank = hybrid["ranks"][q["id"]]
        if rank != 1:
            print(f"- {q['id']} ({q['kind']}) rank {rank}: {q['question']} → {q['answers']}")


def evaluate(qset: QuestionSet, args: argparse.Namespace, scorer) -> None:
    """Index the set's sites if needed, then print its tables."""
    if args.reindex or not qset.db.exists():
        build_shelf(qset.db, qset.sites, args.port, index_settings(args))
    questions = load_questions(qset.questions)
    store = SQLiteStore(qset.db)
    attach_inbound_text = getattr(importlib.import_module("docshelf.ingest"), "attach_inbound_text", None)
    for stats in store.list_sources() if attach_inbound_text else ():  # None: a baseline checkout before it
        # a shelf built before inbound link text (m010) gets it as the next crawl would give it
        attach_inbound_text(store, stats.source.name)
    searcher = HybridSearcher(store, get_embedder)
    searcher.search("warm up the model", k=1)
    scored, latency_rows = score_modes(searcher, questions, args.modes.split(","), scorer)
    print_scores(qset, questions, scored)
    if args.ablations:
        print_ablations(qset, store, searcher, questions, scorer)
    if args.inbound_weights:
        print_inbound_weights(qset, store, searcher, questions, scorer,
                              [float(w) for w in args.inbound_weights.split(",")])
    print(f"\n### {qset.name} · query latency (ms, query embedding included)\n")
    print("| mode | p50 | p95 |\n|---|---:|---:|\n" + "\n".join(latency_rows))
    if args.misses and "hybrid" in scored:
        print_misses(qset, questions, scored["hybrid"])
    store.close()
    print()


def index_settings(args: argparse.Namespace):
    """Return the IndexSettings the chunking options ask for, or None for the defaults (any checkout)."""
    changed = {name: value for name, value in (("chunk_tokens", args.chunk_tokens), ("pack_sections", args.pack),
                                               ("embed_navigation", args.embed_navigation), ("dedup", args.dedup))
               if value is not None}
    if not changed:
        return None
    from docshelf.ingest import IndexSettings

    return IndexSettings(**changed)


def selected_sets(args: argparse.Namespace) -> list[QuestionSet]:
    """The sets named by --set; --questions / --db override the file / shelf of a single set."""
    name = args.set or ("dev" if args.questions or args.db else "both")
    names = {"both": ["dev", "own"], "all": ["dev", "own", "fresh", "django"]}.get(name, [name])
    if (args.questions or args.db) and len(names) > 1:
        raise SystemExit("--questions and --db apply to one set: add --set dev, own, fresh or django")
    sets = [SETS[n] for n in names]
    if args.questions or args.db:
        only = sets[0]
        sets = [QuestionSet(only.name, args.questions or only.questions, only.sites, args.db or only.db)]
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=["dev", "own", "fresh", "django", "both", "all"], default=None,
                        help="question set(s) to run: both = dev and own, all = the four "
                             "(default: both; dev when --questions or --db is given)")
    parser.add_argument("--questions", type=Path, help="another question file for the selected set's sites")
    parser.add_argument("--db", type=Path, help="shelf to use instead of bench/out/<set>.db")
    parser.add_argument("--reindex", action="store_true")
    parser.add_argument("--port", type=int, default=PORT, help="port to serve the sites on while indexing")
    chunking = parser.add_argument_group("chunking ablations (with --reindex; docshelf.ingest.IndexSettings)")
    chunking.add_argument("--chunk-tokens", type=int, help="chunk budget in embedded tokens")
    chunking.add_argument("--pack", action=argparse.BooleanOptionalAction, default=None, help="pack sections")
    chunking.add_argument("--embed-navigation", action=argparse.BooleanOptionalAction, default=None,
                          help="embed generated navigation pages")
    chunking.add_argument("--dedup", action=argparse.BooleanOptionalAction, default=None,
                          help="share vectors between repeated chunk bodies")
    parser.add_argument("--modes", default="bm25,vector,hybrid")
    parser.add_argument("--ablations", action="store_true", help="also print the ablation table")
    parser.add_argument("--inbound-weights", metavar="W,W,…",
                        help="also score bm25 and hybrid with these BM25 weights of the inbound link text (0: off)")
    parser.add_argument("--misses", action="store_true", help="list the questions hybrid misses at rank 1")
    args = parser.parse_args()

    OUT.mkdir(exist_ok=True)
    scorer = load_scorer()
    for qset in selected_sets(args):
        evaluate(qset, args, scorer)


if __name__ == "__main__":
    main()
