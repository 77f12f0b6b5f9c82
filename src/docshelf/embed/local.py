"""The bundled embedder: all-MiniLM-L6-v2 as int8 ONNX on onnxruntime, no torch, nothing downloaded.

The pipeline is sentence-transformers' for this model: WordPiece tokens
truncated to 256 (special tokens included), mean pooling over the attention
mask, L2 normalisation. Embedding is the cost of the whole product, so one
call is planned for throughput: texts are sorted by token length and cut
into batches of at most `batch_tokens` padded tokens, each padded only to
its own longest text, and the batches run on `threads` Python threads that
share one session (onnxruntime releases the GIL while it runs).
bench/embed.py measured the alternatives: on a CPU, small sorted batches
cost less CPU per token than batches of 8 or 32 and a fraction of their
memory; threads sharing one session run as fast as one session per thread
with 140 MB less memory, and faster than one session with two intra-op threads.

The session runs an optimized graph of the same model (docshelf.embed.optimize:
fused attention and GELU, int8 matrix multiplications unless asked not to), built on first use and
cached under DOCSHELF_HOME; `optimize=False` runs the file as shipped.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Tokenizer

from docshelf import config
from docshelf.embed.bundled import MODEL_SHA256, read_model
from docshelf.embed.optimize import optimized_model
from docshelf.embed.tokenizer import count_tokens as _count_tokens
from docshelf.embed.tokenizer import load_tokenizer
from docshelf.errors import ConfigError, EmbedError

if TYPE_CHECKING:
    import onnxruntime

MODEL_ID = "local:all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256
DEFAULT_BATCH_TOKENS = 512
_OUTPUT = "last_hidden_state"
MIN_COSINE = 0.999
"""A newly built optimized graph is used only if its vectors of the probe texts are this close to the plain
model's."""
_PROBE_TEXTS = (
    "How do I register a blueprint?",
    "",
    "The application context keeps track of the application-level data during a request, CLI command, "
    "or other activity. Rather than passing the application around to each function, the current_app "
    "and g proxies are accessed instead.",
    "def create_app(test_config=None):\n    app = Flask(__name__, instance_relative_config=True)",
)
"""Texts of mixed lengths (so rows are padded) on which a freshly built optimized graph is checked."""
_UNCHANGED_OPTIMIZERS = ("SkipLayerNormFusion",)
"""onnxruntime fusions left out of the optimized session: on x86 its fused SkipLayerNormalization
ran about 7% slower than the Add and LayerNormalization it replaces (bench/embed.py)."""

log = logging.getLogger(__name__)


