"""The record file format and JSONL: streaming readers and writers, `docshelf import` and `docshelf export`.

A record file holds one or more records back to back, each::

    ---
    url: https://ai.pydantic.dev/api/agent/
    session_id: pydantic_ai_docs
    chunk_number: 21
    title: Run Function Parameters
    summary: The 'run' function accepts ...
    embedding: [-0.0244..., 0.0382..., ...]
    metadata : {"source": "pydantic_ai_docs", "crawled_at": "...", "url_path": "/api/agent/", "chunk_size": 3386}
    updated_dt: 2025-03-14T10:14:19.386694
    ---
    the chunk's Markdown, to the end of the record

A record starts at a `---` line followed by its `url:` line; its content runs
to the next such pair (the newline before that `---` separates, it is not
content) or to the end of the file. docshelf adds `embedding_model:` (the
model that made the vector, e.g. `local:all-MiniLM-L6-v2`), `heading_path:`
and `anchor:` after `updated_dt:` when a chunk has them. JSONL holds one
object per chunk with the same field names plus `content`.

Import never guesses a vector's model from its dimension: a record names it
(`embedding_model`), or `--model` names it for a file that does not, or
`--reembed` drops the vectors and embeds the chunks with the shelf's model.
A record imported without `embedding_model` is exported without it, so a
file round-trips byte for byte.

Readers stream (one record in memory) and yield a `RecordError` with file and
line for a bad record instead of stopping, so the good records of a file are
imported and the bad ones reported. Export writes byte for byte what import
read (see `docshelf.transfer` for how exact texts are kept).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal
from urllib.parse import urlsplit

import numpy as np

from docshelf.embed.base import Embedder
from docshelf.errors import ConfigError, DocshelfError
from docshelf.models import Chunk, Page, PageInfo, SectionStart, Source, utc_now
from docshelf.store.base import Store
from docshelf.transfer import ChunkAccess, StoredChunk, chunk_access, iter_pages, stored_chunks

RecordFormat = Literal["record", "jsonl"]

MODELS_BY_DIM: dict[int, str] = {
    1536: "openai:text-embedding-3-small",  # the origin's model (hard-coded in its crawler)
    384: "local:all-MiniLM-L6-v2",  # docshelf's default, for records exported by docshelf
}
"""The likely model of vectors of this dimension: adopted for the origin's PostgreSQL table (whose crawler
hard-coded its model), and named as a suggestion when an import must be told the model with --model."""

HEADER_FIELDS = ("url", "session_id", "chunk_number", "title", "summary", "embedding", "metadata", "updated_dt")
OPTIONAL_FIELDS = ("embedding_model", "heading_path", "anchor", "sections")
MODEL_ABSENT = "(not named)"
"""The kept text of `embedding_model` for a record that had none: its export leaves the field out too."""
REEMBED_BATCH = 64


# -- errors --------------------------------------------------------------------------
class RecordError(DocshelfError):
    """A record that cannot be imported; nothing of it is stored."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class RecordFormatError(RecordError):
    """Not a record: a `---` or a field missing, an unknown field, a bad number, text that is not UTF-8."""


class RecordJSONError(RecordError):
    """The embedding or metadata (or a JSONL line) is not JSON of the right shape."""


class RecordDimensionError(RecordError):
    """The embedding's dimension is not the shelf's (or belongs to no model docshelf can name)."""


class RecordModelError(RecordError):
    """The vector's model is not named, or is not the shelf's."""


class DuplicateRecordError(RecordError):
    """A second record for the same (url, chunk_number) in one import."""


# -- the parsed record -----------------------------------------------------------------
@dataclass
class Record:
    """One imported record: the chunk, its vector, and where it came from."""

    chunk: Chunk
    vector: np.ndarray | None
    """float32; None when the record has `embedding: null`."""
    texts: dict[str, str]
    """Original texts the writer would not reproduce from the values (usually empty)."""
    path: str
    line: int
    model: str | None = None
    """The model that made the vector, when the record names it (`embedding_model`)."""


