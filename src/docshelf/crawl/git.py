"""The crawl of a Git repository: a shallow clone in docshelf's cache, its documentation files as pages.

    docshelf add https://github.com/org/repo --ref v2.1 --path docs/
    docshelf add git+ssh://git@example.com/org/repo.git
    docshelf add file:///srv/git/repo.git
    docshelf add ./my-clone --ref main          (a local clone: read at a ref, not the work tree)

The clone is made with the `git` command into `DOCSHELF_HOME/git/`, in a temporary
folder that replaces the cache entry only once complete, so a failed clone leaves
nothing behind. A refresh fetches the ref again and re-reads only the files
`git diff --name-status` lists between the stored commit and the new one; the rest
are reported unchanged (their ETag is the blob id, so a page stored from another
commit is still recognised).

Pages are named by the forge's web view of the file at the commit it was read at
(`https://github.com/org/repo/blob/<sha>/docs/x.md`, a permalink) when the host is a
known forge, else by the repository URL and the file's path. A file a refresh finds
unchanged keeps its page and URL (that commit shows the same file), so its chunks and
vectors stay untouched; a changed file's page moves to the new commit's URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from docshelf.crawl.base import CrawlOptions, CrawlOutcome, CrawlReport, Validators
from docshelf.crawl.local import KINDS, SKIPPED_FOLDERS, document_outcome, is_document, is_local, local_path
from docshelf.crawl.scope import matches_globs
from docshelf.errors import ConfigError
from docshelf.extract.heading_anchors import add_heading_anchors, github_slug

# Web views of a file at a ref, per forge ({web} is https://host/org/repo).
FORGES = {
    "github.com": "{web}/blob/{ref}/{path}",
    "gitlab.com": "{web}/-/blob/{ref}/{path}",
    "bitbucket.org": "{web}/src/{ref}/{path}",
}
DOC_FOLDERS = ("docs", "doc", "documentation")
GIT_TIMEOUT = 300.0
_SCP_LIKE = re.compile(r"^[\w.-]+@([\w.-]+):(?!//)(.+)$")
_FATAL = re.compile(r"^(?:fatal|error): (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Repository:
    """Where a repository is: what to clone, and how to name its files."""

    clone_url: str
    """What `git fetch` is given."""
    web: str | None
    """`https://host/org/repo` on a known forge, else None."""
    label: str
    """The repository as the user named it, for messages and the cache name."""


def is_git_source(root: str, options: CrawlOptions | None = None) -> bool:
    """Return True when `root` names a Git repository rather than a website or a folder.

    A `git+…://`, `ssh://` or `git://` URL, `user@host:path`, a URL ending in `.git`, a
    forge's repository page (`https://github.com/org/repo`), a `file://` URL of a
    repository, or a local repository given with a ref.
    """
    root = root.strip()
    if root.startswith(("git+", "ssh://", "git://")) or _SCP_LIKE.match(root):
        return True
    if "://" in root and not root.lower().startswith("file:"):
        parts = urlsplit(root)
        segments = [s for s in parts.path.split("/") if s]
        if parts.path.rstrip("/").endswith(".git"):
            return True
        return (parts.hostname or "").removeprefix("www.") in FORGES and len(segments) == 2
    if not is_local(root):
        return False
    path = local_path(root)
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir()
    return bare or path.suffix == ".git" or ((path / ".git").exists() and options is not None and options.ref is not None)


def repository(root: str) -> Repository:
    """Return how to clone and cite the repository `root` names."""
    root = root.strip().rstrip("/")
    clone = root.removeprefix("git+")
    if is_local(root) and not root.lower().startswith("file:"):
        clone = local_path(root).as_uri()
    scp = _SCP_LIKE.match(clone)
    if scp:
        host, path = scp.group(1), scp.group(2)
    else:
        parts = urlsplit(clone)
        host, path = parts.hostname or "", parts.path
    host = host.lower().removeprefix("www.")
    web = None
    if host in FORGES:
        repo_path = "/".join(s for s in path.removesuffix(".git").split("/") if s)
        web = f"https://{host}/{repo_path}"
        if clone.startswith(("http://", "https://")) and not clone.endswith(".git"):
            clone = f"{web}.git"
    return Repository(clone_url=clone, web=web, label=root)


def file_url(repo: Repository, ref: str | None, path: str, commit: str | None = None) -> str:
    """Return the URL a file of the repository is stored and cited under.

    On a known forge, the web view of the file at `commit` (a permalink), else at `ref`;
    elsewhere the repository URL and the path (with `?ref=` when a ref was asked for).
    """
    if repo.web is not None:
        host = urlsplit(repo.web).hostname or ""
        return FORGES[host].format(web=repo.web, ref=commit or ref or "HEAD", path=path)
    base = repo.clone_url if "://" in repo.clone_url else f"ssh://{repo.clone_url.replace(':', '/', 1)}"
    return f"{base.rstrip('/')}/{path}" if ref is None else f"{base.rstrip('/')}/{path}?ref={ref}"


def stored_paths(repo: Repository, urls: Iterable[str]) -> dict[str, str]:
    """Return the repository path of each stored page URL of this repository's forge (path → URL)."""
    if repo.web is None:
        return {}
    template = FORGES[urlsplit(repo.web).hostname or ""]
    pattern = re.compile(re.escape(template).replace(re.escape("{web}"), re.escape(repo.web))
                         .replace(re.escape("{ref}"), "[^/]+").replace(re.escape("{path}"), "(.+)") + "$")
    return {match.group(1): url for url in urls if (match := pattern.match(url))}