class LocalMiniLM:
    """The bundled all-MiniLM-L6-v2 embedder (384 dimensions, reads 256 tokens).

    Loading is lazy: constructing one is free, and onnxruntime is imported and
    the model verified and loaded on the first embed (about half a second).
    One instance is safe to share between threads.

    Args:
        threads: Batches run at once, each on one core; by default one per core
            this process may use. Use fewer to leave cores to other work.
        batch_tokens: Most tokens in one batch, padding included: texts of similar
            length run together until their padded size would pass this, so
            short texts share a batch and 256-token ones run about two at a time.
        intra_op_threads: onnxruntime threads inside one batch. More than 1 only
            speeds up a call with a single text, such as a query, and
            `threads × intra_op_threads` should not pass the number of cores.
        optimize: Run the optimized graph of the same model (docshelf.embed.optimize, built
            once and cached under DOCSHELF_HOME/models); False runs model.onnx as shipped.
            If no optimized graph can be had, the plain one runs (and a warning is logged).
        int8: With `optimize`, run the dense layers as int8 matrix multiplications too (the
            default): about 1.2–1.3× the exact graph's throughput, vectors within cosine 0.999 of
            the plain model's (0.9996 at worst on 3 000 real chunks); on the dev question set the
            answer page keeps its rank on 59 of 60 questions, the other moving one place on a tie
            within 0.0002 cosine (bench/embed.py, bench/retrieval.py).
            False runs the exact graph: vectors equal to the plain model's to float rounding.
        model_path: The model.onnx to run instead of the installed package's; it must
            still be the file docshelf pins (sha256), or loading raises ConfigError.
        tokenizer_path: Likewise for tokenizer.json.
    """

    model_id: str = MODEL_ID
    dim: int = DIM
    max_tokens: int = MAX_TOKENS

    def __init__(
        self,
        *,
        threads: int | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        intra_op_threads: int = 1,
        optimize: bool = True,
        int8: bool = True,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
    ) -> None:
        threads = _usable_cores() if threads is None else threads
        for name, value in (
            ("threads", threads),
            ("batch_tokens", batch_tokens),
            ("intra_op_threads", intra_op_threads),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, not {value}")
        self.threads = threads
        self.batch_tokens = batch_tokens
        self.intra_op_threads = intra_op_threads
        self.optimize = optimize
        self.int8 = int8
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path
        self.optimized = False
        """Whether the loaded session runs the optimized graph (known after the first embed)."""
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._load_lock = threading.Lock()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), 384), one unit vector per text, in input order.

        Text past 256 tokens is not read. An empty string is embedded like any
        other text (its vector is the model's view of an empty input).
        """
        out = np.empty((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch(list(texts))
        batches = plan_batches([len(e.ids) for e in encodings], self.batch_tokens, self.threads)

        def embed_batch(batch: list[int]) -> None:
            out[batch] = _embed(session, [encodings[i].ids for i in batch])

        if self.threads == 1 or len(batches) == 1:
            for batch in batches:
                embed_batch(batch)
        else:
            with ThreadPoolExecutor(min(self.threads, len(batches)), "docshelf-embed") as pool:
                # list() re-raises the first error a batch hit.
                list(pool.map(embed_batch, batches))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """Return the unit vector of a search query, shape (384,); MiniLM has no query prefix."""
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        """Return how many model tokens `text` is, without special tokens and without truncation."""
        return _count_tokens(text)

    def _load(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        """Return the session and the truncating tokenizer, loading them on first use."""
        with self._load_lock:
            if self._session is None or self._tokenizer is None:
                tokenizer = _truncating_tokenizer(self.tokenizer_path)
                source = read_model(self.model_path)
                options = session_options(self.intra_op_threads)
                session = None
                if self.optimize:
                    session = _optimized_session(source, tokenizer, options, self.int8)
                self.optimized = session is not None
                self._session = session or create_session(source, options)
                self._tokenizer = tokenizer
            return self._session, self._tokenizer


def plan_batches(lengths: Sequence[int], batch_tokens: int, workers: int = 1) -> list[list[int]]:
    """Return batches of indexes into `lengths`, shortest texts first.

    A batch grows while its padded size (texts × longest) stays within
    `batch_tokens`; a longer text runs alone. Sorting puts texts of similar
    length together, so padding wastes little. No batch takes more than its
    share of the texts, so every worker gets one even when there are few.
    """
    share = -(-len(lengths) // workers)
    batches: list[list[int]] = []
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        # Ascending order makes this text the longest of the batch it joins.
        if batch and ((len(batch) + 1) * lengths[index] > batch_tokens or len(batch) == share):
            batches.append(batch)
            batch = []
        batch.append(index)
    if batch:
        batches.append(batch)
    return batches


def _optimized_session(
    source: bytes, tokenizer: Tokenizer, options: onnxruntime.SessionOptions, int8: bool
) -> onnxruntime.InferenceSession | None:
    """Return a session on the optimized graph of `source` (cached, or built and checked), or None.

    None means the optimized graph could not be had (onnx missing, an
    onnxruntime that lacks its operators, vectors off): that is logged, and
    the caller runs the plain model, which gives the right vectors, only slower.
    """

    checked: dict[int, onnxruntime.InferenceSession] = {}

    def check(candidate: bytes) -> None:
        rows = [encoding.ids for encoding in tokenizer.encode_batch(list(_PROBE_TEXTS))]
        plain = _embed(create_session(source, session_options(1)), rows)
        session = create_session(candidate, options, _UNCHANGED_OPTIMIZERS)
        worst = float(np.min(np.sum(plain * _embed(session, rows), axis=1)))
        if worst < MIN_COSINE:
            raise EmbedError(f"its vectors are off (cosine {worst:.4f} to the plain model's)")
        checked[id(candidate)] = session

    try:
        model = optimized_model(source, MODEL_SHA256, config.home() / "models", check, int8=int8)
        # A model built just now was checked on a session that can serve as it is.
        return checked.get(id(model)) or create_session(model, options, _UNCHANGED_OPTIMIZERS)
    # The optimized graph is only a speed-up: whatever stops it (an import, an
    # onnxruntime without its operators, a failed check), the plain model still works.
    except Exception as exc:
        log.warning("embedding with the plain model, the optimized one is not available: %s", exc)
        return None


def session_options(intra_op_threads: int) -> onnxruntime.SessionOptions:
    """Return onnxruntime session options for batches of changing shape on a shared CPU."""
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    # Every batch has a new shape, so a memory pattern planned for one is never reused.
    options.enable_mem_pattern = False
    # Spinning worker threads would take CPU from the crawler between operators.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def create_session(
    model: Path | bytes, options: onnxruntime.SessionOptions, disabled_optimizers: Sequence[str] = ()
) -> onnxruntime.InferenceSession:
    """Return an onnxruntime CPU session running `model` (a file, or the bytes of one)."""
    try:
        return _onnxruntime().InferenceSession(
            model if isinstance(model, bytes) else str(model),
            sess_options=options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(disabled_optimizers) or None,
        )
    # onnxruntime's errors (Fail, InvalidProtobuf, ...) share no base class but Exception.
    except Exception as exc:
        raise EmbedError(f"onnxruntime could not load the embedding model: {exc}") from exc


def _usable_cores() -> int:
    """Return how many cores this process may run on (its CPU affinity, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _onnxruntime() -> ModuleType:
    """Return the onnxruntime module, imported on first use so that `docshelf --help` never loads it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError("local embeddings need onnxruntime: pip install onnxruntime") from exc
    return onnxruntime


def _truncating_tokenizer(path: Path | None = None) -> Tokenizer:
    """Return the tokenizer in `path` (default: the pinned one), truncating to 256 tokens with special tokens.

    Its own instance, because the shared one must keep counting tokens past the limit.
    """
    tokenizer = load_tokenizer(path)
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


def _embed(session: onnxruntime.InferenceSession, rows: Sequence[Sequence[int]]) -> np.ndarray:
    """Return the unit vectors of one batch of token ids, padded to its longest row."""
    ids, mask = _pad(rows)
    try:
        (hidden,) = session.run(
            [_OUTPUT], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
    # onnxruntime's errors share no base class but Exception.
    except Exception as exc:
        raise EmbedError(f"onnxruntime failed on a batch of {len(rows)} texts: {exc}") from exc
    return _mean_pool_normalise(hidden, mask)


def _pad(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Return (input_ids, attention_mask) as int64 arrays, right-padded with 0 to the longest row."""
    ids = np.zeros((len(rows), max(map(len, rows))), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, tokens in enumerate(rows):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
    return ids, mask


def _mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return the mean of each row's unmasked token vectors, scaled to unit length, as float32."""
    weights = mask.astype(np.float32)
    # (batch, 1, seq) @ (batch, seq, dim): one matmul sums the real tokens of every row.
    summed = (weights[:, None, :] @ hidden)[:, 0, :]
    pooled = summed / weights.sum(axis=1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
