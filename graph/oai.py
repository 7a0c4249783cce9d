"""OAI-PMH 2.0 over a publication's history: requests in, schema-valid XML responses out.

Protocol: https://www.openarchives.org/OAI/openarchivesprotocol.html (section numbers below).
Items are the entries; their unique identifiers are the entries' IRIs (§2.4 allows any URI);
one metadata format, oai_dc (§5); sets are the categories, setSpec = the concept's notation
(§2.6); the datestamp of a record is when the build that last changed the entry (creation,
update, deletion or return) went live, to the second (§3.3; graph/history.py); deleted
entries stay in the history for ever (deletedRecord "persistent", §2.5.1). Lists are ordered
by identifier and resumed after the last identifier sent (the token carries it and the
request's arguments), so a token stays valid across rebuilds and a list resumed after one
skips nothing that was there throughout (§3.5.1).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from graph.history import EntryState, View, format_time

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
OAI_DC_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
DC_NS = "http://purl.org/dc/elements/1.1/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
OAI_DC = "oai_dc"
MEDIA_TYPE = "text/xml"
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"

XML_NS = "http://www.w3.org/XML/1998/namespace"
# Prefixes written: the OAI-PMH namespace is the default one (as in every example of the spec).
_PREFIXES = {OAI_NS: "", OAI_DC_NS: "oai_dc", DC_NS: "dc", XSI_NS: "xsi", XML_NS: "xml"}

# verb -> (required, optional, exclusive) arguments (§4).
VERBS: dict[str, tuple[frozenset[str], frozenset[str], str | None]] = {
    "GetRecord": (frozenset({"identifier", "metadataPrefix"}), frozenset(), None),
    "Identify": (frozenset(), frozenset(), None),
    "ListIdentifiers": (
        frozenset({"metadataPrefix"}),
        frozenset({"from", "until", "set"}),
        "resumptionToken",
    ),
    "ListMetadataFormats": (frozenset(), frozenset({"identifier"}), None),
    "ListRecords": (
        frozenset({"metadataPrefix"}),
        frozenset({"from", "until", "set"}),
        "resumptionToken",
    ),
    "ListSets": (frozenset(), frozenset(), "resumptionToken"),
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# XML 1.0 forbids most C0 controls; listings come from web pages and may carry them.
# Types of the <request> attributes in OAI-PMH.xsd (metadataPrefixType, setSpecType).
_ECHO_PATTERNS = {
    "metadataPrefix": re.compile(r"[A-Za-z0-9\-_\.!~\*'\(\)]+"),
    "set": re.compile(r"([A-Za-z0-9\-_\.!~\*'\(\)])+(:[A-Za-z0-9\-_\.!~\*'\(\)]+)*"),
    "identifier": re.compile(r"\S+"),
}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Metadata:
    """What an oai_dc record says of a published entry beyond the history's own fields."""

    description: str
    created: str


@dataclass(frozen=True)
class Repository:
    """One OAI-PMH repository: a release's history and how to describe its entries."""

    name: str
    base_url: str
    admin_email: str
    index: View
    metadata: Callable[[str], Metadata]  # entry IRI -> its description and created
    page_size: int = 100
    library: str = ""  # the library's IRI (dc:relation of every record)


class _OaiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Selection:
    prefix: str
    start: str  # datestamp bounds, inclusive, in the seconds form ('' when open)
    end: str
    set_spec: str
    after: str  # last identifier already sent
    cursor: int  # records already sent
    args: Mapping[str, str]  # the original arguments, echoed in <request>


def respond(params: Mapping[str, Sequence[str]], repo: Repository, now: datetime) -> bytes:
    """The XML response to one OAI-PMH request (GET query or POST form arguments)."""
    request = ET.Element(f"{{{OAI_NS}}}request")
    request.text = repo.base_url
    root = ET.Element(f"{{{OAI_NS}}}OAI-PMH")
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_NS} {OAI_SCHEMA}")
    ET.SubElement(root, f"{{{OAI_NS}}}responseDate").text = format_time(now)
    root.append(request)
    try:
        verb, args = _check(params)
        for name, value in args.items():  # §3.2: echo the arguments of a valid request
            request.set(name, value)
        request.set("verb", verb)
        root.append(_VERB_HANDLERS[verb](args, repo))
    except _OaiError as exc:
        if exc.code in ("badVerb", "badArgument"):
            request.attrib.clear()  # §3.2: no attributes when the request itself is wrong
        else:
            for name, pattern in _ECHO_PATTERNS.items():
                if name in request.attrib and not pattern.fullmatch(request.attrib[name]):
                    del request.attrib[name]  # echo only what the schema's types allow
        error = ET.SubElement(root, f"{{{OAI_NS}}}error", code=exc.code)
        error.text = exc.message
    return serialize(root)