def render_embedding(vector: np.ndarray | None) -> str:
    """Return the text of an embedding as the writer prints it (`json.dumps` of the float32 values)."""
    return "null" if vector is None else json.dumps(vector.tolist())


def render_metadata(metadata: dict[str, Any]) -> str:
    """Return the text of metadata as the writer prints it."""
    return json.dumps(metadata)


def embedding_text(stored: StoredChunk) -> str:
    """Return a chunk's embedding text: the record's own while it still matches the stored vector."""
    kept = stored.texts.get("embedding")
    if kept is not None and _same_vector(kept, stored.vector):
        return kept
    return render_embedding(stored.vector)


def metadata_text(stored: StoredChunk) -> str:
    """Return a chunk's metadata text: the record's own while it still says what the stored metadata says."""
    kept = stored.texts.get("metadata")
    if kept is not None and _loads_or_none(kept) == stored.chunk.metadata:
        return kept
    return render_metadata(stored.chunk.metadata)


def _same_vector(text: str, vector: np.ndarray | None) -> bool:
    values = _loads_or_none(text)
    if values is None or vector is None:
        return values is None and vector is None
    return np.array_equal(np.asarray(values, dtype=np.float32), vector)


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


# -- writing ---------------------------------------------------------------------------
def _one_line(text: str) -> str:
    # A header field is one line; a line break inside a title would end it.
    return " ".join(text.splitlines()) if "\n" in text or "\r" in text else text


def model_of(stored: StoredChunk, model: str | None) -> str | None:
    """Return the `embedding_model` to write for a chunk: the shelf's `model` when it has a vector, unless the
    record it was imported from named none."""
    if stored.vector is None or stored.texts.get("embedding_model") == MODEL_ABSENT:
        return None
    return model


def format_record(stored: StoredChunk, model: str | None = None) -> str:
    """Return one record's text, from its opening `---` to the end of its content (no final newline).

    Args:
        stored: the chunk with its vector and kept texts.
        model: the shelf's embedding model, written as `embedding_model:` beside a vector.
    """
    chunk = stored.chunk
    lines = [
        "---",
        f"url: {_one_line(chunk.url)}",
        f"session_id: {_one_line(chunk.source)}",
        f"chunk_number: {chunk.chunk_number}",
        f"title: {_one_line(chunk.title)}",
        f"summary: {_one_line(chunk.summary)}",
        f"embedding: {embedding_text(stored)}",
        f"metadata : {metadata_text(stored)}",  # the origin's spelling, space before the colon
        f"updated_dt: {_one_line(chunk.updated_dt or '')}",
    ]
    if (named := model_of(stored, model)) is not None:
        lines.append(f"embedding_model: {_one_line(named)}")
    if chunk.heading_path:
        lines.append(f"heading_path: {json.dumps(chunk.heading_path, ensure_ascii=False)}")
    if chunk.anchor:
        lines.append(f"anchor: {_one_line(chunk.anchor)}")
    if chunk.sections:
        lines.append(f"sections: {json.dumps([s.to_json() for s in chunk.sections], ensure_ascii=False)}")
    lines.append("---")
    return "\n".join(lines) + "\n" + chunk.content


def format_jsonl(stored: StoredChunk, model: str | None = None) -> str:
    """Return one chunk as a JSONL line (without the newline), naming the shelf's `model` beside a vector."""
    chunk = stored.chunk
    obj: dict[str, Any] = {
        "url": chunk.url,
        "session_id": chunk.source,
        "chunk_number": chunk.chunk_number,
        "title": chunk.title,
        "summary": chunk.summary,
        "embedding": _embedding_value(stored),
        "metadata": chunk.metadata,
        "updated_dt": chunk.updated_dt,
    }
    if (named := model_of(stored, model)) is not None:
        obj["embedding_model"] = named
    if chunk.heading_path:
        obj["heading_path"] = chunk.heading_path
    if chunk.anchor:
        obj["anchor"] = chunk.anchor
    if chunk.sections:
        obj["sections"] = [s.to_json() for s in chunk.sections]
    obj["content"] = chunk.content
    return json.dumps(obj, ensure_ascii=False)


