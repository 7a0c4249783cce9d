"""Run the Flask app under gunicorn (a production WSGI server), from `kgpub serve`."""

from __future__ import annotations

import contextlib
import ctypes
from typing import Any

from gunicorn.app.base import BaseApplication

from graph.errors import PublicationError
from server.app import create_app
from server.front import front_worker

# Threads of a worker beyond its query processes: a page never waits behind SPARQL queries. A
# query holds a thread while its process runs it; one that finds every process busy is refused
# at once (503), so at most `query_concurrency` threads wait on queries and these are left.
PAGE_THREADS = 4


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application


def gunicorn_options(settings: dict[str, Any]) -> dict[str, Any]:
    """gunicorn settings for a kgpub server."""
    return {
        "bind": f"{settings['host']}:{settings['port']}",
        "workers": int(settings["workers"]),
        # gthread whose threads take only requests that have arrived whole (server/front.py):
        # slow or silent clients wait in the event loop, not in a thread.
        "worker_class": front_worker(settings["send_timeout"]),
        "threads": int(settings["query_concurrency"]) + PAGE_THREADS,
        # The worker's event loop tells the arbiter it is alive every second, whatever its
        # threads do; one that says nothing for this long is hung, and is killed and replaced.
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        # The longest request line gunicorn allows (its default is 4094): SPARQL clients send
        # queries of several kilobytes by GET (the Protocol's query via GET). Longer ones get
        # 414 URI Too Long and go by POST.
        "limit_request_line": 8190,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "kgpub",
        # gunicorn 25+ opens a management socket at one fixed path per user: several servers
        # (tests, a bench next to a running site) would take it from each other, and kgpub
        # has no use for it.
        "control_socket_disable": True,
        "post_worker_init": _take_up_release,
    }


def _take_up_release(worker: Any) -> None:
    """Each worker takes up the current release as it starts (reads its manifest), before
    the first visitor comes; the release's files are opened by the requests that need them."""
    current = getattr(worker.wsgi, "extensions", {}).get("kgpub")
    if current is not None:
        with contextlib.suppress(PublicationError):
            current.get()


# glibc gives each thread that contends for memory an arena of its own (up to 8 per core), and
# an arena keeps what its threads freed for their next allocations: a worker's threads each
# held the high-water mark of the largest answers they had made (a word search over a million
# entries reads tens of MiB). Two arenas for a whole worker, as MALLOC_ARENA_MAX=2 does.
ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameters (glibc malloc.h)
_M_MMAP_THRESHOLD = -3
# glibc maps a block of 128 KiB or more on its own and unmaps it when freed, but raises that
# threshold to the size of each mapped block freed (up to 32 MiB): after a worker's first
# word search over a million entries (arrays of MiBs), such blocks came from the arenas and
# their high-water mark stayed (200 searches at 1M added 42 MiB to a worker with two arenas,
# 33 with this fixed, and 5 once the facet rows were mapped: graph/index.py).
MMAP_THRESHOLD = 256 << 10


def limit_malloc(arenas: int = ARENAS, threshold: int = MMAP_THRESHOLD) -> bool:
    """Cap the malloc arenas of this process and the workers it forks, and fix the size from
    which a block is mapped on its own (and given back when freed); False where the C library
    is not glibc (nothing is done)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return bool(
        mallopt is not None
        and mallopt(_M_ARENA_MAX, arenas) == 1
        and mallopt(_M_MMAP_THRESHOLD, threshold) == 1
    )


def serve(settings: dict[str, Any]) -> int:
    """Serve the current publication until interrupted."""
    limit_malloc()
    app = create_app({"KGPUB": settings})
    _Gunicorn(app, gunicorn_options(settings)).run()
    return 0
