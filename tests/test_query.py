"""graph/query.py: inspection, evaluation with the result cap, the network wall, the process pool.

The safety claims are checked against pyoxigraph itself: a loopback listener counts the
connections pyoxigraph makes, so "inspect_query lets no SERVICE through" is measured, not
assumed (a generated family of tricky spellings, each run when inspect_query accepts it).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyoxigraph
import pytest
from live import ROOT
from pyoxigraph import Literal, NamedNode, Quad
from sparql_http import Listener

from graph.errors import (
    PublicationError,
    QueryError,
    QueryOverloaded,
    QueryRefused,
    QuerySyntaxError,
    QueryTimeout,
    QueryTooLarge,
)
from graph.formats import (
    JSONLD,
    NTRIPLES,
    RDF_FORMATS,
    SPARQL_RESULTS_CSV,
    SPARQL_RESULTS_JSON,
    SPARQL_RESULTS_TSV,
    SPARQL_RESULTS_XML,
)
from graph.query import (
    RESULT_FORMATS,
    QueryJob,
    QueryPool,
    evaluate,
    inspect_query,
    offered_types,
    run_in_process,
)


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


# --- inspect_query ----------------------------------------------------------------------------
FORMS = [
    ("SELECT * WHERE { ?s ?p ?o }", "SELECT"),
    ("select ?s { ?s ?p ?o }", "SELECT"),
    ("PREFIX ex: <http://ex.org/> BASE <http://b/> ASK { ?s ex:p ?o }", "ASK"),
    ("PREFIX select: <http://ex.org/>\nCONSTRUCT WHERE { ?s select:p ?o }", "CONSTRUCT"),
    ("# a comment\nDESCRIBE <http://ex.org/a>", "DESCRIBE"),
    ("PREFIX : <http://ex.org/> SELECT * {}", "SELECT"),
]


@pytest.mark.parametrize(("text", "form"), FORMS, ids=[f for _, f in FORMS])
def test_inspect_query_tells_the_form(text: str, form: str) -> None:
    assert inspect_query(text) == form


ALLOWED = [
    "PREFIX dcat: <http://www.w3.org/ns/dcat#> SELECT ?service { ?service a dcat:DataService }",
    "SELECT ?s { ?s a <http://www.w3.org/ns/sparql-service-description#Service> }",
    'SELECT ?s { ?s ?p "SERVICE <http://127.0.0.1/> {}" }',
    "SELECT ?s { ?s ?p ?o } # SERVICE <http://127.0.0.1/> {}",
    "PREFIX sd: <http://x/> SELECT * { ?s a sd:Service ; sd:service_x _:service }",
    "SELECT ($service AS ?x) { BIND(1 AS $service) }",
    "SELECT ?s { ?s ?p '''SERVICE\n<x> {}''' }",
]


@pytest.mark.parametrize("text", ALLOWED, ids=range(len(ALLOWED)))
def test_inspect_query_allows_the_word_service_in_names_strings_iris_and_comments(
    text: str,
) -> None:
    assert inspect_query(text) == "SELECT"


REFUSED_SERVICE = [
    "SELECT * { SERVICE <http://127.0.0.1/> { ?s ?p ?o } }",
    "select * { service silent <http://127.0.0.1/> { ?s ?p ?o } }",
    "SELECT * { ?s ?p ?o .SERVICE<http://127.0.0.1/>{} }",
    "SELECT * { ?s ?p 1SERVICE <http://127.0.0.1/> {} }",
    "SELECT * { ?s ex:p\\#x . SERVICE <http://127.0.0.1/> {} }",
    "SELECT * { ?s ?p ?o FILTER EXISTS { SERVICE ?x {} } }",
    "ASK { SeRvIcE <http://127.0.0.1/> {} }",
]


@pytest.mark.parametrize("text", REFUSED_SERVICE, ids=range(len(REFUSED_SERVICE)))
def test_inspect_query_refuses_service(text: str) -> None:
    with pytest.raises(QueryRefused, match="SERVICE is not allowed"):
        inspect_query(text)


UPDATES = [
    "INSERT DATA { <http://a> <http://b> <http://c> }",
    "PREFIX ex: <http://ex.org/> DELETE WHERE { ?s ?p ?o }",
    "LOAD <http://127.0.0.1/data.ttl>",
    "LOAD <file:///etc/passwd>",
    "CLEAR ALL",
    "DROP GRAPH <http://ex.org/g>",
    "WITH <http://g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
]


@pytest.mark.parametrize("text", UPDATES, ids=[u.split()[0] for u in UPDATES])
def test_inspect_query_refuses_updates(text: str) -> None:
    with pytest.raises(QueryRefused, match="read-only"):
        inspect_query(text)


@pytest.mark.parametrize("text", ["", "   ", "# only a comment", "PREFIX ex: <x>", "HELLO"])
def test_inspect_query_rejects_what_is_not_a_query(text: str) -> None:
    with pytest.raises(QuerySyntaxError):
        inspect_query(text)


def test_inspect_query_counts_bytes_against_the_maximum_length() -> None:
    text = "ASK { ?s ?p 'é' }"  # 17 characters, 18 bytes
    assert inspect_query(text, max_length=18) == "ASK"
    with pytest.raises(QueryTooLarge, match="longer than 17 bytes"):
        inspect_query(text, max_length=17)


@pytest.mark.parametrize(
    "text",
    [
        '"""' + "a" * 100_000,
        "'''" + "'a" * 50_000,
        '"' + "\\" * 100_000,
        "<" + "a" * 100_000,
        "<a" * 50_000,
        '"a' * 50_000,
        "SELECT * {" + "?service " * 10_000 + "}",
    ],
    ids=["long-string", "quotes", "backslashes", "iri", "iris", "strings", "variables"],
)
def test_inspection_of_a_hostile_100kb_text_is_quick(text: str) -> None:
    # CPU time, not wall-clock time: a busy machine slows the clock, not the work. Linear
    # inspection takes under 50 ms; backtracking on 100 kB would take minutes.
    started = time.process_time()
    with pytest.raises(QueryError):
        inspect_query(text + " SERVICE <x> {}")
    assert time.process_time() - started < 2.0


