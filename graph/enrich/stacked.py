"""A matrix made of consecutive row blocks, read as one: a release's vectors, one block per
month (graph/enrich/read.py), each memory-mapped from its own file so that the server's
workers share them through the page cache, and a release links the months it did not change
instead of writing every vector again.

Stacked answers what the meaning search (graph/enrich/meaning.py) asks of its matrix: its
length, shape and dtype, a slice of consecutive rows and a gather of any rows, with the
values of the blocks concatenated (np.concatenate), without making that concatenation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from graph.enrich.model import DIMENSIONS

Int8 = npt.NDArray[np.int8]


class Stacked:
    """Row blocks of one width and dtype, read as their concatenation."""

    def __init__(self, blocks: Sequence[Int8]) -> None:
        # Plain views of the blocks (np.memmap's slices are slower to make, for nothing)
        self.blocks: list[Int8] = [b.view(np.ndarray) for b in blocks if len(b)]
        width = self.blocks[0].shape[1] if self.blocks else DIMENSIONS
        self.dtype = self.blocks[0].dtype if self.blocks else np.dtype(np.int8)
        # starts[i]: the first row of block i; starts[-1]: every row
        self.starts = np.cumsum([0, *(len(b) for b in self.blocks)], dtype=np.int64)
        self.shape = (int(self.starts[-1]), width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice | Sequence[int] | npt.NDArray[np.int64]) -> Int8:
        """Rows start:stop (a view when they are in one block), or the rows given, in their
        order (a copy)."""
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise ValueError("Stacked: a slice of consecutive rows only")
            if stop <= start:
                return np.empty((0, self.shape[1]), dtype=self.dtype)
            first = int(np.searchsorted(self.starts, start, side="right")) - 1
            last = int(np.searchsorted(self.starts, stop - 1, side="right")) - 1
            if first == last:
                base = int(self.starts[first])
                view: Int8 = self.blocks[first][start - base : stop - base]
                return view
            pieces = []
            for at in range(first, last + 1):
                base = int(self.starts[at])
                pieces.append(self.blocks[at][max(start - base, 0) : stop - base])
            joined: Int8 = np.concatenate(pieces)
            return joined
        rows = np.asarray(key, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError("Stacked: row out of range")
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        # The rows in order (the meaning search's are), cut where each block starts: a take
        # per block of its run of rows.
        order = None
        if len(rows) > 1 and bool(np.any(rows[1:] < rows[:-1])):
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
        gathered = out if order is None else np.empty_like(out)
        cuts = np.searchsorted(rows, self.starts).tolist()
        starts = self.starts.tolist()
        for at, block in enumerate(self.blocks):
            low, high = cuts[at], cuts[at + 1]
            if low < high:
                np.take(block, rows[low:high] - starts[at], axis=0, out=gathered[low:high])
        if order is not None:
            out[order] = gathered
        return out
