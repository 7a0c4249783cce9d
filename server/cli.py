"""`kgpub build | validate | serve | check`: thin wrappers over typed functions, with exit
statuses.

Exit status: 0 published / valid / served / every check passed; 1 the graph breaks a SHACL
shape, or a check failed; 2 a listing cannot be read or parsed (or a bad option); 3 the
publication cannot be written or read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from graph import shacl
from graph.errors import (
    KgpubError,
    ListingError,
    PublicationError,
    StoreError,
    ValidationFailed,
)
from graph.iris import BaseIriError, normalize_base
from graph.publication import BuildOptions, Outcome, build, validate_sources
from graph.store.sparql import LoadReport
from graph.xmlchars import refuse_non_xml
from server import config

EXIT_OK, EXIT_INVALID, EXIT_INPUT, EXIT_PUBLICATION = 0, 1, 2, 3


# What a phase counts when it is not entries (or listing files): graph/publication.py.
UNITS = {"load": " triples"}


class ProgressLine:
    """Phase, items done and rate on one terminal line; silent when not a terminal."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.phase = ""
        self.started = time.perf_counter()
        self.first = 0
        self.last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if phase != self.phase:
            # A phase may start with work done (a remote load, begun in the background): the
            # rate counts what is done while it is shown.
            self.phase, self.started, self.first = phase, now, done
        elif now - self.last < 0.2 and done < total:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        rate = done - self.first
        rate_text = f", {rate / elapsed:,.0f}/s" if rate > 0 and elapsed > 0.05 else ""
        count = f" {done:,}/{total:,}{UNITS.get(phase, '')}" if total else ""
        self.stream.write(f"\r\x1b[K{phase}:{count}{rate_text}")
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def find_sources(given: Sequence[str], data_dir: str) -> list[Path]:
    """The listing files: those given (a folder means its *.txt), or data/*.txt."""
    paths: list[Path] = []
    for name in given or [data_dir]:
        path = Path(name)
        if path.is_dir():
            found = sorted(path.glob("*.txt"))
            if not found:
                raise ListingError(name, 0, "no listing files (*.txt) in this folder")
            paths.extend(found)
        elif path.exists():
            paths.append(path)
        else:
            raise ListingError(name, 0, "no such file")
    return paths


