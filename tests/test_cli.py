"""The `kgpub` command as a user runs it: exit statuses, messages, nothing half-written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dumpfiles import dump_names, read_dump
from live import FIXTURES, ROOT, SEED, kgpub
from test_listing import BAD

from server.cli import make_parser, switches

LISTINGS = FIXTURES / "listings"


def snapshot(out: Path) -> dict[str, str]:
    """Every file of a publication folder with its digest, and where `current` points."""
    files = {"current ->": os.readlink(out / "current")}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            files[str(path.relative_to(out))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "pub"
    result = kgpub("build", str(SEED), "--out", str(out), "--base-uri", "http://example.org/")
    assert result.returncode == 0, result.stderr
    return out


def test_build_prints_a_summary_and_publishes(built: Path) -> None:
    result = kgpub("build", str(SEED), "--out", str(built), "--base-uri", "http://example.org/")
    assert result.returncode == 0
    assert result.stdout.startswith("35 entries, 9 concepts, 377 triples; valid")
    assert "0 warnings" in result.stdout
    assert str(built / "current") in result.stdout
    assert result.stderr == ""  # no progress when stderr is not a terminal
    current = built / "current"
    for name in (
        "manifest.json",
        "void.ttl",
        "validation.ttl",
        "store",
    ):
        assert (current / name).exists(), name
    for suffix in (".ttl", ".nt", ".jsonld", ".rdf"):
        for name in (f"library{suffix}", f"library{suffix}.gz"):
            assert name in dump_names(current) and read_dump(current, name), name


@pytest.mark.parametrize(
    ("given", "enrich"),
    [([], None), (["--enrich"], True), (["--no-enrich"], False)],
    ids=["absent", "enrich", "no-enrich"],
)
def test_enrich_is_a_flag(given: list[str], enrich: bool | None) -> None:
    """`kgpub build --enrich SOURCE`, as the README and the meaning search's 400 say it (it
    was an error: "expected one argument"); absent (None), the environment's KGPUB_ENRICH."""
    args = make_parser().parse_args(switches(["build", *given, str(SEED)]))
    assert args.enrich is enrich and args.sources == [str(SEED)]


@pytest.mark.parametrize(
    ("given", "enrich"),
    [
        (["--enrich", "0"], False),
        (["--enrich", "true"], True),
        (["--enrich=no"], False),
        (["--enrich=1"], True),
    ],
)
def test_an_on_off_setting_still_takes_a_value(given: list[str], enrich: bool) -> None:
    """Command lines written when on/off settings took a value (`--warm-up 0`, as scripts and
    the test servers pass them) keep working beside the flag form."""
    args = make_parser().parse_args(switches(["build", *given, str(SEED)]))
    assert args.enrich is enrich and args.sources == [str(SEED)]
    serve = make_parser().parse_args(switches(["serve", "--warm-up", "0", "--port", "5001"]))
    assert serve.warm_up is False and serve.port == 5001


def test_quiet_build_prints_nothing(tmp_path: Path) -> None:
    result = kgpub("build", str(SEED), "--out", str(tmp_path / "p"), "-q")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_build_defaults_to_the_listings_in_data(tmp_path: Path) -> None:
    result = kgpub("build", "--out", str(tmp_path / "p"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("35 entries, 9 concepts")


def test_a_folder_of_category_pages_is_one_library(tmp_path: Path) -> None:
    result = kgpub("validate", str(LISTINGS / "pages"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("3 entries, 3 concepts")
    assert "Nothing was written." in result.stdout


@pytest.mark.parametrize(("name", "message"), sorted(BAD.items()), ids=sorted(BAD))
def test_bad_listing_exits_2_with_file_line_and_leaves_publication(
    built: Path, name: str, message: str
) -> None:
    before = snapshot(built)
    path = LISTINGS / "bad" / name
    result = kgpub("build", str(path), "--out", str(built), "--base-uri", "http://example.org/")
    assert result.returncode == 2
    assert result.stderr == f"{path}:{message}\n"
    assert "Traceback" not in result.stdout + result.stderr
    assert snapshot(built) == before


def test_validate_writes_nothing(tmp_path: Path) -> None:
    result = kgpub("validate", str(SEED), cwd=tmp_path)
    assert result.returncode == 0
    assert list(tmp_path.iterdir()) == []


def test_missing_source_is_an_input_error(tmp_path: Path) -> None:
    result = kgpub("validate", str(tmp_path / "nope.txt"))
    assert result.returncode == 2
    assert result.stderr == f"{tmp_path / 'nope.txt'}:0: no such file\n"


def test_bad_base_iri_is_an_input_error() -> None:
    result = kgpub("validate", str(SEED), "--base-uri", "ftp://example.org/")
    assert result.returncode == 2
    assert "must be an absolute http(s) IRI" in result.stderr


def test_base_iri_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "KGPUB_BASE_URI": "https://lib.example.net/"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "build",
            str(SEED),
            "--out",
            str(tmp_path / "p"),
            "-q",
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    ttl = read_dump(tmp_path / "p" / "current", "library.ttl").decode("utf-8")
    assert "@prefix entry: <https://lib.example.net/entry/> ." in ttl


def test_unwritable_output_is_reported_without_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = kgpub("build", str(SEED), "--out", str(blocker / "pub"))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"kgpub: {blocker / 'pub'}: cannot write the publication")


def test_a_second_build_at_once_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """Two builds of one folder at once would both start from the same release and the last
    swap would drop the other's history: while one holds the lock, another exits 3."""
    out = tmp_path / "pub"
    assert kgpub("build", str(SEED), "--out", str(out), "-q").returncode == 0
    before = os.readlink(out / "current")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(600)\n",  # killed at the end of the test
            str(out / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = kgpub("build", str(SEED), "--out", str(out), "-q")
        assert result.returncode == 3
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(f"kgpub: {out}: another build is running (it holds ")
        assert os.readlink(out / "current") == before
    finally:
        holder.kill()
        holder.communicate()
    assert kgpub("build", str(SEED), "--out", str(out), "-q").returncode == 0
