"""Check bench/questions/own.jsonl against the installed docs — no search, no scoring.

    python bench/questions/check.py

Serves the own sites (bench/docsite.py OWN_SITES) on 127.0.0.1 and checks that
the file still has the frozen sha256, that every answer page is served with
status 200, that every `section` anchor exists in its page, and the writing
rules that can be checked mechanically (1-3 answers with the site prefix, the
section on the first answer, no index or changelog pages, at most 3 questions
per first-answer page). Exits 1 on any problem.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

import lxml.html

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from docsite import OWN_SITES, docroot, serve  # noqa: E402

QUESTIONS = HERE / "own.jsonl"
FROZEN_SHA256 = "9344a510456bae9d4da0cee533e631c4cb88ba167c44bdc7fac59b90d11d87d9"
KINDS = {"api", "howto", "concept", "troubleshoot"}
NOT_ANSWERS = re.compile(
    r"(genindex|py-modindex|search\.html|contents\.html|changelog|changes\.html|_modules|index\.html$)"
)


def rule_problems(q: dict) -> list[str]:
    page = q["section"].partition("#")[0]
    problems = []
    if q["kind"] not in KINDS:
        problems.append(f"unknown kind {q['kind']}")
    if not 1 <= len(q["answers"]) <= 3 or len(set(q["answers"])) != len(q["answers"]):
        problems.append("answers must be 1-3 distinct pages")
    if page != q["answers"][0]:
        problems.append("section is not on the first answer page")
    for answer in q["answers"]:
        if not answer.startswith(q["site"] + "/") or NOT_ANSWERS.search(answer):
            problems.append(f"not a valid answer page: {answer}")
    return problems


def served_problems(q: dict, base: str) -> list[str]:
    page, _, anchor = q["section"].partition("#")
    problems = []
    for answer in q["answers"]:
        with urllib.request.urlopen(f"{base}/{answer}") as response:
            body = response.read()
            if response.status != 200:
                problems.append(f"{answer}: HTTP {response.status}")
        if answer == page and not lxml.html.fromstring(body).xpath(f'//*[@id="{anchor}"]'):
            problems.append(f"{page} has no id={anchor!r}")
    return problems


def main() -> int:
    data = QUESTIONS.read_bytes()
    questions = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    problems = []
    if hashlib.sha256(data).hexdigest() != FROZEN_SHA256:
        problems.append("own.jsonl differs from the frozen version (see README.md)")
    if len({q["id"] for q in questions}) != len(questions):
        problems.append("duplicate ids")
    for page, n in collections.Counter(q["answers"][0] for q in questions).items():
        if n > 3:
            problems.append(f"{page} is the first answer of {n} questions")
    with tempfile.TemporaryDirectory() as tmp, serve(docroot(Path(tmp), OWN_SITES)) as base:
        for q in questions:
            problems += [f"{q['id']}: {p}" for p in rule_problems(q) + served_problems(q, base)]
    counts = collections.Counter((q["site"], q["kind"]) for q in questions)
    for site in OWN_SITES:
        print(site, {kind: counts[site, kind] for kind in sorted(KINDS)})
    ok = f"ok: {len(questions)} questions, every answer page served, every section anchor found"
    print("\n".join(problems) or ok)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
