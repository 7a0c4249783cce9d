"""Related entries and the meaning search (graph/enrich), tried as a user does: the seed built
with `--enrich`, served, its entry pages and searches read over HTTP. Needs the [enrich]
extra (CI installs it); without it these tests are skipped with the reason."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pyoxigraph
import pytest
import rdflib
from dumpfiles import read_dump
from extra import needs_enrich
from fetch import get
from live import PRUNING, ROOT, SEED, Backend, Server, free_port

from graph.namespaces import KGPUB
from graph.publication import BuildOptions, build, current_release

pytestmark = needs_enrich

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
CSE_GUIDE = "Child sexual exploitation: definition and guide for practitioners"
CSE_TACKLING = "Tackling Child Sexual Exploitation"
ACT = "Children and Families Act 2014"
ONLINE_CSE = (
    "Online Child Sexual Exploitation: Examining the Distribution of Captures of "
    "Live-streamed Child Sexual Abuse"
)
GLOBAL_THREAT = (
    "Global Threat Assessment 2018 – Working together to end the sexual exploitation of "
    "children online"
)
GROOMING = "grooming of children on the internet"
# A description changed: its entry embedded again, its links and its neighbours' relinked.
CHANGED_TEXT = (
    "This summary outlines the key changes the Act makes",
    "This summary outlines online grooming and the key changes the Act makes",
)
G = quote_plus(GROOMING)


@pytest.fixture(scope="module")
def enriched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    port = free_port()
    out = tmp_path_factory.mktemp("enriched") / "pub"
    base = f"http://127.0.0.1:{port}/"
    build([SEED], out, BuildOptions(base=base, enrich=True), now=NOW)
    with Server(out, port, workers=1) as server:
        yield server, out


def related_rows(release: Path) -> list[tuple[Any, ...]]:
    """Every related row of a release's enrichment (its months' parts), without the title."""
    from graph.enrich.read import rows_of

    return [row[:5] for row in rows_of(release / "enrich.sqlite", "related")]


def vector_files(release: Path) -> list[Path]:
    """A release's months' vector files, in IRI order."""
    from graph.enrich.read import read_parts

    listed = read_parts(release / "enrich.sqlite")
    assert listed is not None
    return [release / "enrich" / p.vectors for p in listed]


def titles_of(release: Path) -> dict[str, str]:
    with sqlite3.connect(release / "index.sqlite") as db:
        rows = db.execute("SELECT e.iri, d.title FROM entry e JOIN document d ON d.id = e.id")
        return {title: iri for iri, title in rows}


def json_search(base: str, query: str) -> dict[str, Any]:
    reply = get(base + "search?" + query, {"Accept": "application/json"})
    assert reply.status == 200, reply.body
    doc: dict[str, Any] = json.loads(reply.body)
    return doc


def test_the_two_exploitation_guides_relate_more_to_each_other_than_to_the_act(
    enriched: tuple[Server, Path],
) -> None:
    server, out = enriched
    by_title = titles_of(current_release(out))
    scores = {(i, t): s for i, _, t, _, s in related_rows(current_release(out))}
    guide, tackling, act = by_title[CSE_GUIDE], by_title[CSE_TACKLING], by_title[ACT]
    assert scores[(guide, tackling)] == scores[(tackling, guide)]
    # The Act is not among either guide's related entries at all.
    assert (guide, act) not in scores and (tackling, act) not in scores
    page = get(guide.replace(server.base, server.base) + ".html", {})
    assert page.status == 200
    body = page.body.decode("utf-8")
    related = body[body.index("Related resources") :]
    assert CSE_TACKLING in related[: related.index("</section>")]
    assert ACT not in related[: related.index("</section>")]


def test_related_entries_are_in_every_rdf_representation(enriched: tuple[Server, Path]) -> None:
    server, out = enriched
    by_title = titles_of(current_release(out))
    guide = by_title[CSE_GUIDE]
    formats = (
        (".ttl", pyoxigraph.RdfFormat.TURTLE),
        (".nt", pyoxigraph.RdfFormat.N_TRIPLES),
    )
    for suffix, fmt in formats:
        reply = get(guide + suffix, {})
        assert reply.status == 200
        targets = {
            t.object.value
            for t in pyoxigraph.parse(reply.body, fmt)
            if t.subject.value == guide and t.predicate.value == str(KGPUB.related)
        }
        assert by_title[CSE_TACKLING] in targets, suffix
    # Each triple once (a related entry's title was there twice when the store had it too).
    lines = get(guide + ".nt", {}).body.decode("utf-8").splitlines()
    assert len(lines) == len(set(lines))
    # JSON-LD: the published context's term "related" (a remote context, so read as JSON).
    doc = json.loads(get(guide + ".jsonld", {}).body)
    nodes = doc.get("@graph", [doc])
    node = next(n for n in nodes if n.get("id") == guide)
    assert by_title[CSE_TACKLING] in node["related"]
    context = json.loads(get(server.base + "context.jsonld", {}).body)["@context"]
    assert context["related"]["@id"] == str(KGPUB.related)


def test_a_search_by_meaning_finds_online_exploitation_for_grooming(
    enriched: tuple[Server, Path],
) -> None:
    server, _ = enriched
    doc = json_search(server.base, f"q={G}&mode=meaning")
    titles = [h["title"] for h in doc["hits"]]
    assert not any("grooming" in t.lower() for t in titles)
    for wanted in (ONLINE_CSE, GLOBAL_THREAT, "Learning about online sexual harm"):
        assert wanted in titles[:5], titles
    # Word matches come first, then matches by meaning, each marked; closeness decreasing.
    marks = [h["match"] for h in doc["hits"]]
    assert marks == sorted(marks, key=lambda m: m != "words")
    meaning = [h["score"] for h in doc["hits"] if h["match"] == "meaning"]
    assert meaning == sorted(meaning, reverse=True) and meaning
    words_only = json_search(server.base, f"q={G}")
    assert doc["total"] > words_only["total"]
    assert [h["iri"] for h in doc["hits"][: words_only["total"]]] == [
        h["iri"] for h in words_only["hits"]
    ]


def test_json_and_rdf_carry_the_same_ranking(enriched: tuple[Server, Path]) -> None:
    server, _ = enriched
    doc = json_search(server.base, "q=sexual+exploitation&mode=meaning")
    reply = get(server.base + "search.ttl?q=sexual+exploitation&mode=meaning", {})
    graph = rdflib.Graph().parse(data=reply.body, format="turtle")
    rank = rdflib.URIRef(str(KGPUB.searchRank))
    ranked = sorted((int(r), str(s)) for s, r in graph.subject_objects(rank))
    assert [iri for _, iri in ranked] == [h["iri"] for h in doc["hits"]]
    matched = rdflib.URIRef(str(KGPUB.matchedBy))
    for hit in doc["hits"]:
        assert str(graph.value(rdflib.URIRef(hit["iri"]), matched)) == hit["match"]


def test_facets_narrow_the_meaning_search(enriched: tuple[Server, Path]) -> None:
    server, _ = enriched
    doc = json_search(server.base, f"q={G}&mode=meaning")
    year = doc["facets"]["year"][0]
    narrowed = json_search(server.base, f"q={G}&mode=meaning&year={year['year']}")
    assert narrowed["total"] == year["count"]
    assert all(h["created"].startswith(str(year["year"])) for h in narrowed["hits"])


def test_the_publisher_facet_narrows_the_meaning_search(enriched: tuple[Server, Path]) -> None:
    server, _ = enriched
    doc = json_search(server.base, "q=police+schools&mode=meaning")
    npcc = next(f for f in doc["facets"]["publisher"] if f["id"] == "npcc")
    narrowed = json_search(server.base, f"q=police+schools&mode=meaning&publisher={npcc['iri']}")
    assert narrowed["search"]["publisher"] == ["npcc"] and narrowed["search"]["mode"] == "meaning"
    assert narrowed["total"] == npcc["count"] >= 1
    assert all("npcc" in [p["id"] for p in h["publishers"]] for h in narrowed["hits"])
    assert get(server.base + "search?q=police&mode=meaning&publisher=nobody", {}).status == 400


def test_the_html_search_marks_how_each_hit_was_found(enriched: tuple[Server, Path]) -> None:
    server, _ = enriched
    reply = get(server.base + f"search?q={G}&mode=meaning", {"Accept": "text/html"})
    body = reply.body.decode("utf-8")
    assert body.count('class="match match-words"') >= 2  # the note, and the word match
    assert 'class="match match-meaning"' in body
    assert 'name="mode" value="meaning" checked' in body


def reference_search(
    release: Path, text: str, categories: list[str], years: list[int], publishers: list[str]
) -> list[tuple[str, str, float | None]]:
    """The meaning search's whole list the plain way: every entry's dot product with the
    text (the int8 vectors of the months' files, concatenated), the facets' entries from the
    word search, every candidate sorted (closest first, ties to the lower IRI), then cut."""
    import numpy as np

    from graph.enrich import meaning
    from graph.enrich.read import rows_of
    from graph.enrich.related import SCALE, quantise, score_of
    from graph.index import Index

    index = Index(release / "index.sqlite")
    iris = [iri for _, iri, _ in rows_of(release / "enrich.sqlite", "vector")]
    matrix = np.concatenate([np.load(path) for path in vector_files(release)])
    assert matrix.shape == (len(iris), 384)
    vector = quantise(meaning.encoder().encode([text]))[0].astype(np.int64)
    dots = matrix.astype(np.int64) @ vector
    id_of = index.entry_ids()
    iri_of = {n: iri for iri, n in id_of.items()}
    words = meaning.words_of(text)
    exact = [iri_of[n] for n in index.ranked_ids(words, categories, years, 1000, publishers)]
    allowed = {iri_of[n] for n in index.ranked_ids((), categories, years, 10**9, publishers)}
    dot_of = dict(zip(iris, dots.tolist(), strict=True))
    candidates = [
        iri
        for iri in iris
        if iri in allowed and iri not in exact and dot_of[iri] >= 0.3 * SCALE * SCALE
    ]
    candidates.sort(key=lambda iri: (-dot_of[iri], iri))
    listed = [(iri, "words", score_of(dot_of[iri])) for iri in exact]
    meaning_cut = candidates[: meaning.MAX_MEANING]
    return listed + [(iri, "meaning", score_of(dot_of[iri])) for iri in meaning_cut]


@pytest.mark.parametrize("cut", [100, 4])
def test_the_meaning_search_lists_what_a_plain_computation_lists(
    enriched: tuple[Server, Path], monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    """Every page of graph/enrich/meaning.py's search, with and without facets (narrow ones
    multiply their rows alone, wide ones every row, their masks kept from search to search),
    against reference_search; with a cut of 4, the closest 4 by meaning."""
    from graph.enrich import meaning
    from graph.enrich.read import Enrichment
    from graph.index import Index

    monkeypatch.setattr(meaning, "MAX_MEANING", cut)
    _, out = enriched
    release = current_release(out)
    files = vector_files(release)
    assert len(files) > 1  # the seed's months: the search reads them as one matrix
    assert sum(f.stat().st_size for f in files) < (35 + 2 * len(files)) * 384  # int8: a byte
    index, enrichment = Index(release / "index.sqlite"), Enrichment(release / "enrich.sqlite")
    years = [int(f.key) for f in index.search((), (), (), "newest", 1, 1).years]
    by_size = sorted(index.categories().values(), key=lambda c: c.entries)
    largest, smallest = by_size[-1].iri, by_size[0].iri
    # The largest is multiplied with every row, the smallest alone.
    entries = len(index.entry_ids())
    assert by_size[0].entries * meaning.NARROW <= entries < by_size[-1].entries * meaning.NARROW
    cases: list[tuple[str, list[str], list[int], list[str]]] = [
        (GROOMING, [], [], []),
        ("sexual exploitation", [], [], []),
        ("police and schools", [largest], [], []),
        ("police and schools", [smallest], [], []),
        (GROOMING, [], years[:2], []),
        ("county lines", [largest], years[:1], []),
        ("police schools", [], [], ["npcc"]),
        ("safeguarding children", [largest], years, ["npcc"]),
    ]
    by_meaning = []
    for text, categories, chosen, publishers in cases:
        expected = reference_search(release, text, categories, chosen, publishers)
        got: list[tuple[str, str, float | None]] = []
        for page in range(1, len(expected) // 7 + 2):
            found = meaning.search(index, enrichment, text, categories, chosen, page, 7, publishers)
            assert found.results.total == len(expected)
            got += [(f.hit.iri, f.match, f.score) for f in found.found]
        assert got == expected, (text, categories, chosen, publishers)
        by_meaning.append(sum(1 for e in expected if e[1] == "meaning"))
    assert max(by_meaning) == cut if cut < 10 else 0 < max(by_meaning) < cut


def test_a_bad_mode_is_400(enriched: tuple[Server, Path]) -> None:
    server, _ = enriched
    reply = get(server.base + "search?q=x&mode=vibes", {"Accept": "application/json"})
    assert reply.status == 400
    assert "unknown mode 'vibes'" in json.loads(reply.body)["message"]


def test_a_changed_entry_is_embedded_again_alone_and_relinked_as_in_full(
    tmp_path: Path, enriched: tuple[Server, Path]
) -> None:
    _, out = enriched
    first = current_release(out)
    copy = tmp_path / "pub"
    shutil.copytree(out, copy, symlinks=True, ignore=PRUNING)
    text = SEED.read_text(encoding="utf-8")
    changed = tmp_path / "library-safeguarding.txt"
    changed.write_text(text.replace(*CHANGED_TEXT), encoding="utf-8")
    base = json.loads((first / "manifest.json").read_text())["base"]
    outcome = build([changed], copy, BuildOptions(base=base, enrich=True), now=NOW)
    assert "1 text(s) embedded" in outcome.enriched
    full = tmp_path / "full"
    build([changed], full, BuildOptions(base=base, enrich=True), now=NOW, reuse=False)
    assert related_rows(current_release(copy)) == related_rows(current_release(full))


def test_the_same_data_gives_the_same_links(tmp_path: Path, enriched: tuple[Server, Path]) -> None:
    _, out = enriched
    base = json.loads((current_release(out) / "manifest.json").read_text())["base"]
    again = tmp_path / "again"
    build([SEED], again, BuildOptions(base=base, enrich=True), now=NOW, reuse=False)
    assert related_rows(current_release(again)) == related_rows(current_release(out))


@pytest.mark.parametrize("stored", [False, True], ids=["dict", "stored"])
@pytest.mark.parametrize("block", [2048, 16], ids=["few-rows", "blocks"])
@pytest.mark.parametrize("seed", range(6))
def test_relinking_equals_linking_anew(
    seed: int, block: int, stored: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Changed, removed and added entries among clustered vectors: relink() gives exactly
    neighbours() of the new vectors (the int8 products are exact, ties go to the IRI).
    Changed texts become another's (ties), or leave their cluster for a new place (they
    leave the lists they were in, and enter others); relink takes its few rows against all
    (_against) or, past BLOCK rows, the whole product by blocks. The previous links as a
    dict, or as a release's files (Stored: lists read when a new text reaches their floor
    or their vectors reach a stale entry's)."""
    import numpy as np

    from graph.enrich import related
    from graph.enrich.related import Previous, Vectors, neighbours, quantise, relink, write
    from graph.iris import Iris

    monkeypatch.setattr(related, "BLOCK", block)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, 384))
    raw = centres[rng.integers(0, 8, 400)] + rng.normal(0, 0.6, (400, 384))
    unit = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
    iris = [f"http://x/entry/{i:04d}" for i in range(400)]
    before = Vectors(iris, [f"d{i}" for i in range(400)], quantise(unit))
    links = neighbours(before)
    old = dict(zip(before.iris, before.digests, strict=True))
    keep = sorted(set(range(400)) - set(rng.choice(400, 5, replace=False).tolist()))
    matrix = before.matrix[keep].copy()
    digests = [before.digests[i] for i in keep]
    for n, row in enumerate(rng.choice(len(keep), 9, replace=False).tolist()):
        if n % 2:  # a text now another's: ties, broken by the IRI
            matrix[row] = matrix[(row + 3) % len(keep)]
        else:  # a text that left its cluster for another
            moved = centres[rng.integers(0, 8)] + rng.normal(0, 0.6, 384)
            matrix[row] = quantise((moved / np.linalg.norm(moved)).astype(np.float32)[None])[0]
        digests[row] = f"changed{row}"
    added = quantise(unit[rng.choice(400, 4, replace=False)])
    after = Vectors(
        [iris[i] for i in keep] + [f"http://x/entry/new{i}" for i in range(4)],
        digests + [f"new{i}" for i in range(4)],
        np.concatenate([matrix, added]),
    )
    order = sorted(range(len(after.iris)), key=after.iris.__getitem__)
    after = Vectors(
        [after.iris[i] for i in order], [after.digests[i] for i in order], after.matrix[order]
    )
    if stored:
        write(tmp_path / "enrich.sqlite", before, links, {}, Iris.from_base("http://x/"))
        previous = Previous.read(tmp_path)
        assert previous.digests == old
        assert relink(after, previous.links, old) == neighbours(after)
    else:
        assert relink(after, links, old) == neighbours(after)


