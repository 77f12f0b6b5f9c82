"""Near-duplicate chunk bodies share one embed hash, so a repeated text is embedded once."""

from __future__ import annotations

from docshelf.dedup import NearDuplicates

PARAGRAPH = (
    "The connection pool keeps a number of open connections to the database and hands one to each "
    "request that needs it. When the pool is exhausted, a request waits for up to the pool timeout "
    "before it fails with an error that names the pool and the number of connections it holds, and "
    "the application can raise the limit in its settings."
)


def test_a_copy_takes_the_first_hash() -> None:
    duplicates = NearDuplicates()
    assert duplicates.embed_hash(PARAGRAPH, "first") == "first"
    assert duplicates.embed_hash(PARAGRAPH, "copy-on-another-page") == "first"
    assert duplicates.shared == 1


def test_a_near_copy_takes_the_first_hash_and_other_text_keeps_its_own() -> None:
    duplicates = NearDuplicates()
    duplicates.embed_hash(PARAGRAPH, "first")
    edited = PARAGRAPH.replace("in its settings.", "in its configuration.")
    assert duplicates.embed_hash(edited, "edited") == "first"
    other = PARAGRAPH.replace("connection pool", "template cache").replace("database", "file system")
    other = " ".join(reversed(other.split()))
    assert duplicates.embed_hash(other, "other") == "other"
    assert duplicates.shared == 1


def test_short_bodies_keep_their_own_hash() -> None:
    duplicates = NearDuplicates()
    assert duplicates.embed_hash("Returns None.", "a") == "a"
    assert duplicates.embed_hash("Returns None.", "b") == "b"
    assert duplicates.shared == 0
