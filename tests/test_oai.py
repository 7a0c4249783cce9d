"""OAI-PMH 2.0 at /oai: a real harvester (sickle) and the XML schema, on the live server."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live import FIXTURES, SEED, Backend, Server, build_publication, free_port
from lxml import etree
from sickle import Sickle
from sickle.oaiexceptions import (
    BadArgument,
    BadResumptionToken,
    CannotDisseminateFormat,
    IdDoesNotExist,
    NoRecordsMatch,
)

OAI = "{http://www.openarchives.org/OAI/2.0/}"
PAGE = 7  # small pages, so 35 records need resumption tokens
SCHEMA = etree.XMLSchema(etree.parse(str(FIXTURES / "oai" / "harvest.xsd")))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Server]:
    """The seed in small pages, its graph in the backend's store."""
    port = free_port()
    out = tmp_path_factory.mktemp(f"oai-{backend.name}") / "publication"
    build_publication([SEED], out, f"http://127.0.0.1:{port}/", backend)
    settings = {"page_size": PAGE, "admin_email": "library@example.org", **backend.serve()}
    with Server(out, port, **settings) as live:
        yield live
    backend.drop_graphs(out)


def get(
    server: Server, query: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(server.base + "oai?" + query, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def valid(body: bytes) -> etree._Element:
    """Parse and validate a response against OAI-PMH.xsd + oai_dc.xsd; fail with the errors."""
    doc = etree.fromstring(body)
    if not SCHEMA.validate(doc):
        raise AssertionError(f"invalid OAI-PMH response: {SCHEMA.error_log}\n{body[:2000]!r}")
    return doc


def test_the_schema_rejects_an_invalid_response() -> None:
    bad = (
        b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2026-01-01'
        b"</responseDate><request>http://x/oai</request><ListSets/></OAI-PMH>"
    )
    assert not SCHEMA.validate(etree.fromstring(bad))


def test_identify(server: Server) -> None:
    status, body, headers = get(server, "verb=Identify")
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    doc = valid(body)
    ident = doc.find(f"{OAI}Identify")
    assert ident is not None
    assert ident.findtext(f"{OAI}baseURL") == server.base + "oai"
    assert ident.findtext(f"{OAI}granularity") == "YYYY-MM-DDThh:mm:ssZ"
    assert ident.findtext(f"{OAI}deletedRecord") == "persistent"
    assert ident.findtext(f"{OAI}adminEmail") == "library@example.org"
    identify = Sickle(server.base + "oai").Identify()
    assert identify.repositoryName == "Library"
    assert identify.protocolVersion == "2.0"


def test_list_records_with_resumption_tokens(server: Server) -> None:
    records = list(
        Sickle(server.base + "oai").ListRecords(metadataPrefix="oai_dc", ignore_deleted=False)
    )
    ids = [r.header.identifier for r in records]
    assert len(ids) == 35 == len(set(ids))
    assert ids == sorted(ids)
    assert all(i.startswith(server.base + "entry/") for i in ids)
    first = records[0]
    assert first.metadata["identifier"] == [first.header.identifier]
    assert first.metadata["type"] == ["Text"]
    assert first.metadata["title"] and first.metadata["date"]
    assert first.header.setSpecs


def test_every_page_validates_and_counts(server: Server) -> None:
    query = "verb=ListRecords&metadataPrefix=oai_dc"
    seen, cursors = 0, []
    while True:
        status, body, _ = get(server, query)
        assert status == 200
        doc = valid(body)
        listing = doc.find(f"{OAI}ListRecords")
        assert listing is not None
        seen += len(listing.findall(f"{OAI}record"))
        token = listing.find(f"{OAI}resumptionToken")
        assert token is not None
        assert token.get("completeListSize") == "35"
        cursors.append(int(token.get("cursor", "-1")))
        if not token.text:
            break
        query = "verb=ListRecords&resumptionToken=" + urllib.parse.quote(token.text)
    assert seen == 35
    assert cursors == list(range(0, 35, PAGE))


def test_list_identifiers_and_sets(server: Server) -> None:
    sickle = Sickle(server.base + "oai")
    sets = {s.setSpec: s.setName for s in sickle.ListSets()}
    assert len(sets) == 9
    assert sets["crime-asb"] == "Crime/ASB"
    in_set = [
        h.identifier for h in sickle.ListIdentifiers(metadataPrefix="oai_dc", set="crime-asb")
    ]
    everything = list(sickle.ListIdentifiers(metadataPrefix="oai_dc"))
    expected = [h.identifier for h in everything if "crime-asb" in h.setSpecs]
    assert in_set == expected and 0 < len(in_set) < 35
    valid(get(server, "verb=ListSets")[1])
    body = get(server, "verb=ListIdentifiers&metadataPrefix=oai_dc&set=drugs")[1]
    valid(body)


def test_get_record_and_metadata_formats(server: Server) -> None:
    sickle = Sickle(server.base + "oai")
    some = next(iter(sickle.ListIdentifiers(metadataPrefix="oai_dc"))).identifier
    record = sickle.GetRecord(identifier=some, metadataPrefix="oai_dc")
    assert record.header.identifier == some
    formats = [f.metadataPrefix for f in sickle.ListMetadataFormats(identifier=some)]
    assert formats == ["oai_dc"]
    for query in (
        f"verb=GetRecord&metadataPrefix=oai_dc&identifier={urllib.parse.quote(some)}",
        "verb=ListMetadataFormats",
    ):
        valid(get(server, query)[1])


def test_selective_harvesting_by_datestamp(server: Server) -> None:
    sickle = Sickle(server.base + "oai")
    datestamp = next(iter(sickle.ListIdentifiers(metadataPrefix="oai_dc"))).datestamp
    day = datestamp[:10]
    same = list(
        sickle.ListIdentifiers(metadataPrefix="oai_dc", **{"from": datestamp, "until": datestamp})
    )
    assert len(same) == 35
    by_day = list(sickle.ListIdentifiers(metadataPrefix="oai_dc", **{"from": day, "until": day}))
    assert len(by_day) == 35
    with pytest.raises(NoRecordsMatch):
        list(sickle.ListIdentifiers(metadataPrefix="oai_dc", **{"from": "2999-01-01T00:00:00Z"}))
    with pytest.raises(NoRecordsMatch):
        list(sickle.ListIdentifiers(metadataPrefix="oai_dc", until="2000-01-01"))


def test_post_is_the_same_protocol(server: Server) -> None:
    data = urllib.parse.urlencode({"verb": "ListSets"}).encode()
    req = urllib.request.Request(server.base + "oai", data=data, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        doc = valid(r.read())
    assert len(doc.findall(f"{OAI}ListSets/{OAI}set")) == 9
    assert len(list(Sickle(server.base + "oai", http_method="POST").ListSets())) == 9


ERRORS = [
    ("", "badVerb"),
    ("verb=Explode", "badVerb"),
    ("verb=Identify&verb=ListSets", "badVerb"),
    ("verb=Identify&extra=1", "badArgument"),
    ("verb=ListRecords", "badArgument"),
    ("verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=oai_dc", "badArgument"),
    ("verb=GetRecord&metadataPrefix=oai_dc", "badArgument"),
    (
        "verb=ListIdentifiers&metadataPrefix=oai_dc&from=2020-01-01&until=2020-01-02T00:00:00Z",
        "badArgument",
    ),
    ("verb=ListIdentifiers&metadataPrefix=oai_dc&from=2021-01-01&until=2020-01-01", "badArgument"),
    ("verb=ListIdentifiers&metadataPrefix=oai_dc&from=2020-02-31", "badArgument"),
    ("verb=ListIdentifiers&metadataPrefix=oai_dc&from=2020-01-01T00:00:00", "badArgument"),
    ("verb=ListRecords&metadataPrefix=oai_dc&resumptionToken=x", "badArgument"),
    ("verb=ListRecords&metadataPrefix=marc21", "cannotDisseminateFormat"),
    ("verb=GetRecord&metadataPrefix=oai_dc&identifier=http%3A%2F%2Fnowhere%2Fx", "idDoesNotExist"),
    ("verb=ListMetadataFormats&identifier=urn%3Anothing", "idDoesNotExist"),
    ("verb=ListRecords&metadataPrefix=oai_dc&set=no-such-set", "noRecordsMatch"),
    ("verb=ListRecords&resumptionToken=not-a-token", "badResumptionToken"),
    ("verb=ListSets&resumptionToken=abc", "badResumptionToken"),
]


@pytest.mark.parametrize(("query", "code"), ERRORS, ids=[f"{c}:{q}" for q, c in ERRORS])
def test_protocol_errors(server: Server, query: str, code: str) -> None:
    status, body, _ = get(server, query)
    assert status == 200  # §3.6: errors are OAI-PMH responses, not HTTP errors
    doc = valid(body)
    assert [e.get("code") for e in doc.findall(f"{OAI}error")] == [code]
    request = doc.find(f"{OAI}request")
    assert request is not None
    if code in ("badVerb", "badArgument"):
        assert dict(request.attrib) == {}  # §3.2: no attributes echoed for a bad request


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.ListRecords(metadataPrefix="nope"), CannotDisseminateFormat),
        (lambda s: s.GetRecord(identifier="urn:x", metadataPrefix="oai_dc"), IdDoesNotExist),
        (lambda s: s.ListRecords(resumptionToken="zz"), BadResumptionToken),
        (lambda s: s.ListRecords(metadataPrefix="oai_dc", **{"from": "yesterday"}), BadArgument),
    ],
    ids=["cannotDisseminateFormat", "idDoesNotExist", "badResumptionToken", "badArgument"],
)
def test_the_harvester_sees_the_errors(
    server: Server, call: Callable[[Sickle], Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        result = call(Sickle(server.base + "oai"))
        if hasattr(result, "__next__"):
            list(result)


def test_conditional_requests_get_304(server: Server) -> None:
    query = "verb=ListRecords&metadataPrefix=oai_dc"
    status, _, headers = get(server, query)
    assert status == 200
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert etag.startswith('W/"')
    assert get(server, query, {"If-None-Match": etag})[0] == 304
    assert get(server, query, {"If-Modified-Since": modified})[0] == 304
    assert get(server, query, {"If-None-Match": 'W/"other"'})[0] == 200
    assert get(server, "verb=ListSets", {"If-None-Match": etag})[0] == 200  # per request
    assert get(server, query, {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200


def test_the_schema_copies_are_the_published_ones() -> None:
    folder = FIXTURES / "oai"
    text = (folder / "OAI-PMH.xsd").read_text(encoding="utf-8")
    assert "Spelling correction. Simeon Warner, 2008-12-07." in text
    assert 'targetNamespace="http://www.openarchives.org/OAI/2.0/"' in text
    assert {p.name for p in Path(folder).glob("*.xsd")} == {
        "OAI-PMH.xsd",
        "oai_dc.xsd",
        "simpledc20021212.xsd",
        "xml.xsd",
        "harvest.xsd",
    }


def test_gzip_when_the_harvester_asks(server: Server) -> None:
    import gzip

    query = "verb=ListRecords&metadataPrefix=oai_dc"
    status, plain, headers = get(server, query)
    assert "Content-Encoding" not in headers
    status, packed, headers = get(server, query, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in headers["Vary"]
    unpacked = gzip.decompress(packed)
    strip = etree.fromstring  # the responseDate may differ by a second: compare the records
    assert etree.tostring(strip(unpacked).find(f"{OAI}ListRecords")) == etree.tostring(
        strip(plain).find(f"{OAI}ListRecords")
    )
    ident = valid(get(server, "verb=Identify")[1]).find(f"{OAI}Identify")
    assert ident is not None and ident.findtext(f"{OAI}compression") == "gzip"
