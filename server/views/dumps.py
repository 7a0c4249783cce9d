"""Blueprint 'dumps': the whole library as files, at /dumps/<file>, straight from the release.

Each dump the manifest lists (library.ttl, .nt, .jsonld, .rdf and a .gz of each) is sent by
Werkzeug's send_file with conditional=True: Content-Length, Range (206, 416), If-None-Match,
If-Modified-Since and HEAD. A dump made of parts (graph/parts.py: the library's dumps, and the
related entries' linkset, graph/enrich/linkset.py) is sent as the one stream of its parts, its
size told to make_conditional as send_file tells it a plain file's (a plain file, as releases
built before the parts have, goes by sendfile(2)). The ETag is the file's SHA-256
from the manifest (strong: the bytes), Last-Modified the last change of the data (the
dataset's dcterms:modified: a rebuild that changes nothing writes the same bytes), or of the
code that wrote them. The .gz files
are their own URLs (application/gzip); a client asking for a plain dump with
Accept-Encoding: gzip gets the same precomputed .gz bytes with Content-Encoding: gzip (and
that file's ETag; a Range then counts those bytes).

Each transfer holds a thread of the worker until its last byte is taken (a slow reader of a
big dump: minutes), so at most `dump_concurrency` dumps are sent at once per worker; one more
is refused (503 with Retry-After) after PLACE_WAIT at most, and the other threads go on
serving pages. A reader that takes no bytes for `send_timeout` seconds is cut off
(server/front.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request, send_file
from werkzeug.wsgi import FileWrapper

from graph import history, parts
from graph.errors import PublicationError
from graph.formats import GZIP_MEDIA_TYPE, GZIP_SUFFIX
from server.current import Release
from server.errors import HttpError
from server.representation import CORS, accepts_gzip, last_modified, not_after_now

bp = Blueprint("dumps", __name__)
TRANSFERS = "kgpub-dump-transfers"  # app.extensions: the worker's places for dump transfers
RETRY_AFTER = "5"  # seconds: a transfer of the seed's dumps takes less; a big one frees later
PLACE_WAIT = 2.0  # seconds a request waits for a place before its 503
PIECE = 1 << 16  # bytes read and sent at a time from a dump made of parts


@bp.record_once
def _make_places(state: Any) -> None:
    places = int(state.app.config["KGPUB"]["dump_concurrency"])
    state.app.extensions[TRANSFERS] = threading.BoundedSemaphore(places)


def _hold_place_while_sent(environ: dict[str, Any], give_back: Callable[[], None]) -> None:
    """Have the file wrapper that send_file makes give the place back when it is closed: when
    the server has sent the file, or the client went away, or it was a HEAD or a 304, or a
    Range was refused. A subclass of the server's own wrapper (PEP 3333 wsgi.file_wrapper), so
    that gunicorn still sends the file by sendfile(2)."""
    base: type = environ.get("wsgi.file_wrapper", FileWrapper)

    class _Held(base):  # type: ignore[misc]
        def __init__(self, file: Any, size: int = 8192) -> None:
            # A stream of parts has no fileno for sendfile(2): it is read and sent by pieces
            # of 64 KiB, not 8 KiB (a reader taking 2 KiB/s still beats send_timeout).
            if isinstance(file, parts.Stream):
                size = max(size, PIECE)
            super().__init__(file, size)
            self.__dict__.pop("close", None)  # gunicorn's sets the file's close on the instance
            self._file = file

        def close(self) -> None:
            try:
                self._file.close()
            finally:
                give_back()

    environ["wsgi.file_wrapper"] = _Held


def _take_place() -> Callable[[], None]:
    """A place for one more transfer, or 503 when every one stays taken; what it returns
    gives the place back (once, however often it is called)."""
    places: threading.BoundedSemaphore = current_app.extensions[TRANSFERS]
    # A place is given back once the server has sent the last byte and closed the file, a
    # moment after the client has it all: a client fetching dumps one after another may ask
    # for the next before then. PLACE_WAIT covers that moment; it is no queue.
    if not places.acquire(timeout=PLACE_WAIT):
        count = current_app.config["KGPUB"]["dump_concurrency"]
        raise HttpError(
            503,
            f"every place for a dump transfer is taken ({count} at once per worker); "
            f"try again in {RETRY_AFTER} s",
            {"Retry-After": RETRY_AFTER},
        )
    lock = threading.Lock()
    held = [True]

    def give_back() -> None:
        with lock:
            if held:
                held.clear()
                places.release()

    return give_back


@bp.get("/dumps/<filename>")
def dump(filename: str) -> Response:
    """One dump file of the current release."""
    release: Release = current_app.extensions["kgpub"].get()
    files: dict[str, dict[str, Any]] = {d["filename"]: d for d in release.manifest["dumps"]}
    info = files.get(filename)
    if info is None:
        raise HttpError(404, f"no dump named {filename!r}; available: {', '.join(sorted(files))}")
    gz = files.get(filename + GZIP_SUFFIX)
    encoded = (
        gz is not None
        and not info["compressed"]
        and accepts_gzip(request.headers.get("Accept-Encoding", ""))
    )
    sent = gz if encoded and gz is not None else info
    mimetype = GZIP_MEDIA_TYPE if info["compressed"] else info["media_type"]
    path = release.path / "dumps" / sent["filename"]
    size = parts.size_of(path)
    if size < 0:
        reason = "a file of it is missing or cut short"
    else:
        reason = f"{size:,} bytes, not the {sent['size']:,} of the manifest"
    if size != sent["size"]:  # lost or cut short: never sent under the manifest's checksum
        raise PublicationError(
            f"{path}: the dump {sent['filename']} of this release is missing or damaged "
            f"({reason}); 'kgpub build' makes it again"
        )
    give_back = _take_place()
    _hold_place_while_sent(request.environ, give_back)
    try:
        response = _send(path, size, mimetype, str(sent["sha256"]), release, info["filename"])
    except BaseException:  # a Range not satisfiable (416), a file gone: nothing is sent
        give_back()
        raise
    if encoded:
        response.headers["Content-Encoding"] = "gzip"
    if gz is not None and not info["compressed"]:
        response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "public, no-cache"
    response.headers["Link"] = f'<{release.iris.void}>; rel="describedby"; type="text/turtle"'
    for key, value in CORS:
        response.headers[key] = value
    return response


def _send(path: Path, size: int, mimetype: str, etag: str, release: Release, name: str) -> Response:
    """send_file's response for the dump at path: a plain file's, or its parts' as one
    stream, given its size and made conditional (RFC 9110 §13, §14) as send_file does."""
    is_parts = parts.is_parts(path)
    response = send_file(
        parts.open_whole(path) if is_parts else path,
        mimetype=mimetype,
        conditional=not is_parts,
        etag=etag,
        last_modified=_last_modified(release),
        max_age=None,
        download_name=name,
    )
    if not is_parts:
        return response
    response.content_length = size
    try:
        response.make_conditional(request.environ, accept_ranges=True, complete_length=size)
    except BaseException:
        response.close()
        raise
    return response


def _last_modified(release: Release) -> datetime:
    """When the data last changed (entries.json's header, read once per release and worker),
    or the code that wrote the dumps, if it changed later and before this build."""

    def compute() -> tuple[int, int]:
        try:
            state = history.read_state(release.path)
        except (PublicationError, OSError):
            state = None
        changed = (state.changed if state is not None else "") or release.built
        return last_modified(changed, built=release.built), 64

    moment = release.cache.memo(("dumps-modified",), compute)
    return datetime.fromtimestamp(not_after_now(moment), UTC)
