"""Blueprint 'dumps': the whole library as files, at /dumps/<file>, straight from the release.

Each dump the manifest lists (library.ttl, .nt, .jsonld, .rdf and a .gz of each) is sent by
Werkzeug's send_file with conditional=True: Content-Length, Range (206, 416), If-None-Match,
If-Modified-Since and HEAD. The ETag is the file's SHA-256 from the manifest (strong: the
bytes), Last-Modified the last change of the data (the dataset's dcterms:modified: a rebuild
that changes nothing writes the same bytes), or of the code that wrote them. The .gz files
are their own URLs (application/gzip); a client asking for a plain dump with
Accept-Encoding: gzip gets the same precomputed .gz bytes with Content-Encoding: gzip (and
that file's ETag; a Range then counts those bytes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, request, send_file

from graph import history
from graph.errors import PublicationError
from graph.formats import GZIP_MEDIA_TYPE, GZIP_SUFFIX
from server.current import Release
from server.errors import HttpError
from server.representation import CORS, accepts_gzip, last_modified, not_after_now

bp = Blueprint("dumps", __name__)


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
    try:
        size = path.stat().st_size
    except OSError as exc:
        size = -1
        reason = exc.strerror or str(exc)
    else:
        reason = f"{size:,} bytes, not the {sent['size']:,} of the manifest"
    if size != sent["size"]:  # lost or cut short: never sent under the manifest's checksum
        raise PublicationError(
            f"{path}: the dump {sent['filename']} of this release is missing or damaged "
            f"({reason}); 'kgpub build' makes it again"
        )
    response = send_file(
        path,
        mimetype=mimetype,
        conditional=True,
        etag=str(sent["sha256"]),
        last_modified=_last_modified(release),
        max_age=None,
        download_name=info["filename"],
    )
    if encoded:
        response.headers["Content-Encoding"] = "gzip"
    if gz is not None and not info["compressed"]:
        response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "public, no-cache"
    response.headers["Link"] = f'<{release.iris.void}>; rel="describedby"; type="text/turtle"'
    for key, value in CORS:
        response.headers[key] = value
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
