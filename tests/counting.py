"""A wrapper that counts what an embedder embeds, so a test can prove that a refresh re-embedded nothing.

Wrap the real bundled model (`CountingEmbedder(get_embedder())`), build a shelf
with the wrapper, call `reset()`, refresh the same source with it, and assert
`wrapper.documents == []`. Test modules import it by name (`from counting import
CountingEmbedder`): tests/conftest.py puts the tests folder on sys.path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from docshelf.embed import Embedder


class CountingEmbedder:
    """An Embedder that passes every call to a real one and records the texts it was given."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.max_tokens = inner.max_tokens
        self.documents: list[str] = []
        """Every text passed to `embed_documents`, in order, repeats included."""
        self.queries: list[str] = []
        """Every text passed to `embed_query`."""
        self.calls = 0
        """How many times `embed_documents` was called."""

    @property
    def dim(self) -> int:
        """Return the wrapped embedder's dimension."""
        return self.inner.dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return the wrapped embedder's vectors for `texts`, after recording them."""
        self.calls += 1
        self.documents.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """Return the wrapped embedder's query vector for `text`, after recording it."""
        self.queries.append(text)
        return self.inner.embed_query(text)

    def count_tokens(self, text: str) -> int:
        """Return the wrapped embedder's token count; counting is not embedding, so it is not recorded."""
        return self.inner.count_tokens(text)

    def reset(self) -> None:
        """Forget what was recorded so far."""
        self.documents.clear()
        self.queries.clear()
        self.calls = 0
