"""Embed the same text once: chunks that repeat (nearly) the text of another share its vector.

Documentation repeats itself: a release note copied into the changelog, a paragraph included
on several pages, the same table in a guide and in the reference. The embed hash already
shares a vector between chunks whose embedded text is identical, but that text starts with the
page title, so a copy on another page never matches. Here a chunk is compared by its body (the
text the embedder reads, without the title and heading path): an exact copy, or one whose word
3-shingles are at least `threshold` alike by MinHash (datasketch's LSH), takes the embed hash
of the chunk seen first, and so its vector.

Short bodies are left alone: there the title and heading path are much of what the vector
says, and two short sections alike in words ("Returns None.") are not about the same thing.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasketch import MinHashLSH

_WORD = re.compile(r"\w+")

MIN_WORDS = 40
"""Bodies shorter than this keep their own vector."""


class NearDuplicates:
    """Remembers the chunk bodies of one crawl and names the embed hash a repeated body should reuse.

    Args:
        threshold: the Jaccard similarity of word 3-shingles from which two bodies are one text.
        num_perm: MinHash permutations; more is more exact and slower.
    """

    def __init__(self, threshold: float = 0.9, num_perm: int = 64) -> None:
        # Imported here: datasketch brings scipy (about a second), which only a crawl needs.
        from datasketch import MinHashLSH

        self.num_perm = num_perm
        self._lsh: MinHashLSH = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._exact: dict[str, str] = {}
        self.shared = 0
        """Chunks that took another chunk's embed hash."""

    def embed_hash(self, body: str, own_hash: str) -> str:
        """Return the embed hash to store a chunk under: an earlier chunk's with the same body, else `own_hash`."""
        words = _WORD.findall(body.lower())
        if len(words) < MIN_WORDS:
            return own_hash
        exact_key = hashlib.sha256(" ".join(words).encode()).hexdigest()
        if (earlier := self._exact.get(exact_key)) is not None:
            return self._share(earlier, own_hash)
        from datasketch import MinHash

        signature = MinHash(num_perm=self.num_perm)
        signature.update_batch([" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)])
        similar = self._lsh.query(signature)
        if similar:
            self._exact[exact_key] = similar[0]
            return self._share(similar[0], own_hash)
        self._exact[exact_key] = own_hash
        if own_hash not in self._lsh:
            self._lsh.insert(own_hash, signature)
        return own_hash

    def _share(self, earlier: str, own_hash: str) -> str:
        if earlier != own_hash:
            self.shared += 1
        return earlier
