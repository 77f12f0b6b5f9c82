"""Shelf packs: one source as one file anyone can add without crawling or embedding.

A pack is a SQLite file (`*.docshelf`) with three tables: `manifest` (what the
pack is: format, docshelf version, source, root, crawl options and date,
embedding model, its dimension and file hash, counts, content checksum),
`pages` and `chunks` (each chunk with its vector as float32 bytes).

The same shelf content gives the same bytes: rows go in key order, JSON is
written canonically, no clock is read, and the file is written by one
transaction without a journal, so packs can be cached, compared and served
by any static file server. The content checksum (sha256 over the manifest
and every row, in order) is verified before anything is written to a shelf,
so a truncated or altered pack is refused whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw
import numpy as np

from docshelf import __version__
from docshelf.errors import ConfigError, DocshelfError, ModelMismatchError
from docshelf.ingest import Progress, attach_inbound_text, chunk_embedding_text
from docshelf.models import Chunk, Page, Source
from docshelf.store.base import SourcePage, SourceReplacer, Store, sections_from_json, sections_json
from docshelf.transfer import chunk_access, iter_pages
from docshelf.versions import source_key, split_key

PACK_SUFFIX = ".docshelf"
PACK_FORMAT = "docshelf-pack"
PACK_FORMAT_VERSION = 1
APPLICATION_ID = 0x64736B70
"""`PRAGMA application_id` of a pack ("dskp"), so `file` and docshelf can tell one from any SQLite file."""
SQLITE_MAGIC = b"SQLite format 3\x00"
REEMBED_BATCH = 64

_PAGE_COLUMNS = ("url", "title", "markdown", "content_hash", "etag", "last_modified", "fetched_at", "status",
                 "error", "prior")
_CHUNK_COLUMNS = ("url", "chunk_number", "title", "summary", "content", "heading_path", "anchor", "metadata",
                  "updated_dt", "embed_hash", "context", "enriched_by", "sections")
_SCHEMA = f"""
CREATE TABLE manifest(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE pages({", ".join(c + (" TEXT PRIMARY KEY" if c == "url" else "") for c in _PAGE_COLUMNS)}) WITHOUT ROWID;
CREATE TABLE chunks({", ".join(_CHUNK_COLUMNS)}, vector BLOB, PRIMARY KEY (url, chunk_number)) WITHOUT ROWID;
"""


class PackError(DocshelfError):
    """A pack cannot be read, is damaged, or does not fit this shelf; the message says which and what to do."""


class PackModelError(PackError, ModelMismatchError):
    """The pack's vectors are of another model than the shelf's; adding it with `reembed` embeds its text anew."""


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def model_file_sha256(model_id: str) -> str | None:
    """Return the sha256 pinned for the files of a local model (model and tokenizer), or None for a remote one."""
    from docshelf.embed.bundled import MODEL_SHA256, TOKENIZER_SHA256
    from docshelf.embed.local import LocalMiniLM

    if model_id == LocalMiniLM.model_id:
        return hashlib.sha256(f"{MODEL_SHA256}\n{TOKENIZER_SHA256}".encode()).hexdigest()
    return None


class _Digest:
    """The content checksum: sha256 over the manifest's entries and every row, in the order they are stored."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()

    def row(self, table: str, values: tuple, blob: bytes | None = None) -> None:
        self._sha.update(_canonical([table, list(values)]).encode() + b"\n")
        if blob is not None:
            self._sha.update(len(blob).to_bytes(8, "big") + blob)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


@dataclass
class PackInfo:
    """What a pack holds, from its manifest (the entry `index.json` lists)."""

    manifest: dict[str, Any]
    path: Path | None = None
    size: int = 0
    sha256: str = ""
    """sha256 of the pack file's bytes."""

    @property
    def name(self) -> str:
        """The source key the pack adds: `name@version` for a version (see `docshelf.versions`)."""
        return pack_source_key(self.manifest)

    def to_json(self) -> dict[str, Any]:
        """Return the registry entry of the pack."""
        m = self.manifest
        # A registry offers NAME and, per version, NAME@VERSION (pack_registry.registry_entry).
        return {"name": split_key(m["source"])[0], "version": m["version"], "file": self.path.name if self.path else None,
                "root": m["root"], "pages": m["pages"], "chunks": m["chunks"], "vectors": m["vectors"],
                "model": m["embed_model"], "dim": m["embed_dim"], "date": m["crawled_at"], "size": self.size,
                "checksum": self.sha256, "content_sha256": m["content_sha256"],
                "docshelf_version": m["docshelf_version"]}


def pack_source_key(manifest: dict[str, Any]) -> str:
    """Return the source key a pack's manifest names: its source, with its version when the name lacks it."""
    name, version = split_key(manifest["source"])
    return source_key(name, version or manifest.get("version") or "")


def file_sha256(path: Path) -> str:
    """Return the sha256 of a file's bytes."""
    sha = hashlib.sha256()
    with path.open("rb") as fp:
        while block := fp.read(1 << 20):
            sha.update(block)
    return sha.hexdigest()


# -- writing ------------------------------------------------------------------------------------
def write_pack(store: Store, source: str, path: Path) -> PackInfo:
    """Write one source of the shelf, with its vectors and model identity, as a pack file at `path`.

    Written to `path.partial` and renamed, so a reader never sees half a pack.

    Raises:
        ConfigError: the source is not on the shelf.
    """
    stored = store.get_source(source)
    if stored is None:
        known = ", ".join(s.source.name for s in store.list_sources()) or "none yet"
        raise ConfigError(f"no source {source!r} on shelf {store.location}; it holds: {known}")
    identity = store.embedder_identity()
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    page_digest, chunk_digest = _Digest(), _Digest()
    counts = {"pages": 0, "chunks": 0, "vectors": 0}
    conn = apsw.Connection(str(partial))
    try:
        # No journal and one transaction: the bytes depend on the rows alone.
        for pragma in ("page_size=4096", "journal_mode=OFF", f"application_id={APPLICATION_ID}",
                       f"user_version={PACK_FORMAT_VERSION}"):
            conn.execute(f"PRAGMA {pragma}").fetchall()  # apsw runs a statement as its rows are read
        with conn:
            conn.execute(_SCHEMA)
            access = chunk_access(store)
            # Code point order, which is SQLite's byte order for UTF-8 whatever the shelf's collation.
            infos = sorted((i for batch in iter_pages(store, source) for i in batch), key=lambda i: i.url)
            priors = store.page_priors([i.url for i in infos])
            for info in infos:
                page_row = (info.url, info.title, store.get_page_markdown(info.url), info.content_hash, info.etag,
                            info.last_modified, info.fetched_at, info.status, info.error,
                            float(priors.get(info.url, 1.0)))
                conn.execute(f"INSERT INTO pages VALUES ({', '.join('?' * len(_PAGE_COLUMNS))})", page_row)
                page_digest.row("pages", page_row)
                counts["pages"] += 1
                for chunk, embed_hash, vector, _texts in access.stored_chunks(info.url):
                    row = _chunk_row(chunk, embed_hash)
                    blob = None if vector is None else np.asarray(vector, dtype="<f4").tobytes()
                    conn.execute(f"INSERT INTO chunks VALUES ({', '.join('?' * (len(row) + 1))})", (*row, blob))
                    chunk_digest.row("chunks", row, blob)
                    counts["chunks"] += 1
                    counts["vectors"] += blob is not None
            manifest = {
                "format": PACK_FORMAT, "format_version": PACK_FORMAT_VERSION, "docshelf_version": __version__,
                "source": stored.name, "version": stored.version, "packages": stored.packages,
                "root": stored.root, "options": stored.options,
                "created_at": stored.created_at, "crawled_at": stored.last_crawl_at,
                "embed_model": identity[0] if identity else None, "embed_dim": identity[1] if identity else None,
                "embed_model_sha256": model_file_sha256(identity[0]) if identity else None, **counts,
            }
            manifest["content_sha256"] = _manifest_digest(manifest, page_digest, chunk_digest)
            conn.executemany("INSERT INTO manifest VALUES (?, ?)", [(k, _canonical(v)) for k, v in manifest.items()])
    finally:
        conn.close()
    os.replace(partial, path)
    return PackInfo(manifest, path, path.stat().st_size, file_sha256(path))


def _chunk_row(chunk: Chunk, embed_hash: str) -> tuple:
    return (chunk.url, chunk.chunk_number, chunk.title, chunk.summary, chunk.content, _canonical(chunk.heading_path),
            chunk.anchor, _canonical(chunk.metadata), chunk.updated_dt, embed_hash, chunk.context, chunk.enriched_by,
            sections_json(chunk))


def _manifest_digest(manifest: dict[str, Any], pages: _Digest, chunks: _Digest) -> str:
    """Return the content checksum: the rows' digests bound to every manifest entry but the checksum itself."""
    entries = {k: v for k, v in manifest.items() if k != "content_sha256"}
    return hashlib.sha256(f"{pages.hexdigest()}\n{chunks.hexdigest()}\n{_canonical(entries)}".encode()).hexdigest()


def write_packs(store: Store, folder: Path) -> list[PackInfo]:
    """Write every source of the shelf as `folder/NAME.docshelf` and the registry `folder/index.json`."""
    from docshelf.pack_registry import write_index

    folder.mkdir(parents=True, exist_ok=True)
    infos = [write_pack(store, s.source.name, folder / f"{s.source.name}{PACK_SUFFIX}") for s in store.list_sources()]
    write_index(folder, infos)
    return infos


# -- reading ------------------------------------------------------------------------------------
class Pack:
    """A pack file opened read-only, its checksum verified (`open_pack`)."""

    def __init__(self, path: Path, conn: apsw.Connection, manifest: dict[str, Any]) -> None:
        self.path = path
        self.conn = conn
        self.manifest = manifest

    def pages(self) -> Iterator[SourcePage]:
        """Yield the pack's pages with their chunks and vectors, in URL order."""
        name = pack_source_key(self.manifest)
        chunks = self.conn.execute(f"SELECT {', '.join(_CHUNK_COLUMNS)}, vector FROM chunks ORDER BY url, chunk_number")
        pending = next(chunks, None)
        for row in self.conn.execute(f"SELECT {', '.join(_PAGE_COLUMNS)} FROM pages ORDER BY url").fetchall():
            page = Page(url=row[0], source=name, title=row[1], markdown=row[2] or "", content_hash=row[3] or "",
                        etag=row[4], last_modified=row[5], fetched_at=row[6], status=row[7], error=row[8],
                        prior=row[9])
            item = SourcePage(page, [], [], [])
            while pending is not None and pending[0] == page.url:
                item.chunks.append(_chunk_from_row(pending, name))
                item.embed_hashes.append(pending[9])
                blob = pending[-1]
                item.vectors.append(None if blob is None else np.frombuffer(blob, dtype="<f4").astype(np.float32))
                pending = next(chunks, None)
            yield item

    def close(self) -> None:
        self.conn.close()


def _chunk_from_row(row: tuple, source: str) -> Chunk:
    return Chunk(url=row[0], source=source, chunk_number=row[1], title=row[2], summary=row[3], content=row[4],
                 heading_path=json.loads(row[5]), anchor=row[6], metadata=json.loads(row[7]), updated_dt=row[8],
                 context=row[10], enriched_by=row[11], sections=sections_from_json(row[12]))


def open_pack(path: Path) -> Pack:
    """Open a pack and verify it whole (SQLite integrity, format, content checksum) before anything reads it.

    Raises:
        PackError: not a pack, a newer format, truncated, or altered.
    """
    where = f"pack {path}"
    try:
        with path.open("rb") as fp:
            head = fp.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise PackError(f"cannot read {where}: {exc.strerror}") from exc
    if head != SQLITE_MAGIC:
        raise PackError(f"{where} is not a docshelf pack (not a SQLite file); make one with: docshelf pack SOURCE -o FILE")
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error as exc:
        raise PackError(f"cannot open {where}: {exc}") from exc
    try:
        manifest = _verified_manifest(conn, where)
    except BaseException:
        conn.close()
        raise
    return Pack(path, conn, manifest)


def _verified_manifest(conn: apsw.Connection, where: str) -> dict[str, Any]:
    damaged = f"{where} is damaged (truncated or altered)"
    try:
        if conn.execute("PRAGMA application_id").fetchall()[0][0] != APPLICATION_ID:
            raise PackError(f"{where} is a SQLite file but not a docshelf pack")
        problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise PackError(f"{damaged}: {problems[0]}; download or copy it again")
        manifest = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM manifest")}
        if manifest.get("format") != PACK_FORMAT:
            raise PackError(f"{where} is not a docshelf pack (manifest format {manifest.get('format')!r})")
        if manifest.get("format_version", 0) > PACK_FORMAT_VERSION:
            raise PackError(f"{where} is pack format {manifest['format_version']}; this docshelf reads up to "
                            f"{PACK_FORMAT_VERSION}: upgrade docshelf")
        pages, chunks = _Digest(), _Digest()
        for row in conn.execute(f"SELECT {', '.join(_PAGE_COLUMNS)} FROM pages ORDER BY url"):
            pages.row("pages", row)
        for row in conn.execute(f"SELECT {', '.join(_CHUNK_COLUMNS)}, vector FROM chunks ORDER BY url, chunk_number"):
            chunks.row("chunks", row[:-1], row[-1])
    except apsw.Error as exc:
        raise PackError(f"{damaged}: {exc}; download or copy it again") from exc
    except (ValueError, KeyError) as exc:
        raise PackError(f"{damaged}: its manifest cannot be read ({exc})") from exc
    if _manifest_digest(manifest, pages, chunks) != manifest.get("content_sha256"):
        raise PackError(f"{damaged}: its content does not match the checksum in its manifest; download or copy it again")
    return manifest


def read_pack_info(path: Path) -> PackInfo:
    """Return a verified pack's manifest, size and file hash."""
    pack = open_pack(path)
    try:
        return PackInfo(pack.manifest, path, path.stat().st_size, file_sha256(path))
    finally:
        pack.close()


# -- adding -------------------------------------------------------------------------------------
@dataclass
class PackAddSummary:
    """What `docshelf add PACK` did."""

    source: str
    pages: int = 0
    chunks: int = 0
    vectors_used: int = 0
    """Chunks that took the pack's vector as it is."""
    embedded: int = 0
    """Chunks embedded here (with --reembed, or chunks the pack had no vector for)."""
    replaced: bool = False
    """The shelf already had the source: it was replaced in one transaction."""
    model: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "pages": self.pages, "chunks": self.chunks, "vectors_used": self.vectors_used,
                "embedded": self.embedded, "replaced": self.replaced, "model": self.model}


