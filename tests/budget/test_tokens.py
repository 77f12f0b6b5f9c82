"""The LLM token counter: o200k_base from the file docshelf ships, with no network at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from docshelf.budget.tokens import get_token_counter
from docshelf.errors import ConfigError

SRC = Path(__file__).parents[2] / "src"

# Runs in a fresh interpreter whose sockets cannot connect and whose tiktoken cache is empty,
# so a download (tiktoken's default on first use) would fail loudly instead of being served from a cache.
NO_NETWORK = """
import socket, sys
def refuse(*args, **kwargs):
    raise OSError("network used")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from docshelf.budget.tokens import get_token_counter
counter = get_token_counter("o200k_base")
print(counter.encoding.encode("hello world"), counter.count("def read_page(url, cursor=None): ..."))
"""


def test_o200k_works_offline_with_an_empty_tiktoken_cache(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty"),
           "DATA_GYM_CACHE_DIR": str(tmp_path / "empty")}
    done = subprocess.run([sys.executable, "-c", NO_NETWORK], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    ids, count = done.stdout.split("]")
    # o200k_base's ids for "hello world" (the ranks file matches tiktoken's pinned sha256 on load)
    assert ids.strip() == "[24912, 2375"
    assert int(count) > 5
    assert not (tmp_path / "empty").exists()


def test_counts_tokens_not_characters() -> None:
    counter = get_token_counter()
    assert counter.name == "o200k_base"
    assert counter.count("") == 0
    assert counter.count("word" + " word" * 99) == 100
    assert counter.count("<|endoftext|>") > 1  # special-token text in a page is ordinary text


def test_another_tokenizer_by_tokenizer_json(monkeypatch: pytest.MonkeyPatch) -> None:
    path = SRC / "docshelf" / "embed" / "data" / "all-MiniLM-L6-v2" / "tokenizer.json"
    counter = get_token_counter(f"hf:{path}")
    assert counter.count("hello world") == 2
    monkeypatch.setenv("DOCSHELF_CONTEXT_TOKENIZER", "gpt-17")
    with pytest.raises(ConfigError, match="gpt-17.*o200k_base"):
        get_token_counter()
    with pytest.raises(ConfigError, match="no file"):
        get_token_counter("hf:/nowhere/tokenizer.json")
