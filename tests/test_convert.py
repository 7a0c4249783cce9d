"""Entries -> DCMI Terms + SKOS: golden graph, stable IRIs, determinism."""

from __future__ import annotations

import hashlib
import re
import tempfile
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pyoxigraph
import pytest
import rdflib
from dump_oracle import write_dump
from hypothesis import given, settings
from hypothesis import strategies as st
from live import FIXTURES, SEED
from rdfdiff import assert_isomorphic

from graph import iris as iris_module
from graph.convert import _en, convert, format_created, library_title
from graph.errors import ListingError
from graph.formats import TURTLE
from graph.iris import BaseIriError, Iris, entry_slug, normalize_base, slugify
from graph.listing import Entry, Place, parse_listing, read_listings
from graph.shacl import to_rdflib

BASE = "http://example.org/lib/"
GOLDEN = Path(__file__).resolve().parent / "golden"
LISTINGS = FIXTURES / "listings"


def _convert(paths: list[Path], base: str = BASE):  # type: ignore[no-untyped-def]
    pages, entries, _ = read_listings(paths)
    return convert(entries, Iris.from_base(base), library_title(pages))


def test_quirks_listing_matches_golden_turtle() -> None:
    converted = _convert([LISTINGS / "good" / "quirks.txt"])
    expected = rdflib.Graph().parse(GOLDEN / "quirks.ttl", format="turtle")
    assert_isomorphic(to_rdflib(converted.triples), expected)


def test_seed_counts() -> None:
    converted = _convert([SEED])
    assert len(converted.entries) == 35
    assert len(converted.categories) == 9
    assert converted.title == "Library"


def test_entry_iris_do_not_depend_on_other_pages() -> None:
    pages = sorted((LISTINGS / "pages").glob("*.txt"))
    alone = _convert([pages[0]]).entries
    together = _convert(pages).entries
    assert set(alone) <= set(together)


def test_same_title_different_time_gives_two_iris() -> None:
    converted = _convert([LISTINGS / "good" / "quirks.txt"])
    same = [iri for iri, e in converted.entries.items() if e.title == "Same title, another time"]
    assert same == [
        BASE + "entry/2021-03-28-0059-same-title-another-time",
        BASE + "entry/2021-03-28-0201-same-title-another-time",
    ]


def test_a_new_category_becomes_a_new_concept() -> None:
    text = "Library – New\n\nT\n\nAdded: 01/02/2020 at 9:00 am Category: Brand New Topic\n"
    page = parse_listing(text, "new.txt")
    converted = convert(list(page.entries), Iris.from_base(BASE), "Library")
    assert list(converted.categories) == [BASE + "category/brand-new-topic"]


def test_two_labels_with_one_slug_are_refused() -> None:
    text = (
        "Library – X\n\nA\n\nAdded: 01/02/2020 at 9:00 am Category: Health/Wellbeing\n\n"
        "B\n\nAdded: 01/02/2020 at 9:01 am Category: Health Wellbeing\n"
    )
    page = parse_listing(text, "x.txt")
    with pytest.raises(ListingError, match="would share the IRI"):
        convert(list(page.entries), Iris.from_base(BASE), "Library")


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_same_data_gives_byte_identical_dumps(tmp_path: Path, order: str) -> None:
    pages = sorted((LISTINGS / "pages").glob("*.txt"))
    iris = Iris.from_base(BASE)
    first, second = tmp_path / "a.ttl", tmp_path / "b.ttl"
    write_dump(_convert(pages).triples, TURTLE, first, iris)
    again = pages if order == "forward" else list(reversed(pages))
    write_dump(_convert(again).triples, TURTLE, second, iris)
    assert first.read_bytes() == second.read_bytes()


def test_description_keeps_line_breaks_and_language() -> None:
    converted = _convert([LISTINGS / "good" / "quirks.txt"])
    store = pyoxigraph.Store()
    store.bulk_extend(pyoxigraph.Quad(t.subject, t.predicate, t.object) for t in converted.triples)
    rows = list(
        store.query(
            "SELECT ?d WHERE { ?e <http://purl.org/dc/terms/title> "
            '"Bullets with and without a space"@en ; <http://purl.org/dc/terms/description> ?d }'
        )
    )
    assert rows[0]["d"].language == "en"
    assert rows[0]["d"].value.count("\n") == 2