def _service_variants(url: str) -> Iterator[str]:
    """SERVICE clauses in many lexical surroundings, as an attacker would try them."""
    before = [
        "{ ", "{", "{ ?s ?p ?o ", "{ ?s ?p ?o .", "{ ?s ?p 1", "{ ?s ?p true", "{ ?s a ?o ",
        "{ ?s ?p ?o}", "{ ?s ex:p ex:o", "{ ?s ex:p? ", "{ ?s ex:p?", "{ ?s ex:p\\. ",
        "{ ?s ?p ?o #c\n", "{ ?s ?p 'x'", "{ ?s ?p <a>", "{ ?s ?p ?o FILTER(?o<1)",
        "{ FILTER EXISTS{", "{ OPTIONAL{", "{ {} UNION{", "{ ?s ?p 1.", "{ ?s ?p 1e1",
        "{ ?s ?p _:b", '{ ?s ?p "x"@en', "{ ?s ?p ?o; ", "{ BIND(1 AS ?x)", "{ MINUS{",
        "{ GRAPH ?g{", "{ ?s ?p ?x", "{ ?s ?p $x", "{ ?s ex:", "{ ?s ?p ex:a.",
        "{ ?s ?p ex:a-", "{ ?s ?p ex:a%41", "{ ?s ?p false", "{ ?s ?p ?o FILTER ?o ",
    ]  # fmt: skip
    spaces = ["", " ", "\n", "#x\n", "\u00a0", "\u2003", "\u1680", "\f"]
    keywords = ["SERVICE", "service", "SeRvIcE", "SERVICE SILENT"]
    targets = [f"<{url}>", f"<{url}\\u0041>", ":s", "ex:s"]
    for pre, space, keyword, target in itertools.product(before, spaces, keywords, targets):
        close = "}" * (pre.count("{") - pre.count("}"))
        yield (
            f"PREFIX ex: <{url}> PREFIX : <{url}> SELECT * WHERE "
            f"{pre}{space}{keyword}{space}{target} {{}}{close}"
        )


def test_no_query_that_inspect_query_accepts_makes_pyoxigraph_connect(
    listener: Listener,
) -> None:
    store = pyoxigraph.Store()
    store.query(f"SELECT * {{ SERVICE SILENT <{listener.url}> {{}} }}")  # the bare engine...
    assert listener.settle() == 1  # ...does connect: the listener sees it
    accepted = 0
    variants = list(_service_variants(listener.url))
    for text in variants:
        try:
            inspect_query(text)
        except QueryError:
            continue
        accepted += 1
        with contextlib.suppress(SyntaxError, OSError, RuntimeError, ValueError):
            list(store.query(text))
    assert listener.settle() == 1, "a query that inspect_query accepted made pyoxigraph connect"
    assert len(variants) > 4000 and accepted > 0  # the accepted ones were really run


# --- evaluate ---------------------------------------------------------------------------------
def _rows(n: int) -> str:
    values = " ".join(f'"row {i}\\n, with a comma and a newline"' for i in range(n))
    return f"SELECT ?x ?y WHERE {{ VALUES ?x {{ {values} }} BIND(<http://ex.org/y> AS ?y) }}"


