"""Count tokens as an LLM's context counts them, offline.

The default is OpenAI's `o200k_base` BPE run by tiktoken. tiktoken downloads
its encoding files on first use, and docshelf downloads nothing at run time,
so the ranks file ships inside docshelf (`budget/data/`, MIT, see NOTICE) and
is checked against the sha256 tiktoken itself pins for it. Any other
tokenizer can be named by a Hugging Face `tokenizer.json` file:
`DOCSHELF_CONTEXT_TOKENIZER=hf:/path/to/tokenizer.json`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

from docshelf import config
from docshelf.errors import ConfigError

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
"""sha256 of the decompressed ranks file, as tiktoken_ext/openai_public.py pins it."""

# The pre-tokenizer of o200k_base, verbatim from tiktoken_ext/openai_public.py (MIT), joined as it joins it.
O200K_PATTERN = "|".join([  # noqa: FLY002
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
O200K_SPECIAL = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
DEFAULT_TOKENIZER = "o200k_base"


class TokenCounter(Protocol):
    """Counts the tokens a text costs in an LLM's context."""

    name: str

    def count(self, text: str) -> int:
        """Return the number of tokens of `text`."""
        ...


class TiktokenCounter:
    """A tiktoken encoding; special-token text (`<|endoftext|>`) in a page counts as ordinary text."""

    def __init__(self, encoding) -> None:
        self.encoding = encoding
        self.name = encoding.name

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))


class HFTokenizerCounter:
    """A Hugging Face `tokenizer.json`, without the special tokens a model adds around a sequence."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust library raises a bare Exception for a bad file
            raise ConfigError(f"DOCSHELF_CONTEXT_TOKENIZER: cannot load {path} as a tokenizer.json: {exc}") from exc
        # An embedder's tokenizer.json may pad and truncate to its model's window; a count needs neither.
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.name = f"hf:{path}"

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


def bundled_o200k_ranks() -> dict[bytes, int]:
    """Return o200k_base's BPE ranks from the file shipped in docshelf, checked against tiktoken's hash."""
    packed = resources.files("docshelf.budget").joinpath("data/o200k_base.tiktoken.gz").read_bytes()
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != O200K_SHA256:
        raise ConfigError("docshelf's bundled o200k_base.tiktoken.gz is damaged (sha256 mismatch); reinstall docshelf")
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_token_counter(name: str | None = None) -> TokenCounter:
    """Return the counter named `name` (default: DOCSHELF_CONTEXT_TOKENIZER, else o200k_base), loaded once.

    Raises:
        ConfigError: an unknown name or an unreadable tokenizer file.
    """
    return _load_counter(name or config.setting("DOCSHELF_CONTEXT_TOKENIZER") or DEFAULT_TOKENIZER)


@lru_cache(maxsize=4)
def _load_counter(name: str) -> TokenCounter:
    if name == DEFAULT_TOKENIZER:
        import tiktoken

        encoding = tiktoken.Encoding(name=name, pat_str=O200K_PATTERN, mergeable_ranks=bundled_o200k_ranks(),
                                     special_tokens=O200K_SPECIAL)
        return TiktokenCounter(encoding)
    if name.startswith("hf:"):
        path = Path(name[3:]).expanduser()
        if not path.is_file():
            raise ConfigError(f"DOCSHELF_CONTEXT_TOKENIZER={name}: no file {path}; give a tokenizer.json path")
        return HFTokenizerCounter(path)
    raise ConfigError(f"DOCSHELF_CONTEXT_TOKENIZER={name!r} is not known: use o200k_base (the default, bundled) "
                      "or hf:/path/to/tokenizer.json")