def test_worker_processes_give_the_same_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build's new texts embedded by two processes (spawned) are the vectors one process
    makes, whoever embeds them with whichever others; the build's process makes no model of
    its own then (its memory: related.py _embed_all)."""
    from graph.enrich import related
    from graph.enrich.model import Encoder

    texts = {f"http://x/entry/{i}": t for i, t in enumerate([CSE_GUIDE, ACT, GROOMING] * 2)}
    texts["http://x/entry/9"] = ONLINE_CSE
    alone, n = related.embed(texts, {}, Encoder, workers=1)
    monkeypatch.setattr(related, "POOL_MIN", 1)
    monkeypatch.setattr(related, "CHUNK_CHARS", 100)
    made: list[Encoder] = []

    def encoder() -> Encoder:
        made.append(Encoder())
        return made[-1]

    pooled, m = related.embed(texts, {}, encoder, workers=2)
    assert n == m == 4  # texts, not entries: the same text is embedded once
    assert pooled.matrix.tobytes() == alone.matrix.tobytes()
    assert not made  # the workers tokenise and embed: this process makes no model


def test_what_enrichment_serves_conforms_to_its_shapes(enriched: tuple[Server, Path]) -> None:
    import pyshacl

    server, out = enriched
    shapes = rdflib.Graph().parse(ROOT / "shapes" / "enrichment.ttl", format="turtle")
    guide = titles_of(current_release(out))[CSE_GUIDE]
    police = titles_of(current_release(out))[
        "When to call the police: Guidance for schools & colleges (NPCC)"
    ]
    data = rdflib.Graph()
    for url in (guide + ".ttl", police + ".ttl", server.base + "publisher/npcc.ttl"):
        data.parse(data=get(url, {}).body, format="turtle")
    assert len(list(data.subjects(rdflib.URIRef(str(KGPUB.related))))) >= 5
    conforms, _, text = pyshacl.validate(data, shacl_graph=shapes)
    assert conforms, text
    # A publisher without a name breaks its shape.
    org = rdflib.URIRef(server.base + "publisher/npcc")
    data.remove((org, rdflib.URIRef("http://www.w3.org/2004/02/skos/core#prefLabel"), None))
    assert not pyshacl.validate(data, shacl_graph=shapes)[0]


# --- the related entries as a linkset -----------------------------------------------------

RELATED_WITH_SCORE = """
PREFIX kgpub: <https://w3id.org/kgpub/ns#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
SELECT ?a ?b ?score WHERE {
  ?a kgpub:related ?b .
  ?link rdf:subject ?a ; rdf:predicate kgpub:related ; rdf:object ?b ; kgpub:score ?score .
}"""


def test_sparql_sees_the_related_entries_with_their_scores(enriched: tuple[Server, Path]) -> None:
    server, out = enriched
    reply = get(
        server.base + "sparql?query=" + quote_plus(RELATED_WITH_SCORE),
        {"Accept": "application/sparql-results+json"},
    )
    assert reply.status == 200, reply.body
    rows = json.loads(reply.body)["results"]["bindings"]
    found = {(r["a"]["value"], r["b"]["value"]): float(r["score"]["value"]) for r in rows}
    expected = {(i, t): s for i, _, t, _, s in related_rows(current_release(out))}
    assert found == expected and len(found) >= 5


def test_the_linkset_is_a_dump_described_in_void_and_dcat(enriched: tuple[Server, Path]) -> None:
    server, out = enriched
    release = current_release(out)
    reply = get(server.base + "dumps/related.nt", {})
    assert reply.status == 200
    # Served whole from its parts (graph/enrich/linkset.py), as the manifest describes it.
    assert reply.body == read_dump(release, "related.nt")
    packed = get(server.base + "dumps/related.nt.gz", {})
    assert packed.status == 200 and gzip.decompress(packed.body) == reply.body
    described = {
        d["filename"]: d for d in json.loads((release / "manifest.json").read_text())["dumps"]
    }
    for name, body in (("related.nt", reply.body), ("related.nt.gz", packed.body)):
        assert (described[name]["size"], described[name]["sha256"]) == (
            len(body),
            hashlib.sha256(body).hexdigest(),
        )
    links = rdflib.Graph().parse(data=reply.body, format="nt")
    related = rdflib.URIRef(str(KGPUB.related))
    assert len(list(links.triples((None, related, None)))) == len(related_rows(release))
    void = rdflib.Graph().parse(release / "void.ttl", format="turtle")
    ds = rdflib.URIRef(server.base + "dataset")
    linkset = rdflib.URIRef(server.base + ".well-known/void#linkset-related")
    voids = rdflib.Namespace("http://rdfs.org/ns/void#")
    assert (ds, voids.subset, linkset) in void
    assert (linkset, rdflib.RDF.type, voids.Linkset) in void
    assert void.value(linkset, voids.linkPredicate) == related
    assert int(void.value(linkset, voids.triples)) == len(related_rows(release))  # type: ignore[arg-type]
    dumps = {str(d) for d in void.objects(linkset, voids.dataDump)}
    assert dumps == {server.base + "dumps/related.nt", server.base + "dumps/related.nt.gz"}
    dcat = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    described = {str(void.value(d, dcat.downloadURL)) for d in void.objects(ds, dcat.distribution)}
    assert dumps <= described
    assert (ds, voids.vocabulary, rdflib.URIRef(str(KGPUB))) in void


def test_a_rebuild_without_enrich_drops_the_links_from_the_store(
    tmp_path: Path, enriched: tuple[Server, Path]
) -> None:
    _, out = enriched
    copy = tmp_path / "pub"
    shutil.copytree(out, copy, symlinks=True, ignore=PRUNING)
    build([SEED], copy, BuildOptions(base=enriched[0].base), now=NOW.replace(year=2026))
    release = current_release(copy)
    store = pyoxigraph.Store.read_only(str(release / "store"))
    assert not list(store.quads_for_pattern(None, pyoxigraph.NamedNode(str(KGPUB.related)), None))
    assert not (release / "dumps" / "related.nt").exists()
    assert not (release / "dumps" / "related.nt.parts").exists()
    assert not [p for p in (release / "dumps" / "parts").iterdir() if p.name.startswith("related")]


LINK_TRIPLES = (
    "PREFIX kgpub: <https://w3id.org/kgpub/ns#> "
    "SELECT (COUNT(*) AS ?n) WHERE { { ?a kgpub:related ?b } UNION { ?link kgpub:score ?s } }"
)


def test_every_store_holds_the_linkset_of_its_release(backend: Backend, tmp_path: Path) -> None:
    """Enriched, then not (a store taken over from the previous release drops the links),
    then enriched again, then one description changed (a store copied from the previous
    release's takes the lines of the months whose links changed): the store answers with
    the current release's links and scores each time, and holds no others."""
    port = free_port()
    out = tmp_path / "pub"
    options = BuildOptions(base=f"http://127.0.0.1:{port}/", store=backend.store, enrich=True)

    def links_in_store() -> tuple[int, dict[tuple[str, str], float]]:
        with Server(out, port, workers=1, **backend.serve()) as server:
            answers = []
            for query in (LINK_TRIPLES, RELATED_WITH_SCORE):
                reply = get(
                    server.base + "sparql?query=" + quote_plus(query),
                    {"Accept": "application/sparql-results+json"},
                )
                assert reply.status == 200, reply.body
                answers.append(json.loads(reply.body)["results"]["bindings"])
            scored = {
                (r["a"]["value"], r["b"]["value"]): float(r["score"]["value"]) for r in answers[1]
            }
            return int(answers[0][0]["n"]["value"]), scored

    def expected() -> tuple[int, dict[tuple[str, str], float]]:
        rows = related_rows(current_release(out))
        return 2 * len(rows), {(i, t): s for i, _, t, _, s in rows}

    try:
        build([SEED], out, options, now=NOW)
        assert links_in_store() == expected() and expected()[0] > 0
        build([SEED], out, replace(options, enrich=False), now=NOW.replace(year=2026))
        assert links_in_store() == (0, {})
        build([SEED], out, options, now=NOW.replace(year=2027))
        assert links_in_store() == expected()
        changed = tmp_path / SEED.name
        text = SEED.read_text(encoding="utf-8")
        assert CHANGED_TEXT[0] in text
        changed.write_text(text.replace(*CHANGED_TEXT), encoding="utf-8")
        build([changed], out, options, now=NOW.replace(year=2028))
        assert links_in_store() == expected()
    finally:
        backend.drop_graphs(out)