@pytest.mark.parametrize("media_type", list(RESULT_FORMATS), ids=lambda m: m.split("/")[1])
def test_the_row_cap_is_exact_in_every_results_format(media_type: str) -> None:
    store = pyoxigraph.Store()
    job = QueryJob(_rows(25), "SELECT", media_type, "", max_results=25)
    result = evaluate(store, job)
    if media_type == SPARQL_RESULTS_CSV:  # lossy: pyoxigraph does not read it back
        rows = list(csv.reader(io.StringIO(result.body.decode("utf-8"), newline="")))
        assert len(rows) == 26 and rows[1][0] == "row 0\n, with a comma and a newline"
    else:
        parsed = pyoxigraph.parse_query_results(result.body, format=RESULT_FORMATS[media_type])
        assert isinstance(parsed, pyoxigraph.QuerySolutions)
        assert len(list(parsed)) == 25
    with pytest.raises(QueryRefused, match="more than 24 rows"):
        evaluate(store, QueryJob(_rows(25), "SELECT", media_type, "", max_results=24))


@pytest.mark.parametrize("fmt", RDF_FORMATS, ids=lambda f: f.key)
def test_the_triple_cap_is_exact_in_every_rdf_format(fmt: object) -> None:
    store = pyoxigraph.Store()
    for i in range(30):
        store.add(Quad(NamedNode(f"http://ex.org/s{i}"), NamedNode("http://ex.org/p"), Literal(i)))
    text = "CONSTRUCT WHERE { ?s ?p ?o }"
    media_type = fmt.media_type  # type: ignore[attr-defined]
    result = evaluate(store, QueryJob(text, "CONSTRUCT", media_type, "", max_results=30))
    rdf_format = pyoxigraph.RdfFormat.from_media_type(media_type)
    assert rdf_format is not None
    assert len(list(pyoxigraph.parse(result.body, format=rdf_format))) == 30
    with pytest.raises(QueryRefused, match="more than 29 triples"):
        evaluate(store, QueryJob(text, "CONSTRUCT", media_type, "", max_results=29))


def test_jsonld_results_use_the_published_context() -> None:
    store = pyoxigraph.Store()
    text = 'CONSTRUCT { <http://ex.org/a> <http://purl.org/dc/terms/title> "A"@en } WHERE {}'
    body = evaluate(store, QueryJob(text, "CONSTRUCT", JSONLD.media_type, "")).body
    document = json.loads(body)
    assert "@context" in document and "title" in json.dumps(document)


def test_the_protocol_dataset_replaces_from_and_from_named() -> None:
    store = pyoxigraph.Store()
    p = NamedNode("http://ex.org/p")
    store.add(Quad(NamedNode("http://ex.org/d"), p, Literal("default")))
    for name in "abc":
        graph = NamedNode(f"http://ex.org/{name}")
        store.add(Quad(graph, p, Literal(name), graph))

    def values(text: str, default: tuple[str, ...] | None, named: tuple[str, ...] | None) -> set:
        job = QueryJob(text, "SELECT", SPARQL_RESULTS_JSON, "", None, default, named)
        data = json.loads(evaluate(store, job).body)
        return {b["o"]["value"] for b in data["results"]["bindings"]}

    plain = "SELECT ?o { ?s ?p ?o }"
    assert values(plain, None, None) == {"default"}
    assert values("SELECT ?o FROM <http://ex.org/a> { ?s ?p ?o }", None, None) == {"a"}
    from_a = "SELECT ?o FROM <http://ex.org/a> { ?s ?p ?o }"
    assert values(from_a, ("http://ex.org/b",), None) == {"b"}
    assert values(from_a, None, ("http://ex.org/b",)) == set()  # default graph: none given
    named = "SELECT ?o FROM NAMED <http://ex.org/a> { GRAPH ?g { ?s ?p ?o } }"
    assert values(named, None, ("http://ex.org/c",)) == {"c"}
    assert values(plain, ("http://ex.org/missing", "file:///etc/passwd"), None) == set()


def test_run_in_process_inspects_first() -> None:
    with pytest.raises(QueryRefused):
        run_in_process(pyoxigraph.Store(), QueryJob("CLEAR ALL", "ASK", SPARQL_RESULTS_JSON, ""))


def test_offered_types() -> None:
    results = (SPARQL_RESULTS_JSON, SPARQL_RESULTS_XML, SPARQL_RESULTS_CSV, SPARQL_RESULTS_TSV)
    assert offered_types("SELECT") == offered_types("ASK") == results
    assert offered_types("DESCRIBE")[0] == "text/turtle"
    assert NTRIPLES.media_type in offered_types("CONSTRUCT")


