"""A registry of packs is a folder with `index.json`: any static file server or object store can serve one.

`docshelf pack --all -o DIR/` writes the folder; `docshelf add https://host/shelves/NAME`
finds NAME in `https://host/shelves/index.json`, downloads the file it names and
checks it against the index's checksum (and then against its own); `docshelf
search-registry URL` lists what the index offers.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from docshelf import __version__
from docshelf.packs import PACK_SUFFIX, PackError, PackInfo, file_sha256
from docshelf.versions import order_key

INDEX_FILE = "index.json"
REGISTRY_FORMAT = "docshelf-registry"
REGISTRY_FORMAT_VERSION = 1
MAX_PACK_BYTES = 4 << 30
"""Downloads larger than this are refused (a registry that serves endless bytes cannot fill the disk)."""
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = f"docshelf/{__version__} (pack download)"


class RegistryError(PackError):
    """A registry or a pack URL cannot be used; the message names the URL and what to do."""


def write_index(folder: Path, packs: list[PackInfo]) -> Path:
    """Write `folder/index.json` listing `packs`, sorted by name (the same packs give the same bytes)."""
    index = {"format": REGISTRY_FORMAT, "format_version": REGISTRY_FORMAT_VERSION,
             "packs": sorted((p.to_json() for p in packs), key=lambda e: (e["name"], e["version"]))}
    path = folder / INDEX_FILE
    path.write_text(json.dumps(index, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


@dataclass
class RegistryEntry:
    """One pack a registry offers, with the URL of its file."""

    entry: dict[str, Any]
    url: str

    def to_json(self) -> dict[str, Any]:
        return {**self.entry, "url": self.url}


def is_url(location: str) -> bool:
    return urlsplit(location).scheme in ("http", "https")


def _client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT, follow_redirects=True, headers={"User-Agent": USER_AGENT})


def registry_entries(url: str) -> list[RegistryEntry]:
    """Return the packs the registry at `url` (its folder, or its index.json) offers.

    Raises:
        RegistryError: no index there, or not a docshelf registry.
    """
    index_url = url if url.endswith(".json") else url.rstrip("/") + "/" + INDEX_FILE
    index = _fetch_index(index_url)
    if index is None:
        raise RegistryError(f"no docshelf registry at {url}: {index_url} is missing or is not a registry index "
                            "(docshelf pack --all -o DIR/ writes one)")
    return [RegistryEntry(e, urljoin(index_url, e["file"])) for e in index["packs"]]


def _fetch_index(index_url: str) -> dict[str, Any] | None:
    """Return the registry index at `index_url`, or None when there is none (404, not JSON, another format)."""
    try:
        with _client() as client:
            response = client.get(index_url)
    except httpx.HTTPError as exc:
        raise RegistryError(f"cannot reach {index_url}: {exc}") from exc
    if response.status_code != 200:
        return None
    try:
        index = response.json()
    except ValueError:
        return None
    if not isinstance(index, dict) or index.get("format") != REGISTRY_FORMAT or not isinstance(index.get("packs"), list):
        return None
    return index


def find_in_registry(url: str) -> RegistryEntry | None:
    """Return the entry `https://host/shelves/NAME[@VERSION]` names in `https://host/shelves/index.json`, or None
    when that folder holds no registry (the URL is then an ordinary page to crawl).

    Raises:
        RegistryError: the registry exists but does not offer NAME.
    """
    base, _, wanted = url.rstrip("/").rpartition("/")
    if not wanted or wanted.endswith(PACK_SUFFIX):
        return None
    index_url = f"{base}/{INDEX_FILE}"
    index = _fetch_index(index_url)
    if index is None:
        return None
    name, _, version = wanted.partition("@")
    matches = [e for e in index["packs"] if e["name"] == name and (not version or e.get("version") == version)]
    if not matches:
        offered = ", ".join(e["name"] + (f"@{e['version']}" if e.get("version") else "") for e in index["packs"])
        raise RegistryError(f"the registry at {base}/ offers no {wanted}; it offers: {offered or 'nothing'}")
    newest = max(matches, key=lambda e: order_key(e.get("version") or ""))  # NAME alone: its newest version
    return RegistryEntry(newest, urljoin(index_url, newest["file"]))


@contextmanager
def downloaded(url: str, expected_sha256: str | None = None) -> Iterator[Path]:
    """Download a pack to a temporary file (removed afterwards), checking its size and, if given, its sha256.

    Raises:
        RegistryError: the download failed, was too large, or has other bytes than the registry promised.
    """
    with tempfile.TemporaryDirectory(prefix="docshelf-pack-") as folder:
        path = Path(folder) / (Path(urlsplit(url).path).name or "download")
        size = 0
        try:
            with _client() as client, client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise RegistryError(f"cannot download {url}: HTTP {response.status_code}")
                with path.open("wb") as fp:
                    for block in response.iter_bytes(1 << 20):
                        size += len(block)
                        if size > MAX_PACK_BYTES:
                            raise RegistryError(f"{url} is larger than {MAX_PACK_BYTES >> 30} GiB; refused")
                        fp.write(block)
        except httpx.HTTPError as exc:
            raise RegistryError(f"cannot download {url}: {exc}") from exc
        if expected_sha256 is not None and file_sha256(path) != expected_sha256:
            raise RegistryError(f"{url} is not the file the registry lists (sha256 differs from its index.json); "
                                "the registry may be mid-update: try again, or ask its owner to re-run docshelf pack --all")
        yield path
