"""The Embedder protocol: what the pipeline and search know about a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """A text embedding model.

    Vectors are float32 and L2-normalised, so cosine similarity is a dot product.
    """

    model_id: str
    """Identity recorded in the shelf, e.g. `local:all-MiniLM-L6-v2`."""
    dim: int
    max_tokens: int
    """Tokens the model reads; text past that is not embedded."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), one unit vector per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Return the unit vector of a search query, shape (dim,)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Return how many model tokens `text` is, without special tokens."""
        ...