@pytest.mark.parametrize("reading", ["whole", "lazy"])
def test_a_spooled_convert_holds_no_description_and_reads_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reading: str
) -> None:
    """With a spool (a build), the entries keep no description (a million were 640 MB):
    entries read whole let go of theirs, entries read lazily (the seed read as a long page
    is, by slabs) never held one, and those of a month made anew (all of them here: nothing
    reused) let go of where theirs are; descriptions() reads them back, the same as an
    in-memory convert's."""
    monkeypatch.setattr("graph.listing.SLAB_BYTES", 4096)
    pages, entries, _ = read_listings([SEED], lazy=reading == "lazy")
    _, held, _ = read_listings([SEED])
    described = sum(1 for e in held if e.description)
    assert described > 0
    assert sum(1 for e in entries if e.description) == (0 if reading == "lazy" else described)
    whole = convert(held, Iris.from_base(BASE), library_title(pages))
    with (tmp_path / "spool.nt").open("w+b") as spool:
        spooled = convert(entries, Iris.from_base(BASE), library_title(pages), spool=spool)
        kept = list(spooled.entries.values())
        assert kept and all(e.description == "" and e.body is None for e in kept)
        count = len(kept)
        said = spooled.descriptions(0, count)
        assert said == whole.descriptions(0, count)
        assert sum(1 for d in said if d) == described
        assert spooled.text[:] == whole.text[:]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(
            st.characters(blacklist_categories=("Cs", "Cc", "Cn"), whitelist_characters='\n\t"\\'),
            max_size=30,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_descriptions_read_back_from_the_text_are_the_entries_own(texts: list[str]) -> None:
    """Converted.descriptions reads every description back from the N-Triples, all of a run
    of entries at once: quotes, backslashes, line breaks and any character the text may hold
    come back as the entry had them, and "" where an entry has none."""

    def entries() -> list[Entry]:  # new ones each time: a spooled convert empties them
        return [
            Entry(f"Entry {n}", datetime(2020, 1, 1 + n, tzinfo=UTC), ("A",), t, (Place("l", n),))
            for n, t in enumerate(texts)
        ]

    whole = convert(entries(), Iris.from_base(BASE), "Library")
    expected = [e.description for e in whole.entries.values()]  # in IRI order
    assert sorted(expected) == sorted(texts)
    with tempfile.TemporaryFile() as spool:
        spooled = convert(entries(), Iris.from_base(BASE), "Library", spool=spool)
        assert spooled.descriptions(0, len(texts)) == expected


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Café – “Quotes” & more", "cafe-quotes-and-more"),
        ("Health/Wellbeing", "health-wellbeing"),
        ("Straße", "strasse"),
    ],
    ids=["accents-quotes", "slash", "eszett"],
)
def test_slugs_are_readable_ascii(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_a_title_with_nothing_ascii_gets_a_stable_hash_slug() -> None:
    assert slugify("中文") == slugify("中文")
    assert slugify("中文") != slugify("日本")
    assert len(slugify("中文")) == 8 and int(slugify("中文"), 16) >= 0


def test_long_titles_are_cut_at_a_word_and_stay_distinct() -> None:
    a = "A very long title " * 10 + "ending one way"
    b = "A very long title " * 10 + "ending another way"
    assert slugify(a) != slugify(b)
    assert len(slugify(a)) <= 70


def _slug_as_defined(text: str) -> str:
    """slugify's definition, as the first releases minted their IRIs: a published entry's
    IRI must not change when the code that makes it does."""
    folded = unicodedata.normalize("NFKD", text.translate(iris_module._FOLD))
    ascii_text = folded.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    if not slug:
        return digest
    if len(slug) > iris_module.MAX_SLUG:
        return f"{slug[: iris_module.MAX_SLUG].rsplit('-', 1)[0]}-{digest}"
    return slug


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        st.one_of(
            st.sampled_from("aZ09 -&/_.:'\"\t\n–“”ßæØœłĐþé中\x00\x7f"),
            st.characters(codec="utf-8"),
        ),
        max_size=90,
    ),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
)
def test_slugs_and_entry_slugs_are_those_the_definition_gives(text: str, when: datetime) -> None:
    assert slugify(text) == _slug_as_defined(text)
    created = when.replace(tzinfo=UTC)
    assert entry_slug(text, created) == f"{created:%Y-%m-%d-%H%M}-{_slug_as_defined(text)}"
    for at in (created, created.replace(microsecond=0)):  # dcterms:created, to the second
        entry = Entry(text, at, ("A",), "", (Place("listing.txt", 1),))
        assert format_created(entry) == at.isoformat(timespec="seconds")


