"""The int8 ONNX graph of all-MiniLM-L6-v2, built from the packaged safetensors weights.

Built with the `onnx` package's helpers (no exporter, no torch) and kept in the user's cache
(graph_file: $XDG_CACHE_HOME/kgpub or ~/.cache/kgpub, written atomically, named by a digest
of the weights and of this module), so that a process that makes an Encoder loads a file
(importing onnx and building take some 3 s of a busy machine; loading, 0.5 s). It is run by
ONNX Runtime on one thread (graph/enrich/model.py). What it computes, for the
token ids of ONE text (input "ids", int64 (1, L)), is the BERT forward pass of the model
(embeddings, six layers of attention and feed-forward, each closed by a residual sum and a
LayerNorm) and the mean of its token vectors (output "pooled", float32 (1, 384)); model.py
normalises it.

The eight weight matrices of each layer's dense products (query, key and value side by
side, the attention's output, the feed-forward's two) are int8, symmetric, one scale per
output column; their products run as ONNX Runtime's DynamicQuantizeMatMul, which quantises
its float input to uint8 with one scale and zero point for the whole tensor, then takes an
int8 product (VNNI's dot products on CPUs that have them). The whole tensor is one text's
tokens, so a text's vector depends on that text alone: the same bits alone or among others,
run after run. Everything else (embeddings, attention's scores and softmax, GELU, LayerNorm,
the pooling) stays float32.

Operators: ONNX opset 18 (onnx.ai/onnx/operators: Gather, LayerNormalization, Split ...) and
ONNX Runtime's contrib operators of domain com.microsoft (docs/ContribOperators.md:
DynamicQuantizeMatMul, Gelu). Not SkipLayerNormalization: measured 4.5x slower than Add and
LayerNormalization on this machine's build of ONNX Runtime 1.32 (266 against 58 µs for 90
tokens).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graph.errors import EnrichmentUnavailable

HIDDEN = 384
HEADS = 12
LAYERS = 6
OPSET = 18
INPUT = "ids"
OUTPUT = "pooled"
GRAPH_PREFIX = "all-minilm-l6-v2-int8-"  # the cached graphs' names (graph_file)


def cache_dir() -> Path:
    """Where built graphs are kept: $XDG_CACHE_HOME/kgpub, else ~/.cache/kgpub (XDG Base
    Directory Specification 0.8)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kgpub"


def graph_file(weights: Path, cache: Path | None = None) -> Path | bytes:
    """The graph of the weights: a file of the cache, built and written there if missing, or
    the graph itself (bytes) when the cache cannot be written. The file's name is a digest
    of the weights and of this module's source, so that other weights or another way of
    building never read a stale graph (and a new one removes them: ONNX Runtime reads the file
    whole when a model is made); written to a temporary file renamed into place, so that
    processes building it side by side never read half of one."""
    digest = hashlib.sha256()
    for part in (weights, Path(__file__)):
        with part.open("rb") as source:
            digest.update(hashlib.file_digest(source, "sha256").digest())
    cache = cache or cache_dir()
    path = cache / f"{GRAPH_PREFIX}{digest.hexdigest()[:32]}.onnx"
    if path.is_file():
        return path
    graph = build_graph(weights)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache, suffix=".part", delete=False) as f:
            f.write(graph)
        os.replace(f.name, path)
        for stale in cache.glob(f"{GRAPH_PREFIX}*.onnx"):  # graphs of earlier weights or code
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:
        return graph
    return path


def read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a .safetensors file (8-byte header length, JSON header, raw data)."""
    kinds = {"F32": np.float32, "I64": np.int64}
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    (size,) = struct.unpack("<Q", bytes(raw[:8]))
    header = json.loads(bytes(raw[8 : 8 + size]))
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        data = raw[8 + size + start : 8 + size + end].view(kinds[spec["dtype"]])
        tensors[name] = np.array(data.reshape(spec["shape"]))
    return tensors


def quantise_columns(w: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.int8], Any]:
    """A (in, out) float matrix as int8 values and one float32 scale per output column
    (symmetric: w ≈ values * scale, values in [-127, 127])."""
    scale = np.maximum(np.abs(w).max(axis=0), np.float32(1e-30)) / np.float32(127)
    values = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return values, scale.astype(np.float32)


class _Builder:
    """The nodes and initialisers of a graph being built, names made unique by a counter."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initialisers: list[Any] = []

    def const(self, name: str, value: npt.NDArray[Any]) -> str:
        self.initialisers.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attrs: Any) -> Any:
        names = [f"{op}_{len(self.nodes)}_{i}" for i in range(outputs)]
        self.nodes.append(self.helper.make_node(op, inputs, names, **attrs))
        return names[0] if outputs == 1 else names