def _embedding_value(stored: StoredChunk) -> list[float] | None:
    """Return the embedding as a JSON value: the record's own numbers when kept, else the stored floats."""
    if "embedding" in stored.texts:
        return json.loads(embedding_text(stored))
    return None if stored.vector is None else stored.vector.tolist()


class RecordWriter:
    """Writes records or JSONL lines to a binary stream, separating records as the reader expects.

    Args:
        fp: the binary stream.
        fmt: "record" or "jsonl".
        model: the shelf's embedding model, named beside every vector (see `model_of`).
    """

    def __init__(self, fp: BinaryIO, fmt: RecordFormat = "record", model: str | None = None) -> None:
        self.fp = fp
        self.fmt = fmt
        self.model = model
        self.count = 0

    @classmethod
    def for_store(cls, fp: BinaryIO, fmt: RecordFormat, store: Store) -> RecordWriter:
        """Return a writer that names the embedding model of `store`."""
        identity = store.embedder_identity()
        return cls(fp, fmt, identity[0] if identity else None)

    def write(self, stored: StoredChunk) -> None:
        if self.fmt == "jsonl":
            self.fp.write((format_jsonl(stored, self.model) + "\n").encode("utf-8"))
        else:
            # The newline goes before every record but the first, so a file of
            # one record ends exactly where its content ends.
            self.fp.write((("\n" if self.count else "") + format_record(stored, self.model)).encode("utf-8"))
        self.count += 1


# -- reading the record format ---------------------------------------------------------
class _Lines:
    """Lines of a binary file with look-ahead; undecodable lines are remembered, not fatal."""

    def __init__(self, fp: IO[bytes]) -> None:
        self._fp = fp
        self._ahead: deque[str] = deque()
        self.number = 0
        """Number of the last line taken with `next()`."""
        self.undecodable: list[int] = []

    def peek(self, ahead: int = 0) -> str | None:
        while len(self._ahead) <= ahead:
            raw = self._fp.readline()
            if not raw:
                return None
            try:
                self._ahead.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self.undecodable.append(self.number + len(self._ahead) + 1)
                self._ahead.append(raw.decode("utf-8", errors="replace"))
        return self._ahead[ahead]

    def next(self) -> str | None:
        line = self.peek()
        if line is not None:
            self._ahead.popleft()
            self.number += 1
        return line

    def at_record_start(self) -> bool:
        second = self.peek(1)
        return _is_rule(self.peek()) and second is not None and second.startswith("url:")

    def skip_to_record_start(self) -> None:
        while self.peek() is not None and not self.at_record_start():
            self.next()


def _is_rule(line: str | None) -> bool:
    return line is not None and line.rstrip("\r\n") == "---"


_FIELD = re.compile(r"^([A-Za-z_]+) ?: ?")


def read_record_file(fp: IO[bytes], path: str) -> Iterator[Record | RecordError]:
    """Yield each record of a record file, or a RecordError for each bad one."""
    lines = _Lines(fp)
    while lines.peek() is not None:
        if not lines.at_record_start():
            yield RecordFormatError(path, lines.number + 1, "expected a '---' line followed by 'url:' to start a record")
            lines.skip_to_record_start()
            continue
        yield _read_one(lines, path)


def _read_one(lines: _Lines, path: str) -> Record | RecordError:
    lines.next()  # the opening ---
    start = lines.number
    fields: dict[str, tuple[str, int]] = {}
    while not _is_rule(lines.peek()):
        field = _header_field(lines.peek(), fields, path, lines.number + 1)
        if isinstance(field, RecordError):
            lines.skip_to_record_start()
            return field
        fields[field[0]] = (field[1], lines.number + 1)
        lines.next()
    lines.next()  # the closing ---
    parts: list[str] = []
    while lines.peek() is not None and not lines.at_record_start():
        parts.append(lines.next() or "")
    content = "".join(parts)
    if lines.peek() is not None and content.endswith("\n"):
        content = content[:-1]  # the separator before the next record's '---'
    bad = [n for n in lines.undecodable if start <= n <= lines.number]
    if bad:
        return RecordFormatError(path, bad[0], "not UTF-8 text")
    return _build_record(fields, content, path, start)