def serialize(root: ET.Element) -> bytes:
    """UTF-8 XML of a response tree, OAI-PMH as the default namespace, oai_dc declared on dc."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _write(root, out, is_root=True)
    out.append("\n")
    return "".join(out).encode("utf-8")


def _qname(tag: str) -> str:
    if not tag.startswith("{"):
        return tag
    ns, local = tag[1:].split("}", 1)
    prefix = _PREFIXES[ns]
    return f"{prefix}:{local}" if prefix else local


def _write(element: ET.Element, out: list[str], is_root: bool = False) -> None:
    name = _qname(str(element.tag))
    out.append("<" + name)
    if is_root:
        out.append(f' xmlns="{OAI_NS}" xmlns:xsi="{XSI_NS}"')
    if element.tag == f"{{{OAI_DC_NS}}}dc":
        out.append(f' xmlns:oai_dc="{OAI_DC_NS}" xmlns:dc="{DC_NS}"')
    for key, value in element.attrib.items():
        out.append(f" {_qname(key)}={quoteattr(value)}")
    if not len(element) and not element.text:
        out.append("/>")
        return
    out.append(">")
    if element.text:
        out.append(escape(element.text))
    for child in element:
        _write(child, out)
    out.append(f"</{name}>")


def _check(params: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, str]]:
    verbs = params.get("verb", [])
    if len(verbs) != 1 or verbs[0] not in VERBS:
        what = "no verb" if not verbs else "repeated verb" if len(verbs) > 1 else "unknown verb"
        raise _OaiError("badVerb", f"{what}; expected one of {', '.join(sorted(VERBS))}")
    verb = verbs[0]
    required, optional, exclusive = VERBS[verb]
    args: dict[str, str] = {}
    for name, values in params.items():
        if name == "verb":
            continue
        if name not in required | optional and name != exclusive:
            raise _OaiError("badArgument", f"{verb} does not take the argument {name!r}")
        if len(values) != 1:
            raise _OaiError("badArgument", f"argument {name!r} given more than once")
        args[name] = values[0]
    if exclusive and exclusive in args:
        if len(args) > 1:
            raise _OaiError("badArgument", f"{exclusive} must be the only argument besides verb")
        return verb, args
    missing = sorted(required - set(args))
    if missing:
        raise _OaiError("badArgument", f"{verb} needs the argument(s) {', '.join(missing)}")
    return verb, args


def _el(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, f"{{{OAI_NS}}}{name}", attrs)
    if text is not None:
        child.text = _NOT_XML.sub("", text)
    return child


def _identify(args: Mapping[str, str], repo: Repository) -> ET.Element:
    out = ET.Element(f"{{{OAI_NS}}}Identify")
    _el(out, "repositoryName", repo.name)
    _el(out, "baseURL", repo.base_url)
    _el(out, "protocolVersion", "2.0")
    _el(out, "adminEmail", repo.admin_email)
    _el(out, "earliestDatestamp", repo.index.earliest or format_time(datetime.now(UTC)))
    _el(out, "deletedRecord", "persistent")
    _el(out, "granularity", GRANULARITY)
    _el(out, "compression", "gzip")  # §3.1.3: with Accept-Encoding: gzip
    return out


def _list_metadata_formats(args: Mapping[str, str], repo: Repository) -> ET.Element:
    if "identifier" in args:
        _state(args["identifier"], repo)
    out = ET.Element(f"{{{OAI_NS}}}ListMetadataFormats")
    fmt = _el(out, "metadataFormat")
    _el(fmt, "metadataPrefix", OAI_DC)
    _el(fmt, "schema", OAI_DC_SCHEMA)
    _el(fmt, "metadataNamespace", OAI_DC_NS)
    return out


def _list_sets(args: Mapping[str, str], repo: Repository) -> ET.Element:
    if "resumptionToken" in args:
        raise _OaiError("badResumptionToken", "this repository never issues tokens for ListSets")
    out = ET.Element(f"{{{OAI_NS}}}ListSets")
    for category in sorted(repo.index.categories.values(), key=lambda c: c.notation):
        s = _el(out, "set")
        _el(s, "setSpec", category.notation)
        _el(s, "setName", category.label)
    if not len(out):
        raise _OaiError("noSetHierarchy", "this repository has no categories yet")
    return out


def _get_record(args: Mapping[str, str], repo: Repository) -> ET.Element:
    identifier = args["identifier"]
    state = _state(identifier, repo)
    _check_prefix(args["metadataPrefix"])
    out = ET.Element(f"{{{OAI_NS}}}GetRecord")
    out.append(_record(identifier, state, repo))
    return out


def _list_identifiers(args: Mapping[str, str], repo: Repository) -> ET.Element:
    return _list(args, repo, "ListIdentifiers", records=False)


def _list_records(args: Mapping[str, str], repo: Repository) -> ET.Element:
    return _list(args, repo, "ListRecords", records=True)


def _list(args: Mapping[str, str], repo: Repository, verb: str, records: bool) -> ET.Element:
    selection = _selection(args, repo)
    concept = None
    if selection.set_spec:
        concept = repo.index.concept_of_set(selection.set_spec)
        if concept is None:
            raise _OaiError("noRecordsMatch", "no record matches these arguments")
    # One page of the selection, read as it is sent (graph/ledger.py): the records after the
    # last identifier sent, how many the whole list has and how many came before.
    found = repo.index.select(
        selection.start, selection.end, concept, selection.after, repo.page_size
    )
    if not found.records:
        raise _OaiError("noRecordsMatch", "no record matches these arguments")
    out = ET.Element(f"{{{OAI_NS}}}{verb}")
    for iri, state in found.records:
        if records:
            out.append(_record(iri, state, repo))
        else:
            out.append(_header(iri, state, repo))
    last = found.records[-1][0]
    sent_before = found.before
    if selection.cursor or found.more:
        token = ET.SubElement(
            out,
            f"{{{OAI_NS}}}resumptionToken",
            completeListSize=str(found.complete),
            cursor=str(sent_before),
        )
        if found.more:
            token.text = _encode_token(selection, last, sent_before + len(found.records))
    return out


def _selection(args: Mapping[str, str], repo: Repository) -> _Selection:
    if "resumptionToken" in args:
        return _decode_token(args["resumptionToken"])
    prefix = args["metadataPrefix"]
    _check_prefix(prefix)
    start = _bound(args.get("from", ""), "from")
    end = _bound(args.get("until", ""), "until")
    if start and end:
        if bool(_DAY.match(args["from"])) != bool(_DAY.match(args["until"])):
            raise _OaiError("badArgument", "from and until must have the same granularity")
        if start > end:
            raise _OaiError("badArgument", "from is later than until")
    set_spec = args.get("set", "")
    return _Selection(prefix, start, end, set_spec, "", 0, args)


def _bound(value: str, name: str) -> str:
    """A from/until argument as a datestamp bound in the seconds form (§3.3.1)."""
    if not value:
        return ""
    if _SECOND.match(value):
        try:
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise _OaiError("badArgument", f"{name}={value!r} is not a real time") from None
        return value
    if _DAY.match(value):
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise _OaiError("badArgument", f"{name}={value!r} is not a real date") from None
        return value + ("T00:00:00Z" if name == "from" else "T23:59:59Z")
    raise _OaiError("badArgument", f"{name}={value!r}: expected YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ")


def _check_prefix(prefix: str) -> None:
    if prefix != OAI_DC:
        raise _OaiError("cannotDisseminateFormat", f"metadataPrefix {prefix!r}: only oai_dc")


def _state(identifier: str, repo: Repository) -> EntryState:
    state = repo.index.entry(identifier)
    if state is None:
        raise _OaiError("idDoesNotExist", f"no item {identifier!r} in this repository")
    return state


def _encode_token(selection: _Selection, after: str, cursor: int) -> str:
    data = [1, selection.prefix, selection.start, selection.end, selection.set_spec, after, cursor]
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_token(token: str) -> _Selection:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw.decode("utf-8"))
        version, prefix, start, end, set_spec, after, cursor = data
        if version != 1 or prefix != OAI_DC or not isinstance(cursor, int) or cursor < 1:
            raise ValueError("unknown token")
        if not all(isinstance(x, str) for x in (start, end, set_spec, after)) or not after:
            raise ValueError("unknown token")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _OaiError("badResumptionToken", "this resumptionToken was not issued here") from None
    return _Selection(prefix, start, end, set_spec, after, cursor, {})


def _header(iri: str, state: EntryState, repo: Repository) -> ET.Element:
    attrs = {"status": "deleted"} if state.deleted is not None else {}
    header = ET.Element(f"{{{OAI_NS}}}header", attrs)
    _el(header, "identifier", iri)
    _el(header, "datestamp", repo.index.datestamp(state))
    for concept in state.categories:
        category = repo.index.categories.get(concept)
        if category is not None:
            _el(header, "setSpec", category.notation)
    return header


def _record(iri: str, state: EntryState, repo: Repository) -> ET.Element:
    record = ET.Element(f"{{{OAI_NS}}}record")
    record.append(_header(iri, state, repo))
    if state.deleted is not None:
        return record  # §2.5.1: a deleted record has a header and no metadata
    meta = _el(record, "metadata")
    dc = ET.SubElement(meta, f"{{{OAI_DC_NS}}}dc")
    dc.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_DC_NS} {OAI_DC_SCHEMA}")
    extra = repo.metadata(iri)

    def add(name: str, text: str, lang: bool = False) -> None:
        element = ET.SubElement(dc, f"{{{DC_NS}}}{name}")
        element.text = _NOT_XML.sub("", text)
        if lang:
            element.set(XML_LANG, "en")

    add("title", state.title, lang=True)
    for concept in state.categories:
        category = repo.index.categories.get(concept)
        if category is not None:
            add("subject", category.label, lang=True)
    if extra.description:
        add("description", extra.description, lang=True)
    add("date", extra.created or state.created)
    add("type", "Text")
    add("identifier", iri)
    add("language", "en")
    if repo.library:
        add("relation", repo.library)
    return record


_VERB_HANDLERS: dict[str, Callable[[Mapping[str, str], Repository], ET.Element]] = {
    "GetRecord": _get_record,
    "Identify": _identify,
    "ListIdentifiers": _list_identifiers,
    "ListMetadataFormats": _list_metadata_formats,
    "ListRecords": _list_records,
    "ListSets": _list_sets,
}
