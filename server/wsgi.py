"""Run the Flask app under gunicorn (a production WSGI server), from `kgpub serve`."""

from __future__ import annotations

import contextlib
from typing import Any

from gunicorn.app.base import BaseApplication

from graph.errors import PublicationError
from server.app import create_app


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
        "worker_class": "gthread",
        "threads": 4,
        # A SPARQL query may use its whole budget; give the worker room beyond it.
        "timeout": int(float(settings["query_timeout"])) + 30,
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
    """Each worker takes up the current release as it starts, which warms its caches
    (server/app.py WARM_UP) before the first visitor comes, not during their request."""
    current = getattr(worker.wsgi, "extensions", {}).get("kgpub")
    if current is not None:
        with contextlib.suppress(PublicationError):
            current.get()


def serve(settings: dict[str, Any]) -> int:
    """Serve the current publication until interrupted."""
    app = create_app({"KGPUB": settings})
    _Gunicorn(app, gunicorn_options(settings)).run()
    return 0
