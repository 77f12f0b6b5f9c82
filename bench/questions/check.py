"""Check bench/questions/own.jsonl, fresh.jsonl and django.jsonl against the installed docs — no search, no scoring.

    python bench/questions/check.py

Serves each set's sites (bench/docsite.py OWN_SITES: sqlalchemy, jinja2;
FRESH_SITES: drf, celery; DJANGO_SITES: django) on 127.0.0.1 and checks that
each file still has its frozen sha256, that every answer page is a file on disk
(a page id ending in `/`, e.g. `drf/api-guide/throttling/` or
`django/ref/contrib/admin/`, is that folder's index.html)
and is served with status 200, that every `section` anchor exists in its page,
and the writing rules that can be checked mechanically (1-3 answers with the
site prefix, the section on the first answer, no index, changelog, release-notes
or announcement pages, at most 3 questions per first-answer page). Exits 1 on
any problem.
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
from docsite import DJANGO_SITES, FRESH_SITES, OWN_SITES, docroot, serve  # noqa: E402

# file -> (frozen sha256, site prefix -> docs folder); see README.md
SETS = {
    "own.jsonl": ("9344a510456bae9d4da0cee533e631c4cb88ba167c44bdc7fac59b90d11d87d9", OWN_SITES),
    "fresh.jsonl": ("30f6ed850df49159df7282234132b0e97d65d3401937a36f147a3c248a345eb7", FRESH_SITES),
    "django.jsonl": ("f397c265f977bc24de3e6107c593926ac924afb09e6873c7c0d7f3952db9aaa7", DJANGO_SITES),
}
KINDS = {"api", "howto", "concept", "troubleshoot"}
NOT_ANSWERS = re.compile(
    r"(genindex|py-modindex|search\.html|contents\.html|changelog|changes\.html|_modules|index\.html$"
    r"|release-notes|announcement|whatsnew|/history/|/releases/)"
)


def page_file(page: str, sites: dict[str, str]) -> Path:
    """The file on disk of a page id: `site/path.html`, or `site/folder/` = that folder's index.html (MkDocs)."""
    site, _, rest = page.partition("/")
    path = Path(sites[site]) / rest
    return path / "index.html" if page.endswith("/") else path


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


def served_problems(q: dict, base: str, sites: dict[str, str]) -> list[str]:
    page, _, anchor = q["section"].partition("#")
    problems = []
    for answer in q["answers"]:
        if answer.partition("/")[0] not in sites or not page_file(answer, sites).is_file():
            problems.append(f"{answer}: no such file")
            continue
        with urllib.request.urlopen(f"{base}/{answer}") as response:
            body = response.read()
            if response.status != 200:
                problems.append(f"{answer}: HTTP {response.status}")
        if answer == page and not lxml.html.fromstring(body).xpath(f'//*[@id="{anchor}"]'):
            problems.append(f"{page} has no id={anchor!r}")
    return problems


def check_set(name: str, frozen_sha256: str, sites: dict[str, str]) -> list[str]:
    data = (HERE / name).read_bytes()
    questions = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    problems = []
    if hashlib.sha256(data).hexdigest() != frozen_sha256:
        problems.append(f"{name} differs from the frozen version (see README.md)")
    if len({q["id"] for q in questions}) != len(questions):
        problems.append("duplicate ids")
    for page, n in collections.Counter(q["answers"][0] for q in questions).items():
        if n > 3:
            problems.append(f"{page} is the first answer of {n} questions")
    with tempfile.TemporaryDirectory() as tmp, serve(docroot(Path(tmp), sites)) as base:
        for q in questions:
            problems += [f"{q['id']}: {p}" for p in rule_problems(q) + served_problems(q, base, sites)]
    counts = collections.Counter((q["site"], q["kind"]) for q in questions)
    print(name)
    for site in sites:
        print(site, {kind: counts[site, kind] for kind in sorted(KINDS)})
    ok = f"ok: {len(questions)} questions, every answer page served, every section anchor found"
    print("\n".join(f"{name}: {p}" for p in problems) or ok)
    return problems


def main() -> int:
    problems = []
    for name, (frozen_sha256, sites) in SETS.items():
        problems += check_set(name, frozen_sha256, sites)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
