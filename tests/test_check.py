"""`kgpub check URL` against real deployments: the served seed library passes, and a
deliberately broken deployment fails exactly the checks it breaks.

The broken one is the real server (a seed publication whose N-Triples dump lost a byte on
disk) behind a small loopback proxy that drops Vary and X-Content-Type-Options, leaves the
JSON-LD alternate out of Link, and fetches every URL a SERVICE clause names, as an unguarded
SPARQL engine would: each must show as its own FAIL line, and the rest stay ok.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_plus

import pytest
from dumpfiles import overwrite
from live import SEED, Server, build_publication, free_port, kgpub

from graph import parts
from server.check import CASES
from server.check.client import CheckError, parse_links

CLOSING = re.compile(r"^(\d+) passed, (\d+) failed$")


def _lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The report's lines by check name: 'ok' or the FAIL line's reason."""
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("ok "):
            found[line[3:]] = "ok"
        elif line.startswith("FAIL "):
            name, _, why = line[5:].partition(": ")
            found[name] = why
    return found


def _closing(result: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    match = CLOSING.match(result.stdout.splitlines()[-1])
    assert match, result.stdout[-500:]
    return int(match[1]), int(match[2])


@pytest.fixture(scope="module")
def seed_check(live: Server) -> subprocess.CompletedProcess[str]:
    """`kgpub check` run once on the live seed server (per store backend)."""
    return kgpub("check", live.base)


def test_check_reports_every_case_once(seed_check: subprocess.CompletedProcess[str]) -> None:
    lines = _lines(seed_check)
    assert list(lines) == [c.name for c in CASES], seed_check.stdout
    passed, failed = _closing(seed_check)
    assert passed + failed == len(CASES)
    assert failed == sum(why != "ok" for why in lines.values())
    assert seed_check.returncode == (1 if failed else 0)
    assert seed_check.stderr == ""


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_check_passes_on_the_served_seed(
    seed_check: subprocess.CompletedProcess[str], name: str
) -> None:
    assert _lines(seed_check)[name] == "ok"


# --- a deliberately broken deployment ------------------------------------------------------------

TRAP_URL = re.compile(r"http://127\.0\.0\.1:\d+/[^\s>\"']*")


class _BreakingProxy(BaseHTTPRequestHandler):
    """Forwards to the real server and breaks what a careless deployment breaks."""

    backend: tuple[str, int]
    protocol_version = "HTTP/1.0"

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        said = unquote_plus(self.path + (body or b"").decode("latin-1"))
        if "SERVICE" in said:  # an engine that fetches what SERVICE names
            for url in TRAP_URL.findall(said):
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(url, timeout=2).close()
        conn = http.client.HTTPConnection(*self.backend, timeout=60)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in ("connection", "content-length"):
                conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            lower = name.lower()
            if lower in ("vary", "x-content-type-options", "transfer-encoding", "connection"):
                continue
            if lower == "content-length":
                continue
            if lower == "link":
                kept = [p for p in value.split(", <") if "application/ld+json" not in p]
                value = ", <".join(kept)
                value = value if value.startswith("<") else "<" + value
            self.send_header(name, value)
        if self.command != "HEAD" and response.status not in (204, 304):
            self.send_header("Content-Length", str(len(data)))
        elif self.command == "HEAD" and response.getheader("Content-Length"):
            self.send_header("Content-Length", response.getheader("Content-Length") or "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_HEAD = do_OPTIONS = do_PUT = _forward  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the broken deployment: the proxy, whose address is the publication's base."""
    proxy_port = free_port()
    base = f"http://127.0.0.1:{proxy_port}/"
    out = tmp_path_factory.mktemp("broken") / "publication"
    build_publication([SEED], out, base)
    dump = out / "current" / "dumps" / "library.nt"
    data = parts.read_bytes(dump)
    middle = len(data) // 2  # a byte flipped on disk: same size, another checksum
    overwrite(dump, middle, bytes([data[middle] ^ 0x20]))
    with Server(out, free_port(), workers=1) as server:
        handler = type("Handler", (_BreakingProxy,), {"backend": ("127.0.0.1", server.port)})
        proxy = ThreadingHTTPServer(("127.0.0.1", proxy_port), handler)
        proxy.daemon_threads = True
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        try:
            yield base
        finally:
            proxy.shutdown()
            proxy.server_close()
            thread.join()


def test_check_catches_a_broken_deployment(broken: str) -> None:
    result = kgpub("check", broken)
    lines = _lines(result)
    assert result.returncode == 1, result.stdout
    assert lines["conneg-vary"].startswith(f"{broken}library (no Accept): Vary '' lacks Accept")
    assert "dumps/library.nt: SHA-256 " in lines["dcat-dumps"]
    assert "spdx:checksumValue says" in lines["dcat-dumps"]
    assert "no X-Content-Type-Options: nosniff" in lines["security-headers"]
    assert lines["conneg-link"] == (
        f"{broken}library: no Link rel=alternate with type 'application/ld+json'"
    )
    assert lines["no-remote-fetch"].startswith(
        "the deployment connected to the trap http://127.0.0.1:"
    )
    broken_ones = {
        "conneg-vary",
        "dcat-dumps",
        "security-headers",
        "conneg-link",
        "no-remote-fetch",
    }
    assert {name for name, why in lines.items() if why != "ok"} == broken_ones, result.stdout
    assert _closing(result) == (len(CASES) - len(broken_ones), len(broken_ones))


def test_check_only_runs_the_named_checks(broken: str) -> None:
    result = kgpub("check", broken, "--only", "conneg-vary", "--only", "oai-pmh")
    assert result.stdout.splitlines()[:2] == [
        f"FAIL conneg-vary: {broken}library (no Accept): Vary '' lacks Accept",
        "ok oai-pmh",
    ]
    assert result.stdout.splitlines()[-1] == "1 passed, 1 failed"
    assert result.returncode == 1


# --- bad input -----------------------------------------------------------------------------------


def test_check_of_nothing_listening_fails_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = kgpub("check", url)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"FAIL reachable: GET {url}: no answer (")
    assert lines[-1] == "0 passed, 1 failed"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://example.org/"], "kgpub: 'ftp://example.org/' is not an http:// or https:// URL"),
        (["http://127.0.0.1:1/", "--only", "nothing"], "kgpub: no check named nothing;"),
    ],
    ids=["scheme", "unknown-check"],
)
def test_check_refuses_bad_arguments(args: list[str], message: str) -> None:
    result = kgpub("check", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stdout == ""


# --- RFC 8288 Link headers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "links"),
    [
        ('<a>; rel="alternate"; type="text/turtle"',
         [("http://h/x/a", {"rel": "alternate", "type": "text/turtle"})]),
        ('<http://o/>; rel="next", </p>;rel=prev',
         [("http://o/", {"rel": "next"}), ("http://h/p", {"rel": "prev"})]),
        ('<a>; title="a, b; c"; rel="x y", <b>; rel=z',
         [("http://h/x/a", {"title": "a, b; c", "rel": "x y"}), ("http://h/x/b", {"rel": "z"})]),
        ('<a>; REL="first"; rel="second"', [("http://h/x/a", {"rel": "first"})]),
        ('<a>; title="say \\"hi\\""', [("http://h/x/a", {"title": 'say "hi"'})]),
    ],
    ids=["alternate", "two", "quoted-comma", "first-rel-wins", "escape"],
)  # fmt: skip
def test_parse_links(value: str, links: list[tuple[str, dict[str, str]]]) -> None:
    got = parse_links(value, "http://h/x/y")
    assert [(link.target, dict(link.params)) for link in got] == links


@pytest.mark.parametrize("value", ['a; rel="x"', '<a>; rel="x', "<a> rel=x", "<a"])
def test_parse_links_refuses_broken_values(value: str) -> None:
    with pytest.raises(CheckError, match="Link header"):
        parse_links(value, "http://h/")