def _header_field(line: str | None, fields: dict[str, Any], path: str, number: int) -> tuple[str, str] | RecordError:
    """Return (name, text) of a header line, or the RecordError saying why it is not one."""
    if line is None:  # the file ended inside the header: name its last line, not one past it
        return RecordFormatError(path, number - 1, "the header has no closing '---' line before the end of the file")
    match = _FIELD.match(line)
    if match is None:
        return RecordFormatError(
            path, number, f"expected a header field or the closing '---', got {line.rstrip()[:40]!r}"
        )
    name = match.group(1)
    if name not in HEADER_FIELDS and name not in OPTIONAL_FIELDS:
        return RecordFormatError(path, number, f"unknown header field {name!r} (is the closing '---' missing?)")
    if name in fields:
        return RecordFormatError(path, number, f"field {name!r} given twice")
    return name, line[match.end():].rstrip("\r\n")


def _build_record(fields: dict[str, tuple[str, int]], content: str, path: str, start: int) -> Record | RecordError:
    missing = [name for name in HEADER_FIELDS if name not in fields]
    if missing:
        return RecordFormatError(path, start, f"record has no {', '.join(missing)} field")
    try:
        values = {name: _parse_field(name, text, path, line) for name, (text, line) in fields.items()}
    except RecordError as exc:
        return exc
    vector = values["embedding"]
    texts = {
        name: text
        for name, text, rendered in (
            ("embedding", fields["embedding"][0], render_embedding(vector)),
            ("metadata", fields["metadata"][0], render_metadata(values["metadata"])),
        )
        if text != rendered
    }
    return _with_model(Record(_chunk(values, content), vector, texts, path, start), values.get("embedding_model"))


def _with_model(record: Record, model: str | None) -> Record:
    """Return `record` naming its vector's model, or remembering that it named none (for the round trip)."""
    record.model = model
    if model is None and record.vector is not None:
        record.texts["embedding_model"] = MODEL_ABSENT
    return record


def _parse_field(name: str, text: str, path: str, line: int) -> Any:
    """Return the value of one header field, or raise RecordError saying what is wrong with it."""
    if name == "chunk_number":
        if not text.isascii() or not text.isdigit() or str(int(text)) != text:
            raise RecordFormatError(path, line, f"chunk_number must be a whole number, got {text!r}")
        return int(text)
    if name in ("embedding", "metadata", "heading_path", "sections"):
        return _json_field(name, _json(text, name, path, line), path, line)
    if name == "url" and not text:
        raise RecordFormatError(path, line, "url is empty")
    if name == "embedding_model" and not text.strip():
        raise RecordFormatError(path, line, "embedding_model is empty (leave the field out, or name the model)")
    return text


def _json(text: str, name: str, path: str, line: int) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RecordJSONError(path, line, f"{name} is not valid JSON ({exc})") from None


def _json_field(name: str, value: Any, path: str, line: int) -> Any:
    """Return a parsed embedding (float32 array or None), metadata dict or heading list, checked."""
    if name == "embedding":
        if value is None:
            return None
        if (
            not isinstance(value, list) or not value
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)
        ):
            raise RecordJSONError(path, line, "embedding must be a JSON list of numbers (or null)")
        return np.asarray(value, dtype=np.float32)
    if name == "metadata":
        if not isinstance(value, dict):
            raise RecordJSONError(path, line, "metadata must be a JSON object")
        return value
    if name == "sections":
        if not isinstance(value, list) or not all(_is_section_start(item) for item in value):
            raise RecordJSONError(path, line, "sections must be a JSON list of [offset, anchor or null, [headings]]")
        return [SectionStart.from_json(item) for item in value]
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise RecordJSONError(path, line, "heading_path must be a JSON list of strings")
    return value


