"""A helper process's life tied to its parent's: on Linux, the kernel kills the helper when the
process that started it dies (SIGKILL included), so a killed build leaves no writer behind.

Imported first by the helper's own code (graph/publication.py's dump writer runs
`python -c`): light on purpose, standard library only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

# prctl(2) option: the signal this process gets when its parent dies.
_PR_SET_PDEATHSIG = 1
# What a helper exits with when its parent was gone before it could ask (128 + SIGKILL, as a
# shell reports a process killed by SIGKILL).
ORPHANED = 128 + signal.SIGKILL


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit at once (ORPHANED) if the
    parent, whose process id is `parent`, is gone already.

    prctl(2): the signal comes when the *thread* that started this process ends, so the parent
    must start it from a thread that outlives it. The parent may die before the request is
    made, and then no signal ever comes: this process has been given another parent by then,
    which getppid() shows after the request. Elsewhere than Linux, nothing is asked."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not granted (a seccomp sandbox): the helper runs as it did before
    if os.getppid() != parent:
        os._exit(ORPHANED)
