"""The guarded SPARQL path over the embedded store: read-only, no remote fetch, budgets.

pyoxigraph fetches URLs for ``SERVICE`` (and for ``LOAD`` in an update), and a running query
cannot be cancelled (FINDINGS.md). So a query takes this path:

  inspect_query(text)   before anything runs: the query form, and a refusal of ``SERVICE``
                        anywhere (QueryRefused) and of any update (the endpoint is read-only);
                        updates never reach pyoxigraph's ``update``.
  QueryPool.run(job)    the query is evaluated in a pre-started child process that holds the
                        release's store open read-only and is not allowed to open network
                        sockets (seccomp on Linux); when the time budget is spent the child is
                        killed (QueryTimeout) and a fresh one takes its place; when every child
                        is busy the query is refused at once (QueryOverloaded); when the client
                        closes its connection meanwhile (the socket given as `watch`), the
                        child is killed too (QueryCancelled): an abandoned query frees its
                        place at once instead of at the end of its budget.
  evaluate(store, job)  in the child: run the query and serialize the result in the negotiated
                        format, stopping with QueryRefused beyond the result-size cap.

FROM / FROM NAMED and the protocol's default-graph-uri / named-graph-uri only select graphs of
the store by name: nothing is ever fetched, and a name the store does not hold is an empty graph.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import ctypes
import errno
import fcntl
import io
import json
import logging
import os
import platform
import queue
import re
import resource
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, ClassVar, Literal, cast

import pyoxigraph
from pyoxigraph import NamedNode, QueryBoolean, QueryResultsFormat, QuerySolutions, Triple

from graph.errors import (
    PublicationError,
    QueryCancelled,
    QueryError,
    QueryOverloaded,
    QueryRefused,
    QuerySyntaxError,
    QueryTimeout,
    QueryTooLarge,
)
from graph.formats import (
    JSONLD,
    RDF_FORMATS,
    SPARQL_RESULTS_CSV,
    SPARQL_RESULTS_JSON,
    SPARQL_RESULTS_TSV,
    SPARQL_RESULTS_XML,
    RdfFormat,
)
from graph.parentage import die_with_parent
from graph.store.embedded import Store, read_only

log = logging.getLogger(__name__)

Form = Literal["SELECT", "ASK", "CONSTRUCT", "DESCRIBE"]
FORMS: tuple[Form, ...] = ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
# SPARQL 1.1 Update operations (§3.1, §3.2): the first keyword of an update request.
UPDATE_KEYWORDS = frozenset(
    {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH"}
)

# SPARQL 1.1 Query Results formats, in the server's order of preference (JSON by default).
RESULT_FORMATS: dict[str, QueryResultsFormat] = {
    SPARQL_RESULTS_JSON: QueryResultsFormat.JSON,
    SPARQL_RESULTS_XML: QueryResultsFormat.XML,
    SPARQL_RESULTS_CSV: QueryResultsFormat.CSV,
    SPARQL_RESULTS_TSV: QueryResultsFormat.TSV,
}
# RDF formats for CONSTRUCT and DESCRIBE, Turtle first (graph/formats.py order).
GRAPH_FORMATS: dict[str, RdfFormat] = {f.media_type: f for f in RDF_FORMATS}


def offered_types(form: Form) -> tuple[str, ...]:
    """The media types a result of this query form can be serialized as, preferred first."""
    return tuple(RESULT_FORMATS) if form in ("SELECT", "ASK") else tuple(GRAPH_FORMATS)


# --- Inspection -------------------------------------------------------------------------------
# The query text is split into what the SPARQL grammar (§19.8) makes opaque (comments, string
# literals, IRI references, backslash escapes of prefixed names) and the rest, the "code", where
# keywords live. A keyword cannot hide inside a string, an IRI or a comment, and oxigraph
# applies no \u escapes outside them (a "\u0053ERVICE" is a syntax error), so a SERVICE
# clause that oxigraph would run always shows in the code as the letters "service".
OPAQUE = re.compile(
    r"#[^\r\n]*"  # comment
    r'|"""(?:(?:"|"")?(?:[^"\\]|\\[\s\S]))*"""'  # STRING_LITERAL_LONG2
    r"|'''(?:(?:'|'')?(?:[^'\\]|\\[\s\S]))*'''"  # STRING_LITERAL_LONG1
    r'|"(?:[^"\\\r\n]|\\[\s\S])*"'  # STRING_LITERAL2
    r"|'(?:[^'\\\r\n]|\\[\s\S])*'"  # STRING_LITERAL1
    r"|<(?:[^<>\"{}|^`\\\x00-\x20]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*>"  # IRIREF
    r"|\\[\s\S]"  # PN_LOCAL_ESC ("ex:a\#b" is a name, not a comment)
)
_SERVICE = re.compile("service", re.IGNORECASE)
# Groups, expressions, paths and collections nest by brackets. Oxigraph's parser and evaluator
# recurse on them, and a query process's stack overflows (SIGSEGV) at about 1,000 levels of
# FILTER EXISTS, 3,000 of braces; real queries nest a few levels. Deeper ones are refused.
MAX_NESTING = 128
_BRACKET = re.compile(r"[{}()\[\]]")
# PN_CHARS (§19.8, [164]-[168]) but '-', which is a name character but not a variable-name
# character; none of these characters is white space.
_VARNAME_CLASS = (
    "A-Za-z0-9_\u00b7\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u037d\u037f-\u167f\u1681-\u1fff"
    "\u200c\u200d\u203f\u2040\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf"
    "\ufdf0-\ufffd\U00010000-\U000effff"
)
_VARNAME_RUN = re.compile(f"[{_VARNAME_CLASS}]+")  # a run of variable-name characters
_NAME_RUN = re.compile(f"[{_VARNAME_CLASS}\\-.:%]+")  # of prefixed-name characters


def _mask(text: str) -> str:
    """The code of a query: every opaque span (comment, string, IRI, escape) becomes a space."""
    return OPAQUE.sub(" ", text)


class _Runs:
    """The maximal runs of one character class in a text, found once: which run holds a
    position is a binary search, so each occurrence of a keyword costs O(log n), never a walk
    back over the run (which made the check quadratic: a 14 KB query took 12 s of CPU)."""

    def __init__(self, pattern: re.Pattern[str], code: str) -> None:
        self.spans = [m.span() for m in pattern.finditer(code)]
        self.starts = [start for start, _ in self.spans]

    def around(self, position: int) -> tuple[int, int]:
        """The run holding position (which must be a character of the class)."""
        return self.spans[bisect.bisect_right(self.starts, position) - 1]


def _service_keyword_at(code: str) -> int:
    """Where the letters "service" may be the SERVICE keyword (§18.2.4.1); -1 if nowhere.

    They are not when they lie inside a variable name ("?service", after a space or bracket)
    or inside a prefixed name or blank node label ("dcat:DataService", "_:service"); every
    other occurrence counts, so anything doubtful is refused rather than run. Linear in the
    length of the code (one pass per character class, a binary search per occurrence).
    """
    found = [m.start() for m in _SERVICE.finditer(code)]
    if not found:
        return -1
    variables, names = _Runs(_VARNAME_RUN, code), _Runs(_NAME_RUN, code)
    colons: dict[int, int] = {}  # name run start -> its first ':' (-1: none)
    for start in found:
        begin, _ = variables.around(start)
        if begin > 0 and code[begin - 1] in "?$" and (begin < 2 or code[begin - 2] in " \t\r\n({,"):
            continue  # a variable: VARNAME is greedy, so the whole run is its name
        begin, end = names.around(start)
        if begin not in colons:
            colons[begin] = code.find(":", begin, end)
        if colons[begin] < 0 or colons[begin] >= start:
            return start
    return -1


def inspect_query(text: str, max_length: int | None = None) -> Form:
    """The form of a query (SELECT, ASK, CONSTRUCT, DESCRIBE); refuse what must not run.

    Raises QueryTooLarge over max_length bytes, QueryRefused for SERVICE or an update, and
    QuerySyntaxError for an empty text or one that is not a query.
    """
    if max_length is not None and len(text.encode("utf-8", "surrogatepass")) > max_length:
        raise QueryTooLarge(f"the query is longer than {max_length:,} bytes")
    code = _mask(text)
    depth = deepest = 0
    for bracket in _BRACKET.finditer(code):
        depth += 1 if bracket.group() in "{([" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING:
        raise QueryRefused(
            f"the query nests groups or expressions more than {MAX_NESTING} levels deep, "
            "this endpoint's limit"
        )
    if _service_keyword_at(code) >= 0:
        raise QueryRefused(
            "SERVICE is not allowed: this endpoint answers from its own data only "
            "(federated query would make the server fetch other sites)"
        )
    words = code.split()
    i = 0
    while i < len(words) and words[i].upper() in ("PREFIX", "BASE"):
        i += 2 if words[i].upper() == "PREFIX" else 1
    if i >= len(words):
        raise QuerySyntaxError("empty query: expected SELECT, CONSTRUCT, DESCRIBE or ASK")
    keyword = re.match(r"[A-Za-z]*", words[i])
    first = keyword.group(0).upper() if keyword else ""
    if first in UPDATE_KEYWORDS:
        raise QueryRefused(
            "this endpoint is read-only: SPARQL Update requests are not accepted "
            f"({first} is an update operation)"
        )
    if first not in FORMS:
        raise QuerySyntaxError(
            f"expected SELECT, CONSTRUCT, DESCRIBE or ASK, found {words[i][:40]!r}"
        )
    return first


# --- Evaluation (in the child) ----------------------------------------------------------------
@dataclass(frozen=True)
class QueryJob:
    """One query to evaluate: text, form, result media type, dataset, budgets."""

    text: str
    form: Form
    media_type: str
    store: str  # path of the release's store
    base_iri: str | None = None
    default_graphs: tuple[str, ...] | None = None  # protocol dataset (overrides FROM)
    named_graphs: tuple[str, ...] | None = None
    max_results: int = 100_000
    prefixes: tuple[tuple[str, str], ...] = ()  # for Turtle output

    def to_bytes(self) -> bytes:
        # A flat copy of the fields: dataclasses.asdict deep-copies, and costs 0.3 ms here.
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)}).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> QueryJob:
        raw: dict[str, Any] = json.loads(data)
        for key in ("default_graphs", "named_graphs"):
            if raw[key] is not None:
                raw[key] = tuple(raw[key])
        raw["prefixes"] = tuple(tuple(p) for p in raw["prefixes"])
        return cls(**raw)


@dataclass(frozen=True)
class QueryResult:
    """A serialized result: its media type, bytes, and rows or triples counted."""

    media_type: str
    body: bytes
    count: int


class _TooManyResultsError(Exception):
    """Raised inside a serializer to stop it at the result-size cap."""


class _CountingWriter(io.RawIOBase):
    """Collects serialized results and counts rows as they stream, stopping past the cap.

    Each format marks rows unambiguously: ``<result>`` in XML (a '<' in a value is escaped),
    a line in TSV (newlines in values are escaped), a CRLF in CSV, and in JSON the ``},{``
    between two solutions. A literal can only add marks, never hide them, so the count errs
    on the safe side.
    """

    MARKS: ClassVar[dict[QueryResultsFormat, tuple[bytes, int]]] = {
        QueryResultsFormat.JSON: (b"},{", 1),  # n rows, n - 1 separators
        QueryResultsFormat.XML: (b"<result>", 0),
        QueryResultsFormat.CSV: (b"\r\n", -1),  # a header line
        QueryResultsFormat.TSV: (b"\n", -1),
    }

    def __init__(self, fmt: QueryResultsFormat, cap: int) -> None:
        super().__init__()
        self.mark, self.count = self.MARKS[fmt]
        self.cap = cap
        self.parts: list[bytes] = []
        self.tail = b""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        window = self.tail + chunk
        self.count += window.count(self.mark)
        self.tail = window[-(len(self.mark) - 1) :] if len(self.mark) > 1 else b""
        if self.count > self.cap:
            raise _TooManyResultsError
        return len(chunk)

    def value(self) -> bytes:
        return b"".join(self.parts)


def _too_many(cap: int, what: str) -> QueryRefused:
    return QueryRefused(
        f"the result has more than {cap:,} {what}, this endpoint's limit: "
        "add a LIMIT or narrow the query"
    )


def evaluate(store: Store, job: QueryJob) -> QueryResult:
    """Run one query on a store and serialize its result in job.media_type."""
    kwargs: dict[str, Any] = {}
    if job.default_graphs is not None or job.named_graphs is not None:
        # SPARQL 1.1 Protocol §2.1.4: a dataset given in the request replaces the query's
        # FROM / FROM NAMED entirely; a side that is not given is empty.
        kwargs["default_graph"] = [NamedNode(g) for g in job.default_graphs or ()]
        kwargs["named_graphs"] = [NamedNode(g) for g in job.named_graphs or ()]
    try:
        result = store.query(job.text, base_iri=job.base_iri, **kwargs)
        if job.form in ("SELECT", "ASK"):
            return serialize_results(result, job)
        return serialize_graph(result, job)
    except SyntaxError as exc:
        raise QuerySyntaxError(f"the query does not parse: {exc}") from exc
    except QueryError:
        raise
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise QueryError(f"the query failed: {exc}") from exc


def serialize_results(result: Any, job: QueryJob) -> QueryResult:
    """Solutions or a boolean in job.media_type, counting rows up to job.max_results."""
    fmt = RESULT_FORMATS[job.media_type]
    if isinstance(result, QueryBoolean):
        if job.form != "ASK":
            raise QueryError(f"a {job.form} query gave a boolean")
        return QueryResult(job.media_type, result.serialize(format=fmt) or b"", 1)
    if not isinstance(result, QuerySolutions) or job.form != "SELECT":
        raise QueryError(f"a {job.form} query gave solutions")
    writer = _CountingWriter(fmt, job.max_results)
    try:
        result.serialize(cast(IO[bytes], writer), format=fmt)
    except _TooManyResultsError:
        raise _too_many(job.max_results, "rows") from None
    return QueryResult(job.media_type, writer.value(), max(writer.count, 0))


def serialize_graph(result: Any, job: QueryJob) -> QueryResult:
    """Triples in job.media_type, counting them up to job.max_results."""
    if isinstance(result, (QueryBoolean, QuerySolutions)):
        raise QueryError(f"a {job.form} query gave no graph")
    counted = 0

    def capped() -> Iterator[Triple]:
        nonlocal counted
        for triple in result:
            counted += 1
            if counted > job.max_results:
                raise _TooManyResultsError
            yield triple

    rdf = GRAPH_FORMATS[job.media_type]
    try:
        if rdf is JSONLD:
            from graph import jsonld  # imported on first use: it brings in rdflib

            body = jsonld.document(list(capped()), jsonld.context()).encode("utf-8")
        else:
            prefixes = dict(job.prefixes) if rdf.key == "turtle" else None
            body = pyoxigraph.serialize(capped(), format=rdf.oxigraph, prefixes=prefixes) or b""
    except _TooManyResultsError:
        raise _too_many(job.max_results, "triples") from None
    return QueryResult(job.media_type, body, counted)


# --- The child process ------------------------------------------------------------------------
_FRAME = struct.Struct("!I")
_ERRORS: dict[str, type[QueryError]] = {
    cls.__name__: cls for cls in (QueryError, QuerySyntaxError, QueryRefused, QueryTooLarge)
}
# (audit arch, socket, io_uring_setup) syscall numbers, for the seccomp filter.
_SYSCALLS = {"x86_64": (0xC000003E, 41, 425, 317), "aarch64": (0xC00000B7, 198, 425, 277)}


def deny_network() -> bool:
    """Forbid this process (all its threads) to open any socket but a Unix one; True if done.

    A seccomp-bpf filter (Linux x86_64 and aarch64): socket() with a family other than
    AF_UNIX, io_uring_setup(), x32 and foreign-ABI system calls fail with EACCES. This is a
    second wall behind inspect_query: even a SERVICE clause it missed could not connect.
    """
    numbers = _SYSCALLS.get(platform.machine())
    if sys.platform != "linux" or numbers is None:
        return False
    arch, socket_nr, io_uring_nr, seccomp_nr = numbers

    class SockFilter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_ushort),
            ("jt", ctypes.c_ubyte),
            ("jf", ctypes.c_ubyte),
            ("k", ctypes.c_uint),
        ]

    class SockFprog(ctypes.Structure):
        _fields_ = [
            ("len", ctypes.c_ushort),
            ("filter", ctypes.POINTER(SockFilter)),
        ]

    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, JGE|K, BPF_RET|K
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EACCES
    program = [
        (ld, 0, 0, 4),  # 0  A = seccomp_data.arch
        (jeq, 1, 0, arch),  # 1  our ABI: 3, else 2
        (ret, 0, 0, deny),  # 2
        (ld, 0, 0, 0),  # 3  A = seccomp_data.nr
        (jge, 0, 1, 0x40000000),  # 4  x32 ABI: 5, else 6
        (ret, 0, 0, deny),  # 5
        (jeq, 0, 1, io_uring_nr),  # 6  io_uring_setup: 7, else 8
        (ret, 0, 0, deny),  # 7
        (jeq, 0, 3, socket_nr),  # 8  socket: 9, else 12
        (ld, 0, 0, 16),  # 9  A = args[0] (low 32 bits): the address family
        (jeq, 1, 0, 1),  # 10 AF_UNIX: 12, else 11
        (ret, 0, 0, deny),  # 11
        (ret, 0, 0, allow),  # 12
    ]
    filters = (SockFilter * len(program))(*[SockFilter(*f) for f in program])
    prog = SockFprog(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, prog): every thread.
    return int(libc.syscall(seccomp_nr, 1, 1, ctypes.byref(prog))) == 0


def _one_malloc_arena() -> None:
    """Make every thread of this process allocate from glibc's main arena (M_ARENA_MAX = 1).

    By default glibc gives each new thread its own arena, up to 8 per core, and each reserves
    64 MiB of address space. Opening a store starts a burst of short-lived RocksDB threads,
    so under RLIMIT_AS those reservations, not the query, would spend the budget: 0.45 GiB on
    a quiet 2-core machine, 0.9 GiB on a busy one where more of the threads overlap, and past
    the cap a thread cannot start and RocksDB aborts (std::system_error, EAGAIN). The query
    runs on one thread, so one arena costs it nothing. Must run before the first thread.
    """
    if sys.platform == "linux":
        with contextlib.suppress(AttributeError, OSError):  # not glibc: nothing to do
            ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX


def _write_frames(fd: int, *payloads: bytes) -> None:
    """Length-prefixed frames in one writev(2): the reader wakes once, nothing is copied."""
    buffers: list[memoryview] = []
    for payload in payloads:
        buffers += [memoryview(_FRAME.pack(len(payload))), memoryview(payload)]
    while buffers:
        written = os.writev(fd, buffers)
        while buffers and written >= len(buffers[0]):
            written -= len(buffers.pop(0))
        if buffers and written:
            buffers[0] = buffers[0][written:]


def _read_exact_blocking(fd: int, size: int) -> bytes | None:
    parts: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 22))
        if not chunk:
            return None
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def serve_child(memory_mib: int = 0, store_path: str = "", parent: int = 0) -> None:
    """Main loop of a query child: read jobs on stdin, write results on stdout, forever.

    memory_mib caps the child's address space (RLIMIT_AS): a query that needs more makes
    the child fail, which the pool reports as 503, instead of starving the machine.
    store_path, when given, is opened before the child says it is ready. parent: the process
    id of the server worker that started it: the child dies with it (graph/parentage.py).
    """
    jobs_in, results_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # stray prints go to the log, never into the result stream
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    if parent:
        die_with_parent(parent)
    _one_malloc_arena()
    if memory_mib > 0:
        limit = memory_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sandboxed = deny_network()
    stores: dict[str, Store] = {}
    if store_path:
        with contextlib.suppress(OSError):  # reported with the first query that needs it
            stores[store_path] = read_only(store_path)
    _write_frames(results_out, json.dumps({"ready": True, "sandboxed": sandboxed}).encode())
    while True:
        head = _read_exact_blocking(jobs_in, _FRAME.size)
        if head is None:
            return  # the worker closed the pipe: it is gone or shutting down
        data = _read_exact_blocking(jobs_in, _FRAME.unpack(head)[0])
        if data is None:
            return
        job = QueryJob.from_bytes(data)
        try:
            inspect_query(job.text)  # the worker inspected it; check again where it runs
            store = stores.get(job.store)
            if store is None:
                stores.clear()  # a new release: drop the old store
                store = stores[job.store] = read_only(job.store)
            result = evaluate(store, job)
        except QueryError as exc:
            _write_frames(
                results_out,
                json.dumps(
                    {"ok": False, "error": type(exc).__name__, "message": str(exc)}
                ).encode(),
            )
            continue
        except (OSError, RuntimeError) as exc:  # a store lost or damaged (RocksDB: Corruption)
            _write_frames(
                results_out,
                json.dumps(
                    {"ok": False, "error": "PublicationError", "message": f"store: {exc}"}
                ).encode(),
            )
            continue
        header = json.dumps({"ok": True, "count": result.count}).encode()
        _write_frames(results_out, header, result.body)


# --- The pool (in each server worker) ---------------------------------------------------------
STARTUP_TIMEOUT = 60.0
_CHILD_CODE = (
    "import sys; from graph.query import serve_child; "
    "serve_child(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))"
)


class _ExpiredError(Exception):
    """The time budget ran out while waiting for the child."""


class _GoneError(Exception):
    """The child process exited (crashed or was killed)."""


class _CancelledError(Exception):
    """The client closed its connection."""


# The peer closed its side (Linux POLLRDHUP), or the socket hung up or failed. POLLIN is not
# watched: a client may pipeline its next request, which is no reason to stop this one.
_GONE = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR


class _Child:
    """One query child process and the two pipes to it."""

    def __init__(self, memory_mib: int, store_path: str) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE, str(memory_mib), store_path, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        os.set_blocking(self.rfd, False)  # read what is there; poll only when nothing is
        with contextlib.suppress(OSError, AttributeError):  # Linux: fewer wake-ups for big results
            fcntl.fcntl(self.rfd, fcntl.F_SETPIPE_SZ, 1 << 20)
        self.poller = select.poll()
        self.poller.register(self.rfd, select.POLLIN)
        self.ready = False
        self.sandboxed = False

    def _read(self, size: int, deadline: float, watch: int | None = None) -> bytes:
        parts: list[bytes] = []
        while size:
            try:
                chunk = os.read(self.rfd, min(size, 1 << 22))
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                events = self.poller.poll(remaining * 1000) if remaining > 0 else []
                if not events:
                    raise _ExpiredError from None
                if watch is not None and any(fd == watch for fd, _ in events):
                    raise _CancelledError from None
                continue
            if not chunk:
                raise _GoneError
            parts.append(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def _frame(self, deadline: float, watch: int | None = None) -> bytes:
        (size,) = _FRAME.unpack(self._read(_FRAME.size, deadline, watch))
        return self._read(size, deadline, watch)

    def wait_ready(self) -> None:
        """Wait for the child's greeting; QueryOverloaded if it does not come."""
        if self.ready:
            return
        try:
            hello = json.loads(self._frame(time.monotonic() + STARTUP_TIMEOUT))
        except (_ExpiredError, _GoneError, ValueError) as exc:
            log.error("a query child did not start (exit status %s)", self.proc.poll())
            raise QueryOverloaded("the query process could not start; see the server log") from exc
        self.ready, self.sandboxed = True, bool(hello.get("sandboxed"))

    def call(
        self, job: QueryJob, timeout: float, watch: int | None = None
    ) -> tuple[dict[str, Any], bytes]:
        """Run a job; _CancelledError when the socket watch is closed by its peer first."""
        try:
            _write_frames(self.wfd, job.to_bytes())
        except OSError as exc:
            raise _GoneError from exc
        deadline = time.monotonic() + timeout
        if watch is not None:
            self.poller.register(watch, _GONE)
        try:
            header: dict[str, Any] = json.loads(self._frame(deadline, watch))
            body = self._frame(deadline, watch) if header.get("ok") else b""
        finally:
            if watch is not None:
                self.poller.unregister(watch)
        return header, body

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@dataclass
class QueryPool:
    """Query children for one server worker: a time budget and a concurrency cap.

    `started` children start with the pool (None: all `size`); the others start when a query
    finds none idle, up to `size`, and that query waits for its child to open the store. A
    server starts none with its workers (server/views/sparql.py): four children starting at
    once, about 0.1 s of CPU each, took the two cores of a small machine from a new worker's
    first pages (a search at 1M entries: 160-400 ms instead of its 70 ms of CPU)."""

    size: int
    timeout: float
    memory_mib: int = 0
    store_path: str = ""  # opened by each child as it starts: its first query finds it warm
    started: int | None = None
    _idle: queue.LifoQueue[_Child] = field(default_factory=queue.LifoQueue, repr=False)
    _all: list[_Child] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: bool = False

    def __post_init__(self) -> None:
        ahead = self.places if self.started is None else min(self.started, self.places)
        for _ in range(ahead):
            self._idle.put(self._spawn())
        atexit.register(self.close)

    @property
    def places(self) -> int:
        """How many queries may run at once: the most children the pool has."""
        return max(1, self.size)

    def _take(self, store: str) -> _Child:
        """An idle child, or a new one (opening store) while the pool has fewer than its
        places; else QueryOverloaded."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._spawn(store, grow=True)

    def _spawn(self, store: str = "", grow: bool = False) -> _Child:
        """A new child that opens store as it starts; with grow, only while the pool has
        fewer than its places (else QueryOverloaded)."""
        with self._lock:
            if grow and (self._closed or len(self._all) >= self.places):
                raise QueryOverloaded(
                    f"{self.size} queries are running in this worker already; try again shortly"
                )
            child = _Child(self.memory_mib, store or self.store_path)
            self._all.append(child)
        return child

    def _retire(self, child: _Child) -> None:
        child.kill()
        with self._lock:
            if child in self._all:
                self._all.remove(child)

    @property
    def sandboxed(self) -> bool:
        """Whether the children run without network access (after their first query)."""
        with self._lock:
            return all(c.sandboxed for c in self._all if c.ready)

    def run(self, job: QueryJob, watch: int | None = None) -> QueryResult:
        """Evaluate a job in an idle child within the time budget; stop it when the socket
        watch (the client's connection) is closed by its peer meanwhile."""
        child = self._take(job.store)
        try:
            if not child.alive():
                self._retire(child)
                child = self._spawn(job.store)
            try:
                child.wait_ready()
            except QueryOverloaded:
                self._retire(child)
                child = self._spawn(job.store)
                raise
            header, body = child.call(job, self.timeout, watch)
        except _CancelledError:
            self._retire(child)
            child = self._spawn(job.store)
            log.info("query stopped: its client went away: %.200r", job.text)
            raise QueryCancelled(
                "the client closed its connection; the query was stopped"
            ) from None
        except _ExpiredError:
            self._retire(child)
            child = self._spawn(job.store)
            log.warning("query stopped after %.1f s: %.200r", self.timeout, job.text)
            raise QueryTimeout(
                f"the query ran longer than this endpoint's {self.timeout:g} s budget "
                "and was stopped"
            ) from None
        except (_GoneError, ValueError) as exc:
            # However the child died (an allocation refused under the cap, a thread that could
            # not start, a crash), the client gets a 503 and the pool a fresh child.
            self._retire(child)
            log.warning(
                "a query child died (exit status %s): %.200r", child.proc.returncode, job.text
            )
            child = self._spawn(job.store)
            budget = f": the budget is {self.memory_mib:,} MiB" if self.memory_mib > 0 else ""
            raise QueryOverloaded(
                f"the query stopped its worker process (it may have needed too much memory{budget})"
            ) from exc
        finally:
            if not self._closed:
                self._idle.put(child)
        if not header.get("ok"):
            message = str(header.get("message"))
            if header.get("error") == "PublicationError":  # the store cannot be read: 503
                raise PublicationError(f"{job.store}: cannot read the store ({message})")
            raise _ERRORS.get(str(header.get("error")), QueryError)(message)
        return QueryResult(job.media_type, body, int(header.get("count", 0)))

    def close(self) -> None:
        """Stop every child (at worker exit)."""
        self._closed = True
        with self._lock:
            children, self._all = self._all, []
        for child in children:
            child.kill()


def run_in_process(store: Store, job: QueryJob) -> QueryResult:
    """Inspect and evaluate a job in this process: for tests and benchmarks, no time budget."""
    inspect_query(job.text)
    return evaluate(store, job)


def parse_graph_names(values: Mapping[str, list[str]], key: str) -> tuple[str, ...] | None:
    """Graph IRIs of one protocol parameter, or None when the parameter is absent."""
    names = values.get(key)
    if not names:
        return None
    for name in names:
        try:
            NamedNode(name)
        except ValueError:
            raise QuerySyntaxError(f"{key}: {name!r} is not an absolute IRI") from None
        if ":" not in name:
            raise QuerySyntaxError(f"{key}: {name!r} is not an absolute IRI")
    return tuple(names)