def _is_section_start(item: Any) -> bool:
    return (
        isinstance(item, list) and len(item) == 3 and isinstance(item[0], int) and not isinstance(item[0], bool)
        and item[0] >= 0 and (item[1] is None or isinstance(item[1], str))
        and isinstance(item[2], list) and all(isinstance(h, str) for h in item[2])
    )


def _chunk(values: dict[str, Any], content: str) -> Chunk:
    return Chunk(
        url=values["url"], source=values["session_id"], chunk_number=values["chunk_number"],
        title=values["title"], summary=values["summary"], content=content,
        heading_path=values.get("heading_path") or [], anchor=values.get("anchor") or None,
        metadata=values["metadata"], updated_dt=values["updated_dt"] or None, sections=values.get("sections") or [],
    )


# -- reading JSONL -----------------------------------------------------------------------
def read_jsonl_file(fp: IO[bytes], path: str) -> Iterator[Record | RecordError]:
    """Yield each chunk of a JSONL file, or a RecordError for each bad line."""
    for number, raw in enumerate(fp, 1):
        if raw.strip():
            yield _jsonl_record(raw, path, number)


def _jsonl_record(raw: bytes, path: str, number: int) -> Record | RecordError:
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        return RecordJSONError(path, number, f"not a JSON object ({exc})")
    if not isinstance(obj, dict):
        return RecordJSONError(path, number, "not a JSON object")
    missing = [name for name in (*HEADER_FIELDS, "content") if name not in obj]
    if missing:
        return RecordFormatError(path, number, f"record has no {', '.join(missing)} field")
    unknown = sorted(set(obj) - {*HEADER_FIELDS, *OPTIONAL_FIELDS, "content"})
    if unknown:
        return RecordFormatError(path, number, f"unknown field {unknown[0]!r}")
    try:
        values = _jsonl_values(obj, path, number)
    except RecordError as exc:
        return exc
    vector = values["embedding"]
    original = json.dumps(obj["embedding"])
    texts = {"embedding": original} if original != render_embedding(vector) else {}
    return _with_model(Record(_chunk(values, obj["content"]), vector, texts, path, number), obj.get("embedding_model"))


def _jsonl_values(obj: dict[str, Any], path: str, number: int) -> dict[str, Any]:
    for name in ("url", "session_id", "title", "summary", "content"):
        if not isinstance(obj[name], str):
            raise RecordFormatError(path, number, f"{name} must be a string")
    if "embedding_model" in obj and (not isinstance(obj["embedding_model"], str) or not obj["embedding_model"].strip()):
        raise RecordFormatError(path, number, "embedding_model must be a model name, e.g. local:all-MiniLM-L6-v2")
    if not obj["url"]:
        raise RecordFormatError(path, number, "url is empty")
    if not isinstance(obj["chunk_number"], int) or isinstance(obj["chunk_number"], bool) or obj["chunk_number"] < 0:
        raise RecordFormatError(path, number, "chunk_number must be a whole number")
    if obj["updated_dt"] is not None and not isinstance(obj["updated_dt"], str):
        raise RecordFormatError(path, number, "updated_dt must be a string or null")
    values = dict(obj)
    for name in ("embedding", "metadata", "heading_path", "sections"):
        if name in obj:
            values[name] = _json_field(name, obj[name], path, number)
    return values