@pytest.mark.parametrize(
    "base", ["ftp://x/", "/relative/", "http://x/?q=1", "http://x/#f", "not an iri"]
)
def test_bad_base_iris_are_refused(base: str) -> None:
    with pytest.raises(BaseIriError):
        normalize_base(base)


def test_base_iri_gets_a_trailing_slash() -> None:
    assert normalize_base("https://example.org/lib") == "https://example.org/lib/"


def test_the_fingerprints_convert_makes_are_the_historys(tmp_path: Path) -> None:
    """convert fingerprints each entry as it renders it; history's definition (sorted
    N-Triples lines of the entry, dcterms:modified left out) must give the same, or a rebuild
    would see entries as changed that are not (and miss some that are)."""
    from graph import history

    # '-' sorts before '>': the lines of concepts health and health-wellbeing sort the other
    # way round from their IRIs. A title that names two publishers (graph/publishers.py).
    odd = tmp_path / "odd.txt"
    odd.write_text(
        "Library – Odd\n\nBoth (NPCC) – ICO\n\nAdded: 01/02/2023 at 9:15 am "
        "Category: Health/Wellbeing, Health, Health Wellbeing Extra\n\nText.\n\nNone\n\n"
        "Added: 02/02/2023 at 9:15 am "
        "Category: Health\n",
        encoding="utf-8",
    )
    sets = [[LISTINGS / "good" / "quirks.txt"], [SEED], sorted(LISTINGS.glob("pages/*.txt")), [odd]]
    for paths in sets:
        pages, entries, _ = read_listings(paths)
        iris = Iris.from_base(BASE)
        some = {iris.entry(e.title, e.created): "2025-01-01T00:00:00Z" for e in entries[::3]}
        for modified in ({}, some):

            def modified_of(iri: str, _: str, modified: dict[str, str] = modified) -> str | None:
                return modified.get(iri)

            converted = convert(entries, iris, library_title(pages), modified_of=modified_of)
            assert dict(converted.modified) == modified
            if paths == [odd]:
                assert list(converted.publishers.values()) == [("npcc", "ico")]
            expected = history.fingerprints_of_ntriples(converted.ntriples, converted.entries)
            assert dict(converted.fingerprints) == expected


def test_two_titles_that_would_share_an_iri_are_refused(tmp_path: Path) -> None:
    """Titles that differ only in case or punctuation, added the same minute, would mint one
    IRI: the build says where both are, instead of publishing one of them."""
    page = tmp_path / "clash.txt"
    page.write_text(
        "Library – Test\n\nAnnual Report\n\nAdded: 01/02/2023 at 9:15 am Category: A\n\nOne.\n\n"
        "Annual report!\n\nAdded: 01/02/2023 at 9:15 am Category: B\n\nTwo.\n",
        encoding="utf-8",
    )
    _, entries, _ = read_listings([page])
    with pytest.raises(ListingError) as caught:
        convert(entries, Iris.from_base(BASE), "Library")
    assert str(caught.value).startswith(f"{page}:9: entry 'Annual report!' and entry ")
    assert f"at {page}:3" in str(caught.value) and "would share the IRI" in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(st.sampled_from('ab "\\é\u00a0'), max_size=12),  # printable: the fast path
        st.text(
            st.one_of(
                st.sampled_from('a "\\\t\n\r\x00\x1f\x7f\x85\u2028\u00a0é'),
                st.characters(codec="utf-8"),
            ),
            max_size=40,
        ),
    )
)
def test_a_literal_is_read_back_as_its_text_and_has_no_raw_control_character(text: str) -> None:
    """Titles and descriptions as N-Triples literals (convert._en): escaped where N-Triples
    needs it, and read back by a parser as the same text."""
    line = f"<http://example.org/s> <http://example.org/p> {_en(text)} .\n"
    assert not any(ch < " " or ch == "\x7f" for ch in line[:-1])
    (quad,) = pyoxigraph.parse(line.encode(), pyoxigraph.RdfFormat.N_TRIPLES)
    assert quad.object == pyoxigraph.Literal(text, language="en")
