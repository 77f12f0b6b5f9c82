"""Default source names: short identifiers made from where a source comes from."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from docshelf.crawl.local import is_local, local_path

_NOT_NAME = re.compile(r"[^a-z0-9]+")


def default_source_name(root: str) -> str:
    """Return a source name for `root`: host and path for a URL, base name for a folder or file.

    >>> default_source_name("https://flask.palletsprojects.com/en/stable/")
    'flask_palletsprojects_com_en_stable'
    >>> default_source_name("./My Docs")
    'my_docs'
    """
    if is_local(root):
        local = local_path(root)
        return sanitise(local.stem if local.is_file() else local.name)
    url = root.strip() if "://" in root else f"https://{root.strip()}"
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower().removeprefix("www.")
    path = re.sub(r"/index\.html?$", "/", parts.path)
    return sanitise(f"{host}{path}")


def sanitise(name: str) -> str:
    """Return `name` lowercased with every run of other characters than [a-z0-9] as one `_`."""
    return _NOT_NAME.sub("_", name.lower()).strip("_") or "source"
