"""A faster graph of the bundled model: built once from the pinned file, cached under DOCSHELF_HOME.

The bundled model.onnx is a PyTorch (dynamo) export whose weights are stored
as int8 with one scale per output column and turned back into float32 when
onnxruntime loads it, so it runs as a float32 model (there is no
MatMulInteger or DynamicQuantizeLinear in it). onnxruntime's own fusions and
`onnxruntime.transformers.optimizer` (model_type "bert") do not recognise
this export's attention (scaled dot-product attention with the scale split
over Q and K, a NaN guard after the softmax), so this module rewrites the
graph itself, knowing the one file it is given (its sha256 is pinned):

1. each layer's attention, from the Q/K/V projections to the merged heads,
   becomes one `com.microsoft.Attention` (one Q/K/V matrix multiplication,
   no head transposes in the graph);
2. the bias and erf GELU after the first feed-forward layer become one
   `com.microsoft.BiasGelu`;
3. with `int8`, the other matrix multiplications (attention output, both
   feed-forward layers) become `com.microsoft.MatMulNBits` with 8 bits: the
   file's own int8 weights and scales, unchanged, multiplied in int8 against
   activations quantised per row in blocks (`accuracy_level` 4). This is the
   one step that is not exact. The first feed-forward layer, which reads the
   layer-normed hidden state, is the sensitive one and gets blocks of 16
   values; the others 128.

Steps 1-2 are exact (vectors within 1e-6); with step 3, vectors stay within
cosine 0.999 of the plain model's, short texts being the farthest. Every
build is checked against the plain model before it is cached, and an int8
graph that fails the check gives way to the exact one. bench/embed.py
measures both speed and distance.

The result is written to `<DOCSHELF_HOME>/models/`, named by the source
model's sha256, the onnxruntime version and `RECIPE`, with its own sha256 in
a file beside it; a cached file whose hash does not match is rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

RECIPE = 1
"""Version of the rewrite below; part of the cache key, so changing the rewrite rebuilds every cache."""
NUM_HEADS = 12
"""all-MiniLM-L6-v2: 12 heads of 32 dimensions (hidden size 384)."""
BLOCK_SIZE = 128
"""Activations are quantised to int8 in blocks of this many values along each row."""
GELU_INPUT_BLOCK_SIZE = 16
"""Block size for the first feed-forward layer (the one whose output goes to the GELU): with 128 there,
the vector of a very short text (an empty one: 2 tokens) fell to cosine 0.998 of the plain model's."""
MS_DOMAIN = "com.microsoft"


class RewriteError(ValueError):
    """The graph does not have the shape this rewrite expects (it only knows the pinned model)."""


def cache_file(cache_dir: Path, source_sha256: str, *, int8: bool = True) -> Path:
    """Return where the optimized model of the source with `source_sha256` is cached, for this onnxruntime."""
    import onnxruntime

    kind = "int8" if int8 else "exact"
    key = f"{source_sha256[:16]}.ort-{onnxruntime.__version__}.r{RECIPE}.{kind}"
    return cache_dir / f"all-MiniLM-L6-v2.{key}.onnx"


def optimized_model(
    source: bytes, source_sha256: str, cache_dir: Path, verify: Callable[[bytes], None], *, int8: bool = True
) -> bytes:
    """Return the optimized model: the cached file if its sha256 checks out, else built, verified and cached.

    Args:
        source: The bytes of the plain model, already checked against `source_sha256`.
        source_sha256: Its sha256, which names the cache file.
        cache_dir: Folder of the cache (created if missing).
        verify: Raises if a freshly built model does not give the plain model's vectors.
            If neither the graph asked for nor the exact one passes, the error propagates
            and nothing is cached.
        int8: Ask for the int8 graph (step 3); if it fails `verify`, the exact one is
            built and cached under its name.

    A cache that cannot be written (read-only home) is logged, and the model
    built in memory is used all the same.
    """
    path = cache_file(cache_dir, source_sha256, int8=int8)
    sidecar = path.with_name(path.name + ".sha256")
    cached = _read_verified(path, sidecar)
    if cached is not None:
        return cached
    built = _build(source, verify, int8)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, built)
        # The hash is written last: a crash in between leaves a mismatch, which rebuilds.
        _write_atomically(sidecar, f"{hashlib.sha256(built).hexdigest()}  {path.name}\n".encode())
    except OSError as exc:
        log.warning("could not cache the optimized embedding model in %s: %s", cache_dir, exc)
    return built