def _add_setting(parser: argparse.ArgumentParser, name: str) -> None:
    setting = config.BY_NAME[name]
    kind: Any = type(setting.default) if setting.default is not None else str
    described = f"{setting.help} (default: {setting.default!r}; env {setting.env})"
    if isinstance(setting.default, bool):  # a flag: --enrich, --no-enrich (none: the env's)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=described,
        )
        return
    parser.add_argument(
        "--" + name.replace("_", "-"), dest=name, type=kind, default=None, help=described
    )


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of the `kgpub` command."""
    parser = argparse.ArgumentParser(
        prog="kgpub", description="Publish a library's listing pages as linked data."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, summary in (
        ("build", "parse, validate and publish the listings (atomically)"),
        ("validate", "parse and validate the listings; write nothing"),
    ):
        p = sub.add_parser(name, help=summary, description=summary)
        p.add_argument(
            "sources",
            nargs="*",
            metavar="SOURCE",
            help="listing files or folders (default: the data folder)",
        )
        for setting in ("base_uri", "data", "title", "license", "publisher", "shacl_engine"):
            _add_setting(p, setting)
        if name == "build":
            for setting in (
                "out",
                "store",
                "store_update",
                "store_data",
                "store_timeout_param",
                "store_streams",
                "enrich",
            ):
                _add_setting(p, setting)
            p.add_argument(
                "--full",
                action="store_true",
                help="make every part again instead of reusing the current release's unchanged "
                "parts (the result is the same)",
            )
        p.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    p = sub.add_parser(
        "serve",
        help="serve the current publication over HTTP",
        description="serve the current publication with gunicorn",
    )
    for setting in (
        "out",
        "store",
        "store_timeout_param",
        "host",
        "port",
        "workers",
        "query_timeout",
        "query_max_length",
        "query_max_results",
        "query_concurrency",
        "query_memory",
        "dump_concurrency",
        "send_timeout",
        "max_body",
        "page_size",
        "cache_mb",
        "warm_up",
        "admin_email",
    ):
        _add_setting(p, setting)
    p = sub.add_parser(
        "check",
        help="check a live deployment as its users meet it",
        description="check a live deployment: content negotiation, conditional requests, "
        "CORS, the W3C SPARQL protocol tests, VoID/DCAT and the dumps, sitemap, feed, "
        "OAI-PMH, security headers, and that nothing is fetched for SERVICE/LOAD/FROM; "
        "one line per check, then 'N passed, N failed' (exit 1 if any failed)",
    )
    p.add_argument("url", metavar="URL", help="the deployment's base URL")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this check (repeatable); a name that is not one lists them",
    )
    p.add_argument(
        "--trap-host",
        default="127.0.0.1",
        help="address of the trap server that SERVICE/LOAD/FROM name: one the deployment "
        "can reach (default: 127.0.0.1, for a deployment on this machine)",
    )
    return parser


_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


def switches(argv: Sequence[str]) -> list[str]:
    """argv with the value form of an on/off setting made a flag: `--warm-up 0` or
    `--enrich=true` (the form earlier command lines used, and `key value` settings take)
    becomes `--no-warm-up` or `--enrich`. A word that is not on or off after the flag stays
    an argument of its own (`kgpub build --enrich data/a.txt`)."""
    flags = {
        "--" + s.name.replace("_", "-") for s in config.SETTINGS if isinstance(s.default, bool)
    }
    out: list[str] = []
    items = list(argv)
    at = 0
    while at < len(items):
        arg = items[at]
        name, equals, value = arg.partition("=")
        if name in flags and not equals and at + 1 < len(items):
            value = items[at + 1].strip().lower()
            if value in _YES + _NO:
                equals, at = "=", at + 1
        if name in flags and equals:
            out.append(name if value.strip().lower() in _YES else "--no-" + name[2:])
        else:
            out.append(arg)
        at += 1
    return out


def run() -> None:
    """The `kgpub` console script: main, then the process ends without freeing, object by
    object, the library a build held in memory (graph/publication.py build's left: 2 s of a
    one-change rebuild at 1M entries); what it printed is flushed first, and everything it
    wrote was synced before the release was published."""
    left: list[object] = []
    status = main(left=left)
    if not left:
        sys.exit(status)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main(argv: Sequence[str] | None = None, left: list[object] | None = None) -> int:
    """The commands, as the `kgpub` console script runs them (run); left: build's."""
    parser = make_parser()
    args = parser.parse_args(switches(sys.argv[1:] if argv is None else argv))
    settings = config.load(overrides={k: v for k, v in vars(args).items() if k in config.BY_NAME})
    try:
        if args.command == "check":
            return _check(args, sys.stdout, sys.stderr)
        if args.command == "serve":
            from server.current import check_publication
            from server.wsgi import serve

            problem = check_publication(Path(settings["out"]), config.store_settings(settings))
            if problem:
                print(f"kgpub: cannot serve {settings['out']}: {problem}", file=sys.stderr)
                print(
                    "kgpub: 'kgpub build' publishes the library again ('kgpub build --full' "
                    "makes every part anew)",
                    file=sys.stderr,
                )
                return EXIT_PUBLICATION
            return serve(settings)
        return _build_or_validate(args, settings, sys.stderr, left)
    except KeyboardInterrupt:
        print("interrupted; the previous publication is untouched", file=sys.stderr)
        return 130


def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Imported here: the checks' table reads the W3C protocol tests' manifest (0.15 s), which
    # every other command (a rebuild, a server's start) need not wait for.
    from server.check import BY_NAME, CASES, report, run_checks

    unknown = [name for name in args.only if name not in BY_NAME]
    if unknown:
        names = ", ".join(c.name for c in CASES)
        print(f"kgpub: no check named {', '.join(unknown)}; the checks are: {names}", file=err)
        return EXIT_INPUT
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        print(f"kgpub: {args.url!r} is not an http:// or https:// URL", file=err)
        return EXIT_INPUT
    try:
        outcomes = run_checks(args.url, args.only, args.trap_host, out)
    except OSError as exc:  # the trap cannot listen on --trap-host
        print(f"kgpub: cannot start the trap server on {args.trap_host}: {exc}", file=err)
        return EXIT_INPUT
    return report(outcomes, out)