# --- deny_network -----------------------------------------------------------------------------
SANDBOXED = """
import socket, sys
import pyoxigraph
from graph.query import deny_network
assert deny_network()
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    print("connected")
except PermissionError:
    print("refused")
try:
    list(pyoxigraph.Store().query("SELECT * { SERVICE <http://127.0.0.1:%s/> {} }" % sys.argv[1]))
except OSError as exc:
    print("service failed:", exc)
a, b = socket.socketpair()  # Unix sockets stay allowed
socket.socket(socket.AF_UNIX).close()
print("unix ok")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="seccomp is Linux-only")
def test_deny_network_stops_sockets_and_service_in_the_child(listener: Listener) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SANDBOXED, str(listener.port)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert out.splitlines()[0] == "refused"
    assert "service failed" in out and "unix ok" in out
    assert listener.settle() == 0


# --- QueryPool --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An on-disk store with 2,000 triples: a five-way cross join on it never ends."""
    path = tmp_path_factory.mktemp("pool") / "store"
    store = pyoxigraph.Store(str(path))
    p = NamedNode("http://ex.org/p")
    store.bulk_extend(Quad(NamedNode(f"http://ex.org/s{i}"), p, Literal(i)) for i in range(2000))
    store.flush()
    del store
    return str(path)


# The product of five scans of 2,000 triples: no row before it is done (hours), so only the
# time budget can stop it. (Its rows themselves, SELECT *, reach the 100,000-row cap within the
# budget on a quiet machine: CI's was, and got QueryRefused instead of QueryTimeout.)
PRODUCT = "{ ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n ?o }"
RUNAWAY = f"SELECT (COUNT(*) AS ?count) {PRODUCT}"
COUNT = "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"


def _count(pool: QueryPool, store_path: str) -> int:
    result = pool.run(QueryJob(COUNT, "SELECT", SPARQL_RESULTS_JSON, store_path))
    return int(json.loads(result.body)["results"]["bindings"][0]["n"]["value"])


def _wait_until_idle_children(pool: QueryPool, n: int) -> None:
    """Wait until n children are idle (a query submitted in a thread has taken its child)."""
    deadline = time.monotonic() + 60
    while pool._idle.qsize() != n:
        assert time.monotonic() < deadline, f"{pool._idle.qsize()} idle children, not {n}"
        time.sleep(0.01)


def test_pool_stops_a_runaway_query_and_keeps_answering(store_path: str) -> None:
    pool = QueryPool(size=2, timeout=1.5)
    try:
        assert _count(pool, store_path) == 2000
        assert pool.sandboxed or sys.platform != "linux"
        pids_before = {c.proc.pid for c in pool._all}
        with ThreadPoolExecutor(2) as executor:
            started = time.monotonic()
            runaway = executor.submit(
                pool.run, QueryJob(RUNAWAY, "SELECT", SPARQL_RESULTS_JSON, store_path)
            )
            _wait_until_idle_children(pool, 1)
            answers = []
            while not runaway.done():  # the other child answers while the runaway runs
                answers.append(_count(pool, store_path))
            with pytest.raises(QueryTimeout, match=r"1\.5 s budget"):
                runaway.result()
            # Not before the budget; the upper bound only tells "at the budget" from "never"
            # (the runaway would run for hours) with room for a busy machine.
            assert 1.4 < time.monotonic() - started < 60
        assert answers and set(answers) == {2000}
        assert _count(pool, store_path) == 2000
        killed = pids_before - {c.proc.pid for c in pool._all}
        assert len(killed) == 1  # the runaway's child was killed and replaced
    finally:
        pool.close()


def test_pool_refuses_a_query_when_every_child_is_busy(store_path: str) -> None:
    pool = QueryPool(size=1, timeout=2.0)
    try:
        _count(pool, store_path)
        with ThreadPoolExecutor(1) as executor:
            runaway = executor.submit(
                pool.run, QueryJob(RUNAWAY, "SELECT", SPARQL_RESULTS_JSON, store_path)
            )
            _wait_until_idle_children(pool, 0)  # held until the 2 s budget is spent
            with pytest.raises(QueryOverloaded, match="1 queries are running"):
                _count(pool, store_path)
            with pytest.raises(QueryTimeout):
                runaway.result()
        assert _count(pool, store_path) == 2000
    finally:
        pool.close()