def build_graph(weights: Path) -> bytes:
    """The serialised ONNX model (a protobuf) of the model whose safetensors are given."""
    try:
        from onnx import TensorProto, helper
    except ImportError as exc:
        raise EnrichmentUnavailable(
            "the onnx package is not installed (pip install 'kgpub[enrich]')"
        ) from exc
    w = read_safetensors(weights)
    g = _Builder()
    f32 = np.float32
    ms = "com.microsoft"

    def dense(x: str, name: str, matrix: npt.NDArray[np.float32], bias: Any) -> str:
        """x @ matrix + bias, the matrix (in, out) as int8 columns (the module docstring)."""
        values, scale = quantise_columns(matrix)
        inputs = [x, g.const(name + ".q", values), g.const(name + ".scale", scale)]
        inputs += ["", g.const(name + ".bias", bias.astype(f32))]  # no zero point: symmetric
        return str(g.node("DynamicQuantizeMatMul", inputs, domain=ms))

    def norm(x: str, prefix: str) -> str:
        gamma = g.const(prefix + ".weight", w[prefix + ".weight"])
        beta = g.const(prefix + ".bias", w[prefix + ".bias"])
        return str(g.node("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-12))

    # Embeddings: word + position (the first L) + token type 0, then LayerNorm.
    shape = g.node("Shape", [INPUT])
    zero = g.const("zero", np.array([0], np.int64))
    one = g.const("one", np.array([1], np.int64))
    length = g.node("Slice", [shape, one, g.const("two", np.array([2], np.int64))])
    words = g.node("Gather", [g.const("words", w["embeddings.word_embeddings.weight"]), INPUT])
    positions = g.node(
        "Slice", [g.const("positions", w["embeddings.position_embeddings.weight"]), zero, length]
    )
    token_type = g.const("token_type", w["embeddings.token_type_embeddings.weight"][0])
    embedded = g.node("Add", [g.node("Add", [words, positions]), token_type])
    x = norm(embedded, "embeddings.LayerNorm")  # (1, L, 384)
    # Attention's shapes: (1, L, 3 [q k v], heads, 32) -> per head (1, 1, heads, L, 32).
    qkv_shape = g.const("qkv_shape", np.array([0, 0, 3, HEADS, HIDDEN // HEADS], np.int64))
    hidden_shape = g.const("hidden_shape", np.array([0, -1, HIDDEN], np.int64))
    scale = f32(1 / math.sqrt(HIDDEN // HEADS))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        att = p + "attention.self."
        # The scores' 1/√32 is folded into the query's weights and bias (5% less CPU).
        qkv_w = np.concatenate(
            [w[att + "query.weight"].T * scale, w[att + "key.weight"].T, w[att + "value.weight"].T],
            axis=1,
        )
        qkv_b = np.concatenate(
            [w[att + "query.bias"] * scale, w[att + "key.bias"], w[att + "value.bias"]]
        )
        qkv = g.node("Reshape", [dense(x, p + "qkv", qkv_w, qkv_b), qkv_shape])
        q, k, v = g.node("Split", [qkv], outputs=3, axis=2, num_outputs=3)
        q = g.node("Transpose", [q], perm=[0, 2, 3, 1, 4])
        k = g.node("Transpose", [k], perm=[0, 2, 3, 4, 1])
        v = g.node("Transpose", [v], perm=[0, 2, 3, 1, 4])
        scores = g.node("MatMul", [q, k])
        context = g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v])
        context = g.node(
            "Reshape", [g.node("Transpose", [context], perm=[0, 3, 1, 2, 4]), hidden_shape]
        )
        out = dense(
            context,
            p + "attention.output",
            w[p + "attention.output.dense.weight"].T,
            w[p + "attention.output.dense.bias"],
        )
        h = norm(g.node("Add", [out, x]), p + "attention.output.LayerNorm")
        up = dense(
            h, p + "up", w[p + "intermediate.dense.weight"].T, w[p + "intermediate.dense.bias"]
        )
        gelu = g.node("Gelu", [up], domain=ms)  # BERT's exact GELU, x * Φ(x) (erf)
        down = dense(gelu, p + "down", w[p + "output.dense.weight"].T, w[p + "output.dense.bias"])
        x = norm(g.node("Add", [down, h]), p + "output.LayerNorm")
    g.nodes.append(helper.make_node("ReduceMean", [x, one], [OUTPUT], keepdims=0))
    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2-int8",
        [helper.make_tensor_value_info(INPUT, TensorProto.INT64, [1, "tokens"])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, HIDDEN])],
        g.initialisers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(ms, 1)]
    )
    model.ir_version = 9  # read by every ONNX Runtime since 1.15
    serialised: bytes = model.SerializeToString()
    return serialised