def _build_or_validate(
    args: argparse.Namespace,
    settings: dict[str, Any],
    err: TextIO,
    left: list[object] | None = None,
) -> int:
    if settings["shacl_engine"] not in shacl.ENGINES:
        print(f"kgpub: --shacl-engine must be one of {', '.join(shacl.ENGINES)}", file=err)
        return EXIT_INPUT
    if args.command == "build" and settings["store_streams"] < 1:
        print("kgpub: --store-streams must be 1 or more", file=err)
        return EXIT_INPUT
    try:
        base = normalize_base(settings["base_uri"])
    except BaseIriError as exc:
        print(f"kgpub: {exc}", file=err)
        return EXIT_INPUT
    try:
        # Published in VoID and DCAT, RDF/XML among them: as --title (graph/convert.py).
        for name, what in (("publisher", "publisher"), ("license", "licence IRI")):
            refuse_non_xml(what, settings[name])
    except KgpubError as exc:
        print(f"kgpub: {exc} (--{name})", file=err)
        return EXIT_INPUT
    options = BuildOptions(
        base=base,
        title=settings["title"] or None,
        engine=settings["shacl_engine"],
        license=settings["license"],
        publisher=settings["publisher"],
        store=config.store_settings(settings),
        enrich=bool(settings.get("enrich")) and args.command == "build",
    )
    progress = ProgressLine(err, enabled=err.isatty() and not args.quiet)
    try:
        sources = find_sources(args.sources, settings["data"])
        if args.command == "build":
            outcome = build(
                sources, Path(settings["out"]), options, progress, reuse=not args.full, left=left
            )
        else:
            outcome = validate_sources(sources, options, progress)
    except ListingError as exc:
        progress.clear()
        print(str(exc), file=err)
        return EXIT_INPUT
    except ValidationFailed as exc:
        progress.clear()
        print(shacl.render(exc.violations), file=err)
        print("nothing was published; the previous publication is untouched", file=err)
        return EXIT_INVALID
    except StoreError as exc:
        progress.clear()
        print(f"kgpub: {exc}", file=err)
        if args.command == "build":
            print("nothing was published; the previous publication is untouched", file=err)
        return EXIT_PUBLICATION
    except PublicationError as exc:
        progress.clear()
        print(f"kgpub: {exc}", file=err)
        return EXIT_PUBLICATION
    except KgpubError as exc:
        progress.clear()
        print(f"kgpub: {exc}", file=err)
        return EXIT_INPUT
    progress.clear()
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=err)
    if not args.quiet:
        print(summary(args.command, outcome, base), file=sys.stdout)
    return EXIT_OK


def summary(command: str, outcome: Outcome, base: str) -> str:
    """The one-paragraph report of a finished build or validation."""
    seconds = sum(p.seconds for p in outcome.phases)
    peak = max((p.peak_rss_mib for p in outcome.phases), default=0.0)
    warnings = len(outcome.warnings)
    text = (
        f"{outcome.entries:,} entries, {outcome.concepts:,} concepts, {outcome.triples:,} triples; "
        f"valid against the SHACL shapes; {warnings} warning{'s' * (warnings != 1)}; "
        f"{seconds:.1f} s, peak {peak:,.0f} MiB."
    )
    if command == "build" and outcome.release is not None:
        text += (
            f" Published under <{base}> in {outcome.release}"
            f" (now {outcome.release.parent.parent / 'current'})."
        )
        if outcome.store is not None:
            text += " " + store_summary(outcome.store)
        if outcome.enriched:
            text += " " + outcome.enriched
    else:
        text += " Nothing was written."
    return text


def store_summary(report: LoadReport) -> str:
    """One sentence on what a build did in a remote store (its endpoint carries no
    credentials: graph/store/protocol.py show_url)."""
    where = f"the store at {report.endpoint}"
    if report.how == "reused":
        return f"Reused the current graph in {where}."
    if report.how == "copied":
        chunks = f"{report.chunks:,} chunk{'s' * (report.chunks != 1)}"
        return (
            f"Copied the current graph in {where} and changed {chunks} "
            f"({report.triples:,} triples)."
        )
    return f"Loaded {report.triples:,} triples into {where}."


if __name__ == "__main__":
    run()
