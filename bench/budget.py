"""Tokens an agent pays per call, before and after token budgets, on real questions over a real shelf.

For each question: `search_docs` as the agent called it before (k=8, Markdown capped at 12,000
characters) and after (max_tokens=2000, the MCP default), then `read_page` of the section that
answers it before (20 chunks from the anchor's, capped at 12,000 characters) and after
(`read_page(url#anchor)`, max_tokens=4000, the MCP default). Tokens are o200k_base. "answer
shown" says whether a passage of an answering page was in what the agent saw (search), and
whether the answering section's heading was in the page read (read).

    python bench/budget.py --db bench/out/dev.db            # the dev set's first questions of each site
    python bench/budget.py --db dev.db --n 20 --questions ../shared/eval/dev/questions.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from docshelf.budget.tokens import get_token_counter
from docshelf.embed import get_embedder
from docshelf.search import HybridSearcher
from docshelf.shelf_tools import DEFAULT_READ_TOKENS, DEFAULT_SEARCH_TOKENS, NotOnShelfError, ShelfTools
from docshelf.store import open_store

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev" / "questions.jsonl"


def pick(questions: list[dict], n: int) -> list[dict]:
    """Return `n` questions spread evenly over the sites, in file order within each."""
    by_site: dict[str, list[dict]] = {}
    for q in questions:
        by_site.setdefault(q["site"], []).append(q)
    picked: list[dict] = []
    while len(picked) < n and any(by_site.values()):
        for site in list(by_site):
            if by_site[site] and len(picked) < n:
                picked.append(by_site[site].pop(0))
    return picked


def page_url(tools: ShelfTools, path: str) -> str | None:
    """Return the stored URL of a question's page path (`flask/api.html`), whatever host the shelf was crawled from."""
    site = path.split("/", 1)[0]
    for stats in tools.store.list_sources():
        if stats.source.name == site:
            root = stats.source.root.split("/" + site + "/")[0]
            return f"{root}/{path}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--questions", type=Path, default=EVAL)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--search-tokens", type=int, default=DEFAULT_SEARCH_TOKENS)
    parser.add_argument("--read-tokens", type=int, default=DEFAULT_READ_TOKENS)
    args = parser.parse_args()

    store = open_store(args.db)
    tools = ShelfTools(store, HybridSearcher(store, lambda: get_embedder(None)))
    count = get_token_counter().count
    questions = pick([json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()], args.n)
    rows = []
    for q in questions:
        answers = {page_url(tools, a) for a in q["answers"]}
        before = tools.search_docs(q["question"], k=8)
        after = tools.search_docs(q["question"], max_tokens=args.search_tokens)
        section = page_url(tools, q["section"].split("#")[0]) + "#" + q["section"].split("#", 1)[1]
        anchor = section.split("#", 1)[1]
        old_read = tools.read_page(section).to_markdown()
        try:
            new_read = tools.read_page_text(section, args.read_tokens).to_markdown()
        except NotOnShelfError:  # an id that is no heading of the stored page: read it from the top
            new_read = tools.read_page_text(section.split("#")[0], args.read_tokens).to_markdown()
        rows.append({
            "id": q["id"],
            "search_before": count(before.to_markdown()), "search_after": count(after.to_markdown()),
            "shown_before": len(before.shown_passages()), "shown_after": len(after.shown_passages()),
            "hit_before": any(p.ref.page_url in answers for p in before.shown_passages()),
            "hit_after": any(p.ref.page_url in answers for p in after.shown_passages()),
            "read_before": count(old_read), "read_after": count(new_read),
            "section_before": f"#{anchor}" in old_read, "section_after": f"{{#{anchor}}}" in new_read,
        })
    store.close()

    print("| question | search tokens before → after | passages shown | answer page shown | "
          "read tokens before → after | answer section in read |")
    print("|---|---:|---:|:---:|---:|:---:|")
    for r in rows:
        print(f"| {r['id']} | {r['search_before']:,} → {r['search_after']:,} | {r['shown_before']} → "
              f"{r['shown_after']} | {'yes' if r['hit_before'] else 'no'} → {'yes' if r['hit_after'] else 'no'} | "
              f"{r['read_before']:,} → {r['read_after']:,} | "
              f"{'yes' if r['section_before'] else 'no'} → {'yes' if r['section_after'] else 'no'} |")
    mean = lambda key: statistics.mean(r[key] for r in rows)
    total = lambda key: sum(r[key] for r in rows)
    print(f"| **mean / count** | {mean('search_before'):,.0f} → {mean('search_after'):,.0f} | "
          f"{mean('shown_before'):.1f} → {mean('shown_after'):.1f} | {total('hit_before')} → {total('hit_after')} "
          f"of {len(rows)} | {mean('read_before'):,.0f} → {mean('read_after'):,.0f} | "
          f"{total('section_before')} → {total('section_after')} of {len(rows)} |")
    print(f"\nmax tokens per call: search {max(r['search_before'] for r in rows):,} → "
          f"{max(r['search_after'] for r in rows):,} (budget {args.search_tokens:,}); read "
          f"{max(r['read_before'] for r in rows):,} → {max(r['read_after'] for r in rows):,} "
          f"(budget {args.read_tokens:,})")


if __name__ == "__main__":
    main()