def page_url(repo: Repository, ref: str | None, commit: str, path: str, blob: str,
             stored: dict[str, str], validators: Validators | None) -> tuple[str, bool]:
    """Return the URL of a file's page and whether its stored page is still current.

    A file whose stored page holds the same blob keeps that page's URL (the permalink of the
    commit it was read at, which shows the same file); a new or changed file is named at `commit`.
    """
    old = stored.get(path)
    if old is None and repo.web is None:
        old = file_url(repo, ref, path)
    if old is not None:
        kept = validators(old) if validators else None
        if kept and kept[0] == f'"{blob}"':
            return old, True
    return file_url(repo, ref, path, commit), False


async def crawl_repository(
    root: str,
    options: CrawlOptions,
    report: CrawlReport,
    validators: Validators | None = None,
    since_commit: str | None = None,
    stored_urls: Iterable[str] = (),
    cache: Path | None = None,
) -> AsyncGenerator[CrawlOutcome, None]:
    """Yield one outcome per documentation file of the repository at `root`, sorted by path.

    Raises (from the first iteration step):
        ConfigError: git cannot clone or fetch (bad URL, no access, unknown ref), with git's reason;
            or `--path` names no folder of the repository.
    """
    from docshelf.config import home

    repo = repository(root)
    checkout = (cache or home() / "git") / _cache_name(repo)
    commit, changed = await asyncio.to_thread(_checkout, repo, options.ref, checkout, since_commit)
    report.discovered_by, report.commit, report.ref = "git", commit, options.ref
    files = await asyncio.to_thread(_blobs, checkout)
    docs_root = _docs_root(checkout, set(files), options.path)
    date = (await asyncio.to_thread(_git, checkout, "log", "-1", "--format=%cD")).strip() or None
    stored = stored_paths(repo, stored_urls)
    taken = 0
    for path in sorted(files):
        if not _in_docs(path, docs_root) or not is_document(checkout / path, options.include_pdf or False):
            continue
        url, current = page_url(repo, options.ref, commit, path, files[path], stored, validators)
        if not matches_globs((path, url), options.include, options.exclude):
            continue
        if options.max_pages is not None and taken >= options.max_pages:
            return
        taken += 1
        if current and (changed is None or path not in changed):
            yield CrawlOutcome(url, not_modified=True)
            continue
        yield await asyncio.to_thread(_read, checkout / path, url, f'"{files[path]}"', date, path.count("/"))
    report.complete = True


def _read(path: Path, url: str, etag: str, date: str | None, depth: int) -> CrawlOutcome:
    """Return the outcome of one file of the checkout; Markdown headings get the ids forges give them."""
    outcome = document_outcome(url, KINDS[path.suffix.lower()], path.read_bytes(), etag, date, depth)
    if outcome.fetched is not None and outcome.fetched.kind == "markdown":
        # GitHub, GitLab and Gitea name a heading's anchor alike, so `blob/…/x.md#anchor` lands on the section.
        outcome.fetched.text = add_heading_anchors(outcome.fetched.text, github_slug)
    return outcome


def _cache_name(repo: Repository) -> str:
    """Return the cache folder's name: readable, and distinct per clone URL."""
    digest = hashlib.sha256(repo.clone_url.encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9]+", "-", PurePosixPath(urlsplit(repo.clone_url).path).name.removesuffix(".git"))
    return f"{stem.strip('-') or 'repo'}-{digest}"