def add_pack(store: Store, path: Path, *, reembed: bool = False, embedder_factory: Callable[[], Any] | None = None,
             progress: Progress | None = None) -> PackAddSummary:
    """Add a pack's source to the shelf without crawling: vectors as they are when the models match.

    The pack is verified whole first; then the source is replaced (or added) in one transaction.

    Args:
        store: the shelf.
        path: the pack file.
        reembed: embed the chunks with the shelf's model instead of using the pack's vectors.
        embedder_factory: returns the shelf's embedder; needed with `reembed`.
        progress: told how many chunks wait for vectors and how many got one.

    Raises:
        PackError: the pack is damaged or not a pack.
        ModelMismatchError: the pack's vectors are of another model and `reembed` is off.
    """
    if not isinstance(store, SourceReplacer):
        raise ConfigError(f"shelf {store.location}: this backend cannot add packs")
    pack = open_pack(path)
    try:
        manifest = pack.manifest
        packed = (manifest["embed_model"], manifest["embed_dim"]) if manifest["embed_model"] else None
        shelf = store.embedder_identity()
        use_vectors = not reembed and packed is not None and (shelf is None or shelf == tuple(packed))
        local_files = model_file_sha256(packed[0]) if packed else None
        if use_vectors and None not in (local_files, manifest.get("embed_model_sha256")) \
                and local_files != manifest["embed_model_sha256"]:
            raise PackModelError(
                f"{path.name} was embedded by other files of {packed[0]} than this docshelf runs (model file hash "
                f"{manifest['embed_model_sha256'][:12]}…, here {local_files[:12]}…); add it with --reembed")
        if not reembed and packed is not None and not use_vectors:
            assert shelf is not None
            raise PackModelError(
                f"{path.name} holds vectors of {packed[0]} ({packed[1]} dims); shelf {store.location} uses "
                f"{shelf[0]} ({shelf[1]} dims). Add it with --reembed to embed its {manifest['chunks']} chunks with "
                f"{shelf[0]}, or add it to a shelf of {packed[0]} (--db another file)."
            )
        embedder = None
        if use_vectors:
            store.bind_embedder(packed[0], int(packed[1]))
        else:
            if embedder_factory is None:
                raise ConfigError("adding a pack with --reembed needs the shelf's embedder")
            embedder = embedder_factory()
            store.bind_embedder(embedder.model_id, embedder.dim)
        key = pack_source_key(manifest)
        summary = PackAddSummary(key, replaced=store.get_source(key) is not None,
                                 model=(store.embedder_identity() or (None,))[0])
        pages = list(pack.pages())
        if not use_vectors:
            for item in pages:
                item.vectors = []
        source = Source(key, manifest["root"], manifest["options"] or {}, manifest["created_at"],
                        manifest["crawled_at"], packages=list(manifest.get("packages") or []))
        pending = store.replace_source(source, pages)
    finally:
        pack.close()
    summary.pages = len(pages)
    summary.chunks = sum(len(item.chunks) for item in pages)
    summary.vectors_used = sum(v is not None for item in pages for v in item.vectors)
    attach_inbound_text(store, source.name)
    if pending:
        if embedder is None:
            if embedder_factory is None:
                summary.notes.append(f"{pending} chunks have no vector yet; run docshelf add --reembed to embed them")
                return summary
            embedder = embedder_factory()
        summary.embedded = embed_source(store, source.name, embedder, pending, progress)
    return summary


def embed_source(store: Store, source: str, embedder: Any, pending: int, progress: Progress | None = None) -> int:
    """Embed every chunk of `source` still without a vector, reporting progress; return how many got one."""
    if progress is not None:
        progress.chunks_added(pending)
    done = 0
    while batch := store.pending_embeddings(source, REEMBED_BATCH):
        vectors = embedder.embed_documents([chunk_embedding_text(chunk) for _, chunk in batch])
        stored = store.store_embeddings({h: v for (h, _), v in zip(batch, vectors, strict=True)})
        if not stored:
            break
        done += stored
        if progress is not None:
            progress.embedded(stored)
    return done