def _build(source: bytes, verify: Callable[[bytes], None], int8: bool) -> bytes:
    """Return the rewrite of `source` that passes `verify`: int8 if asked for and it passes, else exact."""
    if int8:
        try:
            built = rewrite(source, int8=True)
            verify(built)
            return built
        # Whatever stops it (an onnxruntime without 8-bit MatMulNBits, vectors off
        # on this CPU's kernels), the exact rewrite is still worth having.
        except Exception as exc:
            log.warning("not using int8 matrix multiplications for the embedding model: %s", exc)
    built = rewrite(source, int8=False)
    verify(built)
    return built


def rewrite(source: bytes, *, int8: bool = True) -> bytes:
    """Return the serialized optimized graph of the bundled model (see the module doc for the steps).

    Args:
        source: The bytes of the pinned model.
        int8: Also run the dense layers as int8 matrix multiplications (step 3).

    Raises:
        RewriteError: the graph is not the pinned model's.
    """
    import onnx

    model = onnx.load_from_string(source)
    graph = model.graph
    softmaxes = [node for node in graph.node if node.op_type == "Softmax"]
    if not softmaxes:
        raise RewriteError("no attention found")
    mask = _int32_mask(graph)
    for softmax in softmaxes:
        _fuse_attention(graph, softmax, mask)
    _prune(graph)
    gelus = sum(_fuse_bias_gelu(graph, node) for node in list(graph.node) if node.op_type == "Erf")
    if gelus != len(softmaxes):
        raise RewriteError(f"found {gelus} GELU for {len(softmaxes)} layers")
    if int8:
        gelu_inputs = {node.input[0] for node in graph.node if node.op_type == "BiasGelu"}
        for node in list(graph.node):
            if node.op_type == "MatMul":
                block = GELU_INPUT_BLOCK_SIZE if node.output[0] in gelu_inputs else BLOCK_SIZE
                _int8_matmul(graph, node, block)
    _prune(graph)
    model.opset_import.append(onnx.helper.make_opsetid(MS_DOMAIN, 1))
    return model.SerializeToString()


def _int32_mask(graph: onnx.GraphProto) -> str:
    """Add a node casting the attention_mask input to int32, the mask Attention takes; return its name."""
    import onnx

    name = "docshelf_attention_mask_int32"
    node = onnx.helper.make_node("Cast", ["attention_mask"], [name], to=onnx.TensorProto.INT32, name=name)
    graph.node.insert(0, node)
    return name


