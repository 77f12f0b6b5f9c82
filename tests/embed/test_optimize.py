"""The optimized graph: built once per DOCSHELF_HOME, reused, rebuilt when damaged, the plain vectors."""

from __future__ import annotations

import collections
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from docshelf.embed import local, optimize
from docshelf.embed.bundled import read_model
from docshelf.embed.local import LocalMiniLM

TEXTS = [
    "A long paragraph about configuring the application: " + "settings and options " * 30,
    "Blueprints",
    "How do I install the package?",
    "The test client sends requests to the application without running a server.",
    "def create_app(test_config=None):\n    app = Flask(__name__, instance_relative_config=True)",
    "Flask est un micro-framework web écrit en Python ; il repose sur Werkzeug et Jinja.",
    "",
]


@pytest.fixture(scope="module")
def plain_vectors() -> np.ndarray:
    return LocalMiniLM(optimize=False).embed_documents(TEXTS)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Count the graph rewrites (one entry per rewrite, its `int8`) from here on."""
    done: list[bool] = []
    rewrite = optimize.rewrite

    def counting(source: bytes, *, int8: bool = True) -> bytes:
        done.append(int8)
        return rewrite(source, int8=int8)

    monkeypatch.setattr(optimize, "rewrite", counting)
    return done


def cached(home: Path) -> tuple[Path, Path]:
    """Return the one cached model under `home` and its sha256 file."""
    (model,) = (home / "models").glob("*.onnx")
    return model, model.with_name(model.name + ".sha256")


def test_the_cache_is_built_once_then_reused(docshelf_home: Path, builds: list[bool]) -> None:
    first = LocalMiniLM()
    first.embed_query("text")
    assert first.optimized
    assert builds == [True]  # the default: the int8 graph
    model, sidecar = cached(docshelf_home)
    assert sidecar.read_text().split() == [hashlib.sha256(model.read_bytes()).hexdigest(), model.name]
    before = model.stat()

    second = LocalMiniLM()
    second.embed_query("text")
    assert second.optimized
    assert builds == [True]
    after = model.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not list((docshelf_home / "models").glob(".*.tmp"))  # no temporary file left behind


def test_the_cache_is_named_by_source_onnxruntime_and_recipe(docshelf_home: Path) -> None:
    import onnxruntime

    LocalMiniLM().embed_query("text")
    model, _ = cached(docshelf_home)
    key = f"{local.MODEL_SHA256[:16]}.ort-{onnxruntime.__version__}.r{optimize.RECIPE}.int8"
    assert model.name == f"all-MiniLM-L6-v2.{key}.onnx"


def _flip_a_byte(model: Path, sidecar: Path) -> None:
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))


def _truncate(model: Path, sidecar: Path) -> None:
    model.write_bytes(model.read_bytes()[:1000])


def _lose_the_hash(model: Path, sidecar: Path) -> None:
    sidecar.unlink()


def _wrong_hash(model: Path, sidecar: Path) -> None:
    sidecar.write_text("0" * 64 + "  model.onnx\n")


@pytest.mark.parametrize("damage", [_flip_a_byte, _truncate, _lose_the_hash, _wrong_hash])
def test_a_damaged_cache_is_rebuilt(
    docshelf_home: Path, builds: list[bool], damage: Callable[[Path, Path], None]
) -> None:
    LocalMiniLM().embed_query("text")
    model, sidecar = cached(docshelf_home)
    good = model.read_bytes()
    damage(model, sidecar)

    embedder = LocalMiniLM()
    embedder.embed_query("text")
    assert embedder.optimized
    assert builds == [True, True]
    assert model.read_bytes() == good  # the rewrite is deterministic
    assert sidecar.read_text().split()[0] == hashlib.sha256(good).hexdigest()


def test_optimized_vectors_are_the_plain_models(plain_vectors: np.ndarray) -> None:
    vectors = LocalMiniLM().embed_documents(TEXTS)
    assert np.min(np.sum(vectors * plain_vectors, axis=1)) >= 0.999
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_the_exact_graph_gives_the_plain_vectors(plain_vectors: np.ndarray) -> None:
    embedder = LocalMiniLM(int8=False)
    np.testing.assert_allclose(embedder.embed_documents(TEXTS), plain_vectors, atol=1e-5)
    assert embedder.optimized


@pytest.mark.parametrize("int8", [True, False])
def test_the_rewrite_fuses_every_layer(int8: bool) -> None:
    graph = onnx.load_from_string(optimize.rewrite(read_model(), int8=int8)).graph
    ops = collections.Counter(node.op_type for node in graph.node)
    assert (ops["Attention"], ops["BiasGelu"]) == (6, 6)
    assert (ops["MatMulNBits"], ops["MatMul"]) == ((18, 0) if int8 else (0, 18))
    assert not {"Softmax", "Erf", "Transpose", "IsNaN"} & set(ops)


def test_a_graph_that_fails_the_check_is_not_used(
    docshelf_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    plain_vectors: np.ndarray,
) -> None:
    monkeypatch.setattr(local, "MIN_COSINE", 1.5)  # no graph can pass
    embedder = LocalMiniLM()
    with caplog.at_level(logging.WARNING):
        vectors = embedder.embed_documents(TEXTS)
    assert not embedder.optimized
    np.testing.assert_array_equal(vectors, plain_vectors)
    assert not list((docshelf_home / "models").glob("*.onnx"))
    assert "plain model" in caplog.text


def test_when_int8_fails_the_exact_graph_is_cached(
    docshelf_home: Path, monkeypatch: pytest.MonkeyPatch, plain_vectors: np.ndarray
) -> None:
    rewrite = optimize.rewrite

    def no_int8(source: bytes, *, int8: bool = True) -> bytes:
        if int8:
            raise optimize.RewriteError("as if this onnxruntime had no 8-bit MatMulNBits")
        return rewrite(source, int8=False)

    monkeypatch.setattr(optimize, "rewrite", no_int8)
    embedder = LocalMiniLM(int8=True)
    np.testing.assert_allclose(embedder.embed_documents(TEXTS), plain_vectors, atol=1e-5)
    assert embedder.optimized
    model, _ = cached(docshelf_home)
    assert model.name.endswith(".int8.onnx")  # the best graph for this request, under its name
    assert "MatMulNBits" not in {node.op_type for node in onnx.load(model).graph.node}


def test_an_unwritable_cache_still_gives_the_optimized_graph(
    docshelf_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docshelf_home.mkdir(parents=True, exist_ok=True)
    (docshelf_home / "models").write_text("a file where the cache folder should be")
    embedder = LocalMiniLM()
    with caplog.at_level(logging.WARNING):
        embedder.embed_query("text")
    assert embedder.optimized
    assert "could not cache" in caplog.text
