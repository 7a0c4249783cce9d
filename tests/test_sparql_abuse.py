"""Queries written to hurt: each is refused, or answered, or cut off at its budget, promptly,
while another client's queries are answered and the worker survives.

A real server (`kgpub serve`, one worker, two query processes, a 2 s budget, the default
100,000-byte length limit) on a generated library of 1,500 entries. Time bounds are generous:
they tell "within its budget" from "minutes" (a 100 KB query took minutes of the worker's CPU
before the query was even run, in the check for SERVICE) or "a crashed query process".
A flood of concurrent expensive queries is tests/test_admission.py's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from live import Server, serve_generated
from procs import query_children, workers
from sparql_http import query

from graph.query import MAX_NESTING

BUDGET = 2.0
PROMPTLY = BUDGET + 15.0  # seconds: the budget, and room for a busy machine
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("abuse")
    settings = {"query_timeout": BUDGET, "query_concurrency": 2}
    with serve_generated(folder, 1500, 1, **settings) as running:
        yield running


PREFIX = "PREFIX ex: <http://example.org/>\n"
LONG = 99_000  # characters: under the 100,000-byte limit


def _values(count: int, variable: str = "x") -> str:
    return f"VALUES ?{variable} {{ " + " ".join(f'"{i}"' for i in range(count)) + " }"


# (id, query, statuses, what the message says when refused)
ABUSE = [
    (
        "100KB-of-names-holding-service",  # quadratic in the SERVICE check: minutes
        PREFIX + "SELECT * WHERE { ?s ?p ex:a" + "xservice" * (LONG // 8) + " } LIMIT 1",
        {200},
        "",
    ),
    (
        "100KB-variable-holding-service",
        "SELECT * WHERE { ?s ?p ?a" + "service" * (LONG // 7) + " } LIMIT 1",
        {200},
        "",
    ),
    (
        "deeply-nested-groups",  # the query process's stack overflowed (SIGSEGV): 503
        "SELECT * WHERE " + "{" * 30_000 + "?s ?p ?o" + "}" * 30_000,
        {400},
        f"more than {MAX_NESTING} levels deep",
    ),
    (
        "deeply-nested-filter-exists",
        "SELECT * WHERE { ?s ?p ?o " + "FILTER EXISTS { ?s ?p ?o " * 1000 + "}" * 1000 + " }",
        {400},
        f"more than {MAX_NESTING} levels deep",
    ),
    (
        "deeply-nested-expression",
        "ASK { FILTER(" + "(" * 20_000 + "1" + ")" * 20_000 + ") }",
        {400},
        f"more than {MAX_NESTING} levels deep",
    ),
    (
        "nesting-at-the-limit",
        "SELECT * WHERE " + "{ " * 100 + "?s ?p ?o" + " }" * 100,
        {200, 400},
        "",
    ),
    (
        "huge-values-block",  # 12,000 values (85 KB) joined with the graph
        f"SELECT ?s WHERE {{ {_values(12_000)} ?s ?p ?x }}",
        {200},
        "",
    ),
    (
        "values-cross-product",  # 10^9 rows
        "SELECT (COUNT(*) AS ?n) WHERE { "
        + " ".join(_values(1000, v) for v in ("a", "b", "c"))
        + " }",
        {503},
        "budget",
    ),
    (
        "regex-built-to-backtrack",  # 2^40 steps for a backtracking engine
        'SELECT * WHERE { VALUES ?t { "' + "a" * 40 + '!" } FILTER(REGEX(?t, "^(a+)+$")) }',
        {200},
        "",
    ),
    (
        "regex-on-every-literal",
        'SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o FILTER(REGEX(STR(?o), "(.*a){12}(.*b){12}$")) }',
        {200, 503},
        "",
    ),
    (
        "property-path-over-the-whole-graph",
        "SELECT (COUNT(*) AS ?n) WHERE { ?a (ex:p|!ex:p)* ?b . ?b (ex:p|!ex:p)* ?c }".replace(
            "SELECT", PREFIX + "SELECT"
        ),
        {503},
        "budget",
    ),
    (
        "nested-optionals",
        "SELECT * WHERE { ?s ?p ?o " + "OPTIONAL { ?s ?p ?o " * 100 + "}" * 100 + " } LIMIT 1",
        {200, 503},
        "",
    ),
]


@pytest.mark.parametrize(
    ("text", "statuses", "says"), [a[1:] for a in ABUSE], ids=[a[0] for a in ABUSE]
)
def test_an_abusive_query_is_refused_or_cut_off_while_others_are_answered(
    server: Server, text: str, statuses: set[int], says: str
) -> None:
    assert len(text.encode()) <= 100_000  # not refused for its length
    before = workers(server)
    probes: list[int] = []
    done = threading.Event()

    def probe() -> None:  # another client, all along
        while not done.is_set():
            probes.append(query(server.base, "ASK { ?s ?p ?o }").status)
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    started = time.monotonic()
    try:
        reply = query(server.base, text, method="POST")
        elapsed = time.monotonic() - started
    finally:
        done.set()
        prober.join()
    assert reply.status in statuses, reply.body[:300]
    assert elapsed < PROMPTLY, elapsed
    if reply.status != 200:
        message = json.loads(reply.body)["message"]
        assert says in message, message
        if reply.status == 503:
            assert reply.header("Retry-After").isdigit()
    assert probes and set(probes) <= {200, 503}, probes
    assert 200 in probes or elapsed < 1.0, probes
    assert query(server.base, "ASK { ?s ?p ?o }").status == 200
    assert workers(server) == before  # the worker survived


def test_a_refused_query_costs_no_query_process(server: Server) -> None:
    """A query refused by its text never reaches a query process: none is killed or replaced
    (a crashed one costs a restart that opens the store)."""
    query(server.base, "ASK { ?s ?p ?o }")
    children = query_children(server)
    deep = "SELECT * WHERE " + "{" * 30_000 + "?s ?p ?o" + "}" * 30_000
    reply = query(server.base, deep, method="POST")
    assert reply.status == 400
    assert query_children(server) == children