def _checkout(repo: Repository, ref: str | None, checkout: Path, since: str | None) -> tuple[str, set[str] | None]:
    """Fetch `ref` (shallow) into the cached checkout, cloning it first if needed; return the commit and changes.

    The changes are the paths `git diff --name-status` lists between `since` and the new
    commit, or None when there is no stored commit to compare with.
    """
    wanted = ref or "HEAD"
    if not (checkout / ".git").is_dir():
        _clone(repo, wanted, checkout)
        return _git(checkout, "rev-parse", "HEAD").strip(), None
    _git(checkout, "remote", "set-url", "origin", repo.clone_url)
    _fetch(repo, checkout, wanted)
    new = _git(checkout, "rev-parse", "FETCH_HEAD").strip()
    changed = _changes(checkout, since, new) if since else None
    _git(checkout, "checkout", "-q", "--force", "--detach", new)
    return new, changed


def _clone(repo: Repository, ref: str, checkout: Path) -> None:
    """Make a shallow checkout of `ref` at `checkout`, or nothing at all: it is built aside and moved in whole."""
    checkout.parent.mkdir(parents=True, exist_ok=True)
    partial = checkout.with_name(f".{checkout.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
        _git(partial, "init", "-q")
        _git(partial, "remote", "add", "origin", repo.clone_url)
        _fetch(repo, partial, ref)
        _git(partial, "checkout", "-q", "--detach", "FETCH_HEAD")
        shutil.rmtree(checkout, ignore_errors=True)
        os.replace(partial, checkout)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _fetch(repo: Repository, checkout: Path, ref: str) -> None:
    try:
        _git(checkout, "fetch", "-q", "--depth", "1", "--no-tags", "origin", ref)
    except ConfigError as exc:
        raise ConfigError(f"cannot fetch {ref} of {repo.label}: {exc} — check the URL, your access and the ref") \
            from exc


def _changes(checkout: Path, since: str, new: str) -> set[str] | None:
    """Return the paths changed between two commits, or None when the old one is no longer in the cache."""
    try:
        _git(checkout, "cat-file", "-e", f"{since}^{{commit}}")
    except ConfigError:
        return None
    changed: set[str] = set()
    for line in _git(checkout, "diff", "--name-status", "--no-renames", since, new).splitlines():
        status, _, path = line.partition("\t")
        if status and path:
            changed.add(path)
    return changed


def _blobs(checkout: Path) -> dict[str, str]:
    """Return every file of the checked-out commit with its blob id."""
    files = {}
    for entry in _git(checkout, "ls-tree", "-r", "-z", "HEAD").split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            files[path] = parts[2]
    return files


def _docs_root(checkout: Path, files: set[str], path: str | None) -> str:
    """Return the folder holding the documentation ("" for the whole repository).

    `--path` wins; else the `docs_dir` of an `mkdocs.yml`, the folder of a Sphinx
    `conf.py`, or the first of `docs/`, `doc/`, `documentation/`; else the whole repository.
    """
    if path is not None:
        folder = path.strip("/")
        if folder and not any(f.startswith(f"{folder}/") or f == folder for f in files):
            raise ConfigError(f"--path {path}: no such folder in the repository")
        return folder
    if "mkdocs.yml" in files:
        match = re.search(r"^docs_dir:\s*['\"]?([^'\"\n]+)", (checkout / "mkdocs.yml").read_text(errors="replace"),
                          re.MULTILINE)
        return (match.group(1).strip() if match else "docs").strip("/")
    for folder in DOC_FOLDERS:
        for candidate in (f"{folder}/conf.py", f"{folder}/source/conf.py"):
            if candidate in files:
                return candidate.rsplit("/", 1)[0]
    return next((folder for folder in DOC_FOLDERS if any(f.startswith(f"{folder}/") for f in files)), "")


def _in_docs(path: str, docs_root: str) -> bool:
    """Return True for a file under the docs folder (or a README at the top), outside hidden and tooling folders."""
    parts = path.split("/")
    if any(part.startswith(".") or part in SKIPPED_FOLDERS for part in parts):
        return False
    if len(parts) == 1 and parts[0].lower().startswith("readme"):
        return True
    return not docs_root or path.startswith(f"{docs_root}/")


def _git(cwd: Path, *args: str) -> str:
    """Return the output of a git command run in `cwd`.

    Raises:
        ConfigError: git is missing, or the command failed (the message is git's own reason).
    """
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT,
                                env=env, check=False)
    except FileNotFoundError as exc:
        raise ConfigError("reading a Git repository needs the git command: install git") from exc
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"git {args[0]} took longer than {GIT_TIMEOUT:g}s") from exc
    if result.returncode != 0:
        fatal = _FATAL.findall(result.stderr)
        reason = fatal[0] if fatal else (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        raise ConfigError(reason.strip())
    return result.stdout