def test_pool_starts_its_children_as_queries_need_them(store_path: str) -> None:
    pool = QueryPool(size=2, timeout=2.0, store_path=store_path, started=0)
    try:
        assert pool._all == []  # nothing started before a query
        assert _count(pool, store_path) == 2000
        assert _count(pool, store_path) == 2000
        assert len(pool._all) == 1  # the idle child took the second query
        with ThreadPoolExecutor(2) as executor:
            runaways = [
                executor.submit(
                    pool.run, QueryJob(RUNAWAY, "SELECT", SPARQL_RESULTS_JSON, store_path)
                )
                for _ in range(2)
            ]
            deadline = time.monotonic() + 60
            while len(pool._all) < 2 or pool._idle.qsize():  # a second child for the second
                assert time.monotonic() < deadline, f"{len(pool._all)} children"
                time.sleep(0.01)
            with pytest.raises(QueryOverloaded, match="2 queries are running"):
                _count(pool, store_path)  # no third child: the cap
            for runaway in runaways:
                with pytest.raises(QueryTimeout):
                    runaway.result()
        assert len(pool._all) == 2 and _count(pool, store_path) == 2000
    finally:
        pool.close()


def test_pool_stops_a_query_that_needs_too_much_memory(
    store_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The time budget is far beyond the few seconds the sort takes to fill 1 GiB, so that a
    # slow machine cannot turn this into a timeout: QueryOverloaded, not QueryTimeout, is
    # what tells that the memory cap stopped the query.
    pool = QueryPool(size=1, timeout=300.0, memory_mib=1024)
    try:
        assert _count(pool, store_path) == 2000
        (pid,) = (c.proc.pid for c in pool._all)
        with pytest.raises(QueryOverloaded, match=r"too much memory: the budget is 1,024 MiB"):
            pool.run(
                QueryJob(
                    f"SELECT * {PRODUCT} ORDER BY ?a", "SELECT", SPARQL_RESULTS_JSON, store_path
                )
            )
        assert "a query child died (exit status" in caplog.text
        assert _count(pool, store_path) == 2000
        assert pid not in {c.proc.pid for c in pool._all}  # replaced by a fresh child
    finally:
        pool.close()


def test_a_child_opens_the_store_in_a_small_memory_budget(store_path: str) -> None:
    # Opening a store starts a burst of RocksDB threads (about 180, up to 16 at once). With
    # glibc's default of one malloc arena per thread (up to 8 per core, 64 MiB of address
    # space each), the burst reserved 0.45-0.9 GiB under the cap depending on how the threads
    # happened to be scheduled, and past the cap a thread could not start: the child died with
    # std::system_error (EAGAIN) before any query. One arena keeps it near 0.2 GiB, always.
    pool = QueryPool(size=1, timeout=60.0, memory_mib=384, store_path=store_path)
    try:
        assert _count(pool, store_path) == 2000  # opened before the child said it was ready
        pool.close()
        pool = QueryPool(size=1, timeout=60.0, memory_mib=384)
        assert _count(pool, store_path) == 2000  # opened for the first query
    finally:
        pool.close()


def test_pool_reports_query_errors_from_the_child(store_path: str) -> None:
    pool = QueryPool(size=1, timeout=5.0)
    try:
        with pytest.raises(QuerySyntaxError, match="does not parse"):
            pool.run(QueryJob("SELECT * { ?s ?p }", "SELECT", SPARQL_RESULTS_JSON, store_path))
        with pytest.raises(PublicationError, match=r"store"):  # the publication's fault: 503
            pool.run(QueryJob(COUNT, "SELECT", SPARQL_RESULTS_JSON, store_path + "-missing"))
        assert _count(pool, store_path) == 2000
    finally:
        pool.close()


def test_child_results_equal_in_process_results(store_path: str) -> None:
    pool = QueryPool(size=1, timeout=5.0)
    store = pyoxigraph.Store.read_only(store_path)
    try:
        for media_type in (SPARQL_RESULTS_TSV, SPARQL_RESULTS_XML):
            job = QueryJob("SELECT * { ?s ?p ?o } ORDER BY ?s", "SELECT", media_type, store_path)
            assert pool.run(job).body == run_in_process(store, job).body
    finally:
        pool.close()


def test_child_is_importable_without_the_web_layer() -> None:
    code = "import graph.query, sys; print([m for m in ('flask', 'rdflib') if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert out.strip() == "[]"


def test_query_job_round_trips_through_bytes() -> None:
    job = QueryJob("ASK {}", "ASK", SPARQL_RESULTS_JSON, "/x", "http://b/", ("a",), (), 5,
                   (("ex", "http://ex.org/"),))  # fmt: skip
    assert QueryJob.from_bytes(job.to_bytes()) == job