def _fuse_attention(graph: onnx.GraphProto, softmax: onnx.NodeProto, mask: str) -> None:
    """Replace one layer's attention, from its input to the merged heads, by one Attention node."""
    import onnx

    scores = _producer(graph, _producer(graph, softmax.input[0], "Add").input[0], "MatMul")
    x, w_q, b_q, scale_q = _projection(graph, scores.input[0])
    x_k, w_k, b_k, scale_k = _projection(graph, scores.input[1])
    probs = softmax.output[0]
    guard = _consumers(graph, probs, "Where")  # PyTorch turns NaN rows of all-masked queries into zeros
    if guard:
        probs = guard[0].output[0]
    weighted = _single_consumer(graph, probs, "MatMul")
    x_v, w_v, b_v, scale_v = _projection(graph, weighted.input[1])
    heads = _single_consumer(graph, weighted.output[0], "Transpose")
    merged = _single_consumer(graph, heads.output[0], "Reshape")
    if not x == x_k == x_v or list(_attribute(heads, "perm")) != [0, 2, 1, 3]:
        raise RewriteError(f"attention around {softmax.name} does not have the expected shape")
    hidden = _array(graph, _dequantized(graph, w_q)[0]).shape[1]
    if not np.isclose(scale_q * scale_k, (hidden // NUM_HEADS) ** -0.5, rtol=1e-5) or scale_v != 1.0:
        raise RewriteError(f"attention around {softmax.name} is not scaled by 1/sqrt(head size)")
    prefix = f"docshelf_attention_{softmax.name}"
    weight_nodes = _dequantize(graph, prefix, [_dequantized(graph, w) for w in (w_q, w_k, w_v)])
    _add_initializer(graph, f"{prefix}_bias", np.concatenate([_array(graph, b) for b in (b_q, b_k, b_v)]))
    attention = onnx.helper.make_node(
        "Attention",
        [x, f"{prefix}_weight", f"{prefix}_bias", mask],
        list(merged.output),
        name=prefix,
        domain=MS_DOMAIN,
        num_heads=NUM_HEADS,
    )
    _replace(graph, merged, [*weight_nodes, attention])


def _fuse_bias_gelu(graph: onnx.GraphProto, erf: onnx.NodeProto) -> int:
    """Replace `x = a + bias; x * (0.5 * (1 + erf(x / sqrt 2)))` around `erf` by BiasGelu(a, bias).

    Returns 1, the number of fusions, so the caller can count them.
    """
    import onnx

    divide = _producer(graph, erf.input[0], "Div")
    biased = _producer(graph, divide.input[0], "Add")
    a, bias = _split_constant(graph, biased)
    plus_one = _single_consumer(graph, erf.output[0], "Add")
    half = _single_consumer(graph, plus_one.output[0], "Mul")
    product = _single_consumer(graph, half.output[0], "Mul")
    constants = [
        _scalar(graph, divide.input[1]),
        _scalar(graph, _split_constant(graph, plus_one)[1]),
        _scalar(graph, _split_constant(graph, half)[1]),
    ]
    if not np.allclose(constants, [2**0.5, 1.0, 0.5]) or biased.output[0] not in product.input:
        raise RewriteError(f"{erf.name} is not part of an erf GELU")
    gelu = onnx.helper.make_node(
        "BiasGelu", [a, bias], list(product.output), name=f"docshelf_gelu_{erf.name}", domain=MS_DOMAIN
    )
    _replace(graph, product, [gelu])
    return 1


def _int8_matmul(graph: onnx.GraphProto, matmul: onnx.NodeProto, block: int) -> None:
    """Replace a MatMul by a dequantized int8 weight with MatMulNBits on the same int8 values and scales.

    `block` values of each activation row share one int8 scale.
    """
    import onnx

    try:
        quantized, scale = _dequantized(graph, matmul.input[1])
    except RewriteError:
        return  # not a weight: attention's own products are gone, the embeddings are Gathers
    weight = _array(graph, quantized)
    scales = _array(graph, scale).reshape(-1)
    k, n = weight.shape
    if weight.dtype != np.int8 or scales.shape != (n,) or k % block:
        raise RewriteError(f"{matmul.name}: weights are not int8 with one scale per column")
    blocks = k // block
    prefix = f"docshelf_int8_{matmul.name}"
    # MatMulNBits stores 8-bit values unsigned with zero point 128, one row per output column.
    stored = (weight.T.astype(np.int16) + 128).astype(np.uint8).reshape(n, blocks, block)
    _add_initializer(graph, f"{prefix}_B", stored)
    _add_initializer(graph, f"{prefix}_scales", np.repeat(scales, blocks).astype(np.float32))
    node = onnx.helper.make_node(
        "MatMulNBits",
        [matmul.input[0], f"{prefix}_B", f"{prefix}_scales"],
        list(matmul.output),
        name=prefix,
        domain=MS_DOMAIN,
        K=k,
        N=n,
        bits=8,
        block_size=block,
        accuracy_level=4,
    )
    _replace(graph, matmul, [node])


def _projection(graph: onnx.GraphProto, name: str) -> tuple[str, str, str, float]:
    """Return (input, weight, bias, scale) of `scale * heads(input @ weight + bias)` that produces `name`.

    Walks up through the reshapes and transposes that split heads and the
    multiplications by a constant scale, to the biased MatMul.
    """
    scale = 1.0
    node = _producer(graph, name)
    while node.op_type in ("Mul", "Reshape", "Transpose"):
        if node.op_type == "Mul":
            tensor, factor = _split_constant(graph, node)
            scale *= _scalar(graph, factor)
            name = tensor
        else:
            name = node.input[0]
        node = _producer(graph, name)
    if node.op_type != "Add":
        raise RewriteError(f"{name} is not a projection")
    product, bias = _split_constant(graph, node)
    matmul = _producer(graph, product, "MatMul")
    return matmul.input[0], matmul.input[1], bias, scale


def _dequantized(graph: onnx.GraphProto, name: str) -> tuple[str, str]:
    """Return the (int8 values, scales) initializers of a weight stored as `Cast(values) * scales`."""
    node = _producer(graph, name, "Mul")
    cast = _producer(graph, node.input[0], "Cast")
    if cast.input[0] not in _initializers(graph) or node.input[1] not in _initializers(graph):
        raise RewriteError(f"{name} is not a dequantized weight")
    return cast.input[0], node.input[1]


def _dequantize(graph: onnx.GraphProto, prefix: str, parts: list[tuple[str, str]]) -> list[onnx.NodeProto]:
    """Add the int8 weights `parts` side by side as one weight `<prefix>_weight`; return its Cast and Mul.

    Kept as int8 and a Cast like the source, so the file stays small and
    onnxruntime folds it into the same float32 values when it loads.
    """
    import onnx

    _add_initializer(graph, f"{prefix}_int8", np.concatenate([_array(graph, q) for q, _ in parts], axis=1))
    _add_initializer(graph, f"{prefix}_scales", np.concatenate([_array(graph, s) for _, s in parts], axis=1))
    return [
        onnx.helper.make_node(
            "Cast", [f"{prefix}_int8"], [f"{prefix}_float"], to=onnx.TensorProto.FLOAT, name=f"{prefix}_cast"
        ),
        onnx.helper.make_node(
            "Mul", [f"{prefix}_float", f"{prefix}_scales"], [f"{prefix}_weight"], name=f"{prefix}_mul"
        ),
    ]


def _replace(graph: onnx.GraphProto, old: onnx.NodeProto, new: list[onnx.NodeProto]) -> None:
    """Put `new` where `old` was (its inputs all exist by then, so the order stays topological)."""
    index = list(graph.node).index(old)
    del graph.node[index]
    for offset, node in enumerate(new):
        graph.node.insert(index + offset, node)


def _prune(graph: onnx.GraphProto) -> None:
    """Remove the nodes no graph output depends on, then the initializers no node reads."""
    nodes = list(graph.node)
    producers = {output: index for index, node in enumerate(nodes) for output in node.output}
    live: set[int] = set()
    pending = [output.name for output in graph.output]
    while pending:
        index = producers.get(pending.pop())
        if index is not None and index not in live:
            live.add(index)
            pending.extend(nodes[index].input)
    del graph.node[:]
    graph.node.extend(node for index, node in enumerate(nodes) if index in live)
    read = {name for node in graph.node for name in node.input}
    initializers = [tensor for tensor in graph.initializer if tensor.name in read]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _producer(graph: onnx.GraphProto, name: str, op_type: str | None = None) -> onnx.NodeProto:
    """Return the node that outputs `name`, which must be an `op_type` when one is given."""
    for node in graph.node:
        if name in node.output:
            if op_type is not None and node.op_type != op_type:
                break
            return node
    raise RewriteError(f"{name} is not the output of a {op_type or 'node'}")


def _consumers(graph: onnx.GraphProto, name: str, op_type: str) -> list[onnx.NodeProto]:
    """Return the `op_type` nodes that read `name`."""
    return [node for node in graph.node if node.op_type == op_type and name in node.input]


def _single_consumer(graph: onnx.GraphProto, name: str, op_type: str) -> onnx.NodeProto:
    """Return the one `op_type` node that reads `name`."""
    found = _consumers(graph, name, op_type)
    if len(found) != 1:
        raise RewriteError(f"{name} is read by {len(found)} {op_type} nodes, expected 1")
    return found[0]


def _split_constant(graph: onnx.GraphProto, node: onnx.NodeProto) -> tuple[str, str]:
    """Return (tensor, constant) of a binary node with one initializer input."""
    first, second = node.input
    initializers = _initializers(graph)
    if second in initializers and first not in initializers:
        return first, second
    if first in initializers and second not in initializers:
        return second, first
    raise RewriteError(f"{node.name} has no single constant input")


def _initializers(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {tensor.name: tensor for tensor in graph.initializer}


def _array(graph: onnx.GraphProto, name: str) -> np.ndarray:
    """Return the value of the initializer `name`."""
    from onnx import numpy_helper

    return numpy_helper.to_array(_initializers(graph)[name])


def _scalar(graph: onnx.GraphProto, name: str) -> float:
    value = _array(graph, name)
    if value.size != 1:
        raise RewriteError(f"{name} is not a scalar")
    return float(value.reshape(()))


def _add_initializer(graph: onnx.GraphProto, name: str, value: np.ndarray) -> None:
    from onnx import numpy_helper

    graph.initializer.append(numpy_helper.from_array(value, name))


def _attribute(node: onnx.NodeProto, name: str) -> Any:
    import onnx

    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return None


def _read_verified(path: Path, sidecar: Path) -> bytes | None:
    """Return the bytes of `path` if their sha256 is the one recorded in `sidecar`, else None."""
    try:
        recorded = sidecar.read_text(encoding="ascii").split()[0]
        data = path.read_bytes()
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    if hashlib.sha256(data).hexdigest() != recorded:
        log.warning("the cached optimized embedding model %s does not match its sha256; rebuilding it", path)
        return None
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, so no reader sees half a file."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
