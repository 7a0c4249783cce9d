"""Thread pools of one process: each made on first use and made again in a forked child (a
pool's threads do not survive a fork: gunicorn forks its workers from the process that
imported these modules). The search counts its facets beside its hits (graph/index.py); the
meaning search reads the word search while it embeds the text (graph/enrich/meaning.py)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


class ProcessPool:
    """A ThreadPoolExecutor of `workers` threads for this process."""

    def __init__(self, workers: int, prefix: str) -> None:
        self._workers = workers
        self._prefix = prefix
        self._lock = threading.Lock()
        self._pool: tuple[int, ThreadPoolExecutor] | None = None

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pool[0] != os.getpid():
                made = ThreadPoolExecutor(self._workers, thread_name_prefix=self._prefix)
                self._pool = (os.getpid(), made)
            return self._pool[1]
