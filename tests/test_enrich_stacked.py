"""graph/enrich/stacked.py: a release's months' vectors read as one matrix give, for every
slice and gather the meaning search asks for, the rows of their concatenation."""

from __future__ import annotations

import numpy as np
import pytest

from graph.enrich.stacked import Stacked


@pytest.mark.parametrize("sizes", [[5], [3, 0, 7, 1, 4], [1, 1, 1], []], ids=str)
def test_rows_are_those_of_the_concatenation(sizes: list[int]) -> None:
    rng = np.random.default_rng(len(sizes))
    blocks = [rng.integers(-127, 128, (n, 6), dtype=np.int8) for n in sizes]
    whole = np.concatenate(blocks) if sizes else np.empty((0, 384), dtype=np.int8)
    stacked = Stacked(blocks)
    assert len(stacked) == len(whole) and stacked.dtype == np.int8
    assert stacked.shape == (len(whole), 6 if sizes else 384)
    n = len(whole)
    for start in range(n + 1):
        for stop in range(start, n + 2):
            assert np.array_equal(stacked[start:stop], whole[start:stop]), (start, stop)
    for size in (0, 1, 3, n):
        rows = rng.integers(0, max(n, 1), size) if n else np.array([], dtype=np.int64)
        assert np.array_equal(stacked[rows], whole[rows])
        assert np.array_equal(stacked[sorted(rows.tolist())], whole[np.sort(rows)])
    with pytest.raises(IndexError):
        stacked[[n]]