# -- files and folders -------------------------------------------------------------------
def detect_format(path: Path, head: bytes) -> RecordFormat | None:
    """Return the format of a file from its name and first bytes, or None when it is neither."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    if head.startswith(b"---"):
        return "record"
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    return None


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Yield the files named, and every non-hidden file under the folders named, in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            yield path


def read_records(paths: Iterable[Path]) -> Iterator[Record | RecordError]:
    """Yield every record (or RecordError) of the files and folders named, one file at a time."""
    for path in iter_files(paths):
        with path.open("rb") as fp:
            fmt = detect_format(path, fp.read(64))
            fp.seek(0)
            if fmt == "jsonl":
                yield from read_jsonl_file(fp, str(path))
            elif fmt == "record":
                yield from read_record_file(fp, str(path))
            else:
                yield RecordFormatError(str(path), 1, "neither a record file (starting with '---') nor JSONL")


# -- import ------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    """What `docshelf import` did, as printed by `--json`."""

    records: int = 0
    pages: int = 0
    embedded: int = 0
    model: str | None = None
    errors: list[RecordError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records, "pages": self.pages, "embedded": self.embedded, "model": self.model,
            "errors": [{"file": e.path, "line": e.line, "error": e.reason} for e in self.errors],
        }


def vector_hash(vector: np.ndarray) -> str:
    """Return the embed hash of an imported vector: equal vectors share it, and only they do."""
    return "vec:" + hashlib.sha256(np.asarray(vector, dtype=np.float32).tobytes()).hexdigest()


class _Importer:
    """Writes records page by page: records of one URL that arrive together are written together."""

    def __init__(self, store: Store, source: str | None, reembed: bool, model: str | None = None) -> None:
        self.store = store
        self.access: ChunkAccess = chunk_access(store)
        self.source = source
        self.reembed = reembed
        self.model = model
        self.identity = store.embedder_identity()
        self.summary = ImportSummary()
        self.seen: dict[tuple[str, int], str] = {}
        self.sources: set[str] = set()
        self.batch: list[Record] = []

    def add(self, item: Record | RecordError) -> None:
        error = item if isinstance(item, RecordError) else self._check(item)
        if error is not None:
            self.summary.errors.append(error)
            return
        assert isinstance(item, Record)
        self.seen[(item.chunk.url, item.chunk.chunk_number)] = f"{item.path}:{item.line}"
        if self.batch and self.batch[0].chunk.url != item.chunk.url:
            self.flush()
        self.batch.append(item)

    def _check(self, record: Record) -> RecordError | None:
        """Return why a well-formed record still cannot go into this shelf, or None."""
        chunk = record.chunk
        if self.source:
            chunk.source = self.source
        if not chunk.source:
            return RecordFormatError(record.path, record.line, "session_id is empty (name the source with --source)")
        first = self.seen.get((chunk.url, chunk.chunk_number))
        if first is not None:
            return DuplicateRecordError(
                record.path, record.line, f"chunk {chunk.chunk_number} of {chunk.url} again (first at {first})"
            )
        if self.reembed:
            record.vector = None  # dropped: the shelf's own model embeds the chunk
            record.texts.pop("embedding_model", None)
            record.texts.pop("embedding", None)
            return None
        if record.vector is None:
            return None
        return self._check_model(record, record.vector.size)

    def _check_model(self, record: Record, dim: int) -> RecordError | None:
        """Return why the record's vector cannot join the shelf's (unnamed model, another model or dimension)."""
        model = record.model or self.model
        if model is None:
            likely = MODELS_BY_DIM.get(dim)
            return RecordModelError(
                record.path, record.line,
                f"the {dim}-dim embedding does not say which model made it; name it with --model"
                + (f" (perhaps {likely})" if likely else "") + ", or import with --reembed to embed the chunks again",
            )
        if record.model is not None and self.model is not None and record.model != self.model:
            return RecordModelError(
                record.path, record.line, f"embedding_model {record.model} is not --model {self.model}"
            )
        if self.identity is None:
            self.store.bind_embedder(model, dim)
            self.identity = (model, dim)
        if self.identity[0] != model:
            return RecordModelError(
                record.path, record.line,
                f"the embedding is of {model}; this shelf holds vectors of {self.identity[0]}: "
                "import with --reembed, or into another shelf",
            )
        if self.identity[1] != dim:
            return RecordDimensionError(
                record.path, record.line,
                f"embedding has {dim} dimensions; this shelf holds {self.identity[1]}-dim vectors of {self.identity[0]}",
            )
        return None

    def flush(self) -> None:
        """Write the buffered records of one page, merged with the chunks the page already has."""
        if not self.batch:
            return
        records, self.batch = self.batch, []
        url, source = records[0].chunk.url, records[0].chunk.source
        merged = {c.chunk.chunk_number: c for c in stored_chunks(self.access, url)}
        had_texts = any(c.texts for c in merged.values())
        for record in records:
            merged[record.chunk.chunk_number] = StoredChunk(record.chunk, self._hash(record), record.vector, record.texts)
        chunks = [merged[n] for n in sorted(merged)]
        for stored in chunks:
            stored.chunk.source = source
        self._ensure_source(source, url)
        self.store.replace_page(
            self._page(url, source, chunks), [c.chunk for c in chunks], [c.embed_hash for c in chunks]
        )
        if not self.reembed:
            self.store.store_embeddings({c.embed_hash: c.vector for c in chunks if c.vector is not None})
        texts = {c.chunk.chunk_number: c.texts for c in chunks if c.texts}
        if texts or had_texts:
            self.access.keep_record_texts(url, texts)
        self.summary.records += len(records)
        self.summary.pages += 1

    def _hash(self, record: Record) -> str:
        if self.reembed:
            from docshelf.ingest import chunk_embedding_text, text_hash

            return text_hash(chunk_embedding_text(record.chunk))
        if record.vector is not None:
            return vector_hash(record.vector)
        return "text:" + hashlib.sha256(record.chunk.content.encode("utf-8")).hexdigest()

    def _ensure_source(self, name: str, url: str) -> None:
        if name not in self.sources and self.store.get_source(name) is None:
            parts = urlsplit(url)
            root = f"{parts.scheme}://{parts.netloc}/" if parts.scheme and parts.netloc else url
            self.store.upsert_source(Source(name=name, root=root))
        self.sources.add(name)

    def _page(self, url: str, source: str, chunks: list[StoredChunk]) -> Page:
        existing = self.store.get_page(url)
        markdown = "\n\n".join(c.chunk.content for c in chunks)
        stamps = [c.chunk.updated_dt for c in chunks if c.chunk.updated_dt]
        return Page(
            url=url, source=source,
            title=existing.title if existing and existing.title else chunks[0].chunk.title.split(" - ")[0],
            markdown=markdown, content_hash=hashlib.sha256(markdown.encode("utf-8")).hexdigest(),
            fetched_at=max(stamps) if stamps else utc_now(),
        )


def import_records(
    store: Store,
    paths: Iterable[Path],
    *,
    source: str | None = None,
    reembed: bool = False,
    embedder: Callable[[], Embedder] | None = None,
    model: str | None = None,
) -> ImportSummary:
    """Import record and JSONL files (or folders of them) into `store`; return what was imported.

    Args:
        store: the shelf.
        paths: files and folders; folders are read recursively.
        source: put every record under this source instead of its `session_id`.
        reembed: drop the records' vectors and embed the chunks with `embedder`.
        embedder: factory for the shelf's embedder (needed with `reembed`).
        model: the model of the vectors of records that do not name one (`embedding_model`).

    Bad records are collected in `errors` (file and line); the rest is imported.
    A new shelf is bound to the model the records (or `model`) name, or to the
    embedder's model with `reembed`; a vector whose model nobody names is an error.
    """
    reembedder: Embedder | None = None
    if reembed:
        if embedder is None:
            raise ConfigError("import --reembed needs an embedder")
        reembedder = embedder()
        store.bind_embedder(reembedder.model_id, reembedder.dim)
    importer = _Importer(store, source, reembed, model)
    for item in read_records(paths):
        importer.add(item)
    importer.flush()
    if reembedder is not None:
        importer.summary.embedded = _embed_pending(store, reembedder, sorted(importer.sources))
    identity = store.embedder_identity()
    importer.summary.model = identity[0] if identity else None
    return importer.summary


def _embed_pending(store: Store, embedder: Embedder, sources: list[str]) -> int:
    """Embed every chunk of `sources` still without a vector; return how many chunks got one."""
    from docshelf.ingest import chunk_embedding_text

    done = 0
    for name in sources:
        while batch := store.pending_embeddings(name, REEMBED_BATCH):
            vectors = embedder.embed_documents([chunk_embedding_text(chunk) for _, chunk in batch])
            stored = store.store_embeddings({h: v for (h, _), v in zip(batch, vectors)})
            if not stored:
                break
            done += stored
    return done


# -- export ------------------------------------------------------------------------------
def export_pages(store: Store, *, source: str | None = None, url: str | None = None) -> Iterator[PageInfo]:
    """Yield the pages to export: one URL, one source's, or the whole shelf's, in URL order.

    Raises:
        ConfigError: the URL or source is not in the shelf.
    """
    if url is not None:
        info = store.get_page(url)
        if info is None or (source is not None and info.source != source):
            raise ConfigError(f"no page {url} in shelf {store.location}" + (f" (source {source})" if source else ""))
        yield info
        return
    if source is not None and store.get_source(source) is None:
        raise ConfigError(f"no source {source!r} in shelf {store.location}")
    names = [source] if source is not None else [s.source.name for s in store.list_sources()]
    for name in names:
        for infos in iter_pages(store, name):
            yield from infos


def export_records(
    store: Store,
    out: BinaryIO | Path,
    *,
    source: str | None = None,
    url: str | None = None,
    fmt: RecordFormat = "record",
) -> int:
    """Write chunks to `out`; return how many.

    Args:
        out: a binary stream or file path (everything in it), or a folder: one
            file per page (`<source>/<page>.txt`) for records, one per source
            (`<source>.jsonl`) for JSONL.
        source, url: export only this source or this page.
        fmt: "record" or "jsonl".
    """
    access = chunk_access(store)
    pages = export_pages(store, source=source, url=url)
    identity = store.embedder_identity()
    model = identity[0] if identity else None
    if isinstance(out, Path) and out.is_dir():
        return _export_to_folder(access, pages, out, fmt, model)
    if isinstance(out, Path):
        with out.open("wb") as fp:
            return _export_to_stream(access, pages, fp, fmt, model)
    return _export_to_stream(access, pages, out, fmt, model)


def _export_to_stream(
    access: ChunkAccess, pages: Iterable[PageInfo], fp: BinaryIO, fmt: RecordFormat, model: str | None
) -> int:
    writer = RecordWriter(fp, fmt, model)
    for info in pages:
        for stored in stored_chunks(access, info.url):
            writer.write(stored)
    return writer.count


def _export_to_folder(
    access: ChunkAccess, pages: Iterable[PageInfo], folder: Path, fmt: RecordFormat, model: str | None
) -> int:
    count = 0
    open_source: tuple[str, BinaryIO, RecordWriter] | None = None
    try:
        for info in pages:
            chunks = stored_chunks(access, info.url)
            if not chunks:
                continue
            if fmt == "record":
                target = folder / _file_name(info.source) / (_file_name(info.url) + ".txt")
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as fp:
                    count += _write_all(RecordWriter(fp, fmt, model), chunks)
                continue
            if open_source is None or open_source[0] != info.source:
                if open_source is not None:
                    open_source[1].close()
                fp = (folder / (_file_name(info.source) + ".jsonl")).open("wb")
                open_source = (info.source, fp, RecordWriter(fp, fmt, model))
            count += _write_all(open_source[2], chunks)
    finally:
        if open_source is not None:
            open_source[1].close()
    return count


def _write_all(writer: RecordWriter, chunks: list[StoredChunk]) -> int:
    for stored in chunks:
        writer.write(stored)
    return len(chunks)


def _file_name(text: str) -> str:
    """Return a safe, unique file name for a URL or source name."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", re.sub(r"^[a-z]+://", "", text)).strip("._")[:100] or "page"
    return f"{readable}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"
