"""Serve the Debian documentation sites on 127.0.0.1 for the benchmarks.

SITES are the dev set's sites (flask, requests, sqlite); OWN_SITES those of
bench/questions/own.jsonl (sqlalchemy, jinja2); FRESH_SITES those of
bench/questions/fresh.jsonl (Django REST framework, celery); DJANGO_SITES the large
Django docs that `bench/index.py --large` indexes beside sqlite.
"""

from __future__ import annotations

import functools
import http.server
import os
import socketserver
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SITES = {
    "flask": "/usr/share/doc/python-flask-doc/html",
    "requests": "/usr/share/doc/python-requests-doc/html",
    "sqlite": "/usr/share/doc/sqlite3",
}
OWN_SITES = {
    "sqlalchemy": "/usr/share/doc/python-sqlalchemy-doc/html",
    "jinja2": "/usr/share/doc/python-jinja2-doc/html",
}
FRESH_SITES = {
    "drf": "/usr/share/doc/python3-djangorestframework/html",
    "celery": "/usr/share/doc/python-celery-doc/html",
}
DJANGO_SITES = {
    "django": "/usr/share/doc/python-django-doc/html",
}
PACKAGES = {  # site prefix -> Debian package that installs it
    "flask": "python-flask-doc",
    "requests": "python-requests-doc",
    "sqlite": "sqlite3-doc",
    "sqlalchemy": "python-sqlalchemy-doc",
    "jinja2": "python-jinja2-doc",
    "drf": "python-djangorestframework-doc",
    "celery": "python-celery-doc",
    "django": "python-django-doc",
}
EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def docroot(folder: Path, sites: dict[str, str] = SITES) -> Path:
    """Make `folder` a docs root: one symlink per site prefix. Exits with the apt-get line when one is missing."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [PACKAGES[name] for name, path in sites.items() if not Path(path).is_dir()]
    if missing:
        raise SystemExit(
            "missing documentation packages; install them with:\n"
            f"  apt-get update && apt-get install -y {' '.join(missing)}"
        )
    for name, path in sites.items():
        link = folder / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path)
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def serve(folder: Path, port: int = 0) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=os.fspath(folder))
    server = _Server(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
