"""The bundled model's WordPiece tokenizer, shared by the chunker (token budgets) and the embedder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

from docshelf.embed.bundled import read_tokenizer


def load_tokenizer(path: Path | None = None) -> Tokenizer:
    """Return the tokenizer in `path` (default: docshelf's pinned copy), padding and truncation off.

    The file as published pads and truncates every input to 128 tokens;
    callers set their own limits.

    Raises:
        ConfigError: the file differs from the sha256 docshelf pins.
    """
    tokenizer = Tokenizer.from_str(read_tokenizer(path).decode("utf-8"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


@lru_cache(maxsize=1)
def bundled_tokenizer() -> Tokenizer:
    """Return the pinned tokenizer, loaded once per process, with padding and truncation off."""
    return load_tokenizer()


def count_tokens(text: str) -> int:
    """Return the number of model tokens in `text`, special tokens excluded."""
    return len(bundled_tokenizer().encode(text, add_special_tokens=False).ids)
