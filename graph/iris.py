"""Minting of every IRI kgpub publishes, from one base IRI; nothing else builds IRI strings.

Patterns (all relative to the base, which ends in '/'):
  library                the library (a dcmitype:Collection)
  dataset                the dataset (void:Dataset, dcat:Dataset) describing the publication
  categories             the skos:ConceptScheme
  category/<slug>        a skos:Concept, slug of its label
  entry/<YYYY-MM-DD-HHMM>-<slug>   an entry, its Added time (UK local) then a slug of its title
  changes                the change feed; changes#<n> its n-th activity
  oai                    the OAI-PMH endpoint
  collections/entries    paged collection of all entries (collections/category/<slug>: of one)
  publisher/<id>         a foaf:Organization named in titles, id from data/publishers.csv
  vocabulary             kgpub's own terms described (https://w3id.org/kgpub/ns#)
  entry/<…>#related-<id> the statement that an entry is related to entry <id>, with its score
  years, years/<YYYY>, category/<slug>/<YYYY>
                         people's pages (HTML only): the years, the entries of one year (of one
                         category)
The Added time is part of every entry IRI, so two entries that share a title get distinct IRIs
without depending on which other entries exist.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

MAX_SLUG = 60
# Bytes to themselves when a-z or 0-9, else to a space (slugify).
_SLUG_BYTES = bytes(c if (0x61 <= c <= 0x7A or 0x30 <= c <= 0x39) else 0x20 for c in range(256))
# Folded by hand where NFKD has no ASCII decomposition.
_FOLD = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "þ": "th",
        "&": " and ",
    }
)


class BaseIriError(ValueError):
    """The configured base IRI is not an absolute http(s) IRI."""


def normalize_base(base: str) -> str:
    """Check the base IRI and make it end with '/'."""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise BaseIriError(
            f"base IRI {base!r} must be an absolute http(s) IRI without query or fragment"
        )
    return base if base.endswith("/") else base + "/"


def slugify(text: str) -> str:
    """A readable ASCII slug; long texts are cut at a word and made unique by a short hash.

    The slug is the text folded to ASCII (_FOLD, then NFKD without what is not ASCII), in
    lowercase, each run of characters other than a-z and 0-9 made one '-', none at either end
    (tests/test_convert.py holds that definition as a regular expression)."""
    if text.isascii():  # NFKD leaves ASCII as it is; '&' is the only ASCII that _FOLD maps
        ascii_text = text.replace("&", " and ")
    else:
        folded = unicodedata.normalize("NFKD", text.translate(_FOLD))
        ascii_text = folded.encode("ascii", "ignore").decode("ascii")
    # Every byte other than a-z and 0-9 a space, then the words joined by '-': a fifth of the
    # time of a regular expression's substitution (and of str.translate with a dict).
    slug = "-".join(ascii_text.lower().encode("ascii").translate(_SLUG_BYTES).decode().split())
    if slug and len(slug) <= MAX_SLUG:
        return slug
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    if not slug:
        return digest
    cut = slug[:MAX_SLUG].rsplit("-", 1)[0]
    return f"{cut}-{digest}"


@dataclass(frozen=True)
class Iris:
    """Every IRI of one publication, minted from its base IRI."""

    base: str

    @classmethod
    def from_base(cls, base: str) -> Iris:
        return cls(normalize_base(base))

    @property
    def library(self) -> str:
        return self.base + "library"

    @property
    def dataset(self) -> str:
        return self.base + "dataset"

    @property
    def scheme(self) -> str:
        return self.base + "categories"

    @property
    def void(self) -> str:
        return self.base + ".well-known/void"

    @property
    def sparql(self) -> str:
        return self.base + "sparql"

    @property
    def context(self) -> str:
        return self.base + "context.jsonld"

    def related_link(self, entry: str, target: str) -> str:
        """The statement that an entry is related to another (its score: graph/enrich/
        linkset.py), named in the entry's IRI: <entry>#related-<the target's identifier>."""
        return f"{entry}#related-{target.rsplit('/', 1)[1]}"

    @property
    def vocabulary(self) -> str:
        """The document that describes kgpub's own terms (graph/vocabulary.py)."""
        return self.base + "vocabulary"

    @property
    def changes(self) -> str:
        """The change feed (an ActivityStreams OrderedCollection)."""
        return self.base + "changes"

    def change(self, seq: int) -> str:
        """One activity of the change feed, by its place in the history."""
        return f"{self.base}changes#{seq}"

    @property
    def oai(self) -> str:
        """The OAI-PMH base URL."""
        return self.base + "oai"

    @property
    def entries_collection(self) -> str:
        """The paged collection of all entries (a hydra:Collection)."""
        return self.base + "collections/entries"

    def category_collection(self, notation: str) -> str:
        """The paged collection of the entries of one category, by its notation (slug)."""
        return self.base + "collections/category/" + notation

    @property
    def years(self) -> str:
        """The people's page of the library's years (not an RDF resource)."""
        return self.base + "years"

    def year(self, year: int) -> str:
        """The people's page of one year's entries, newest first."""
        return f"{self.base}years/{year:04d}"

    def category_year(self, notation: str, year: int) -> str:
        """The people's page of one year's entries of one category (by its notation)."""
        return f"{self.base}category/{notation}/{year:04d}"

    @property
    def entry_prefix(self) -> str:
        """How every entry IRI starts: what a range of the index's lists is cut by."""
        return self.base + "entry/"

    def concept(self, label: str) -> str:
        return self.base + "category/" + concept_slug(label)

    def publisher(self, pid: str) -> str:
        """An organisation that publishes entries, by its id in the publishers table (a slug:
        graph/publishers.py checks it)."""
        return self.base + "publisher/" + pid

    def entry(self, title: str, created: datetime) -> str:
        return self.base + "entry/" + entry_slug(title, created)

    def store_graph(self, token: str) -> str:
        """The named graph that holds one release's library in a remote SPARQL store."""
        return f"{self.base}.well-known/graph/{token}"

    def store_void_graph(self, token: str) -> str:
        """The named graph that holds one release's VoID description in a remote store."""
        return f"{self.base}.well-known/graph/{token}/void"

    def dump(self, filename: str) -> str:
        return self.base + "dumps/" + filename

    def local_path(self, iri: str) -> str | None:
        """The path of an IRI under the base ('entry/x'), or None when it is not ours."""
        return iri[len(self.base) :] if iri.startswith(self.base) else None


def concept_slug(label: str) -> str:
    """The slug of a category label, also its skos:notation."""
    return slugify(label)


def entry_slug(title: str, created: datetime) -> str:
    """The stable slug of an entry: its Added time (UK local, to the minute) and title."""
    # The fields formatted one by one: strftime's %Y-%m-%d-%H%M took a third of the time
    # (%Y is not padded below the year 1000 on Linux: neither is the year here).
    when = f"{created.year}-{created.month:02d}-{created.day:02d}"
    return f"{when}-{created.hour:02d}{created.minute:02d}-{slugify(title)}"
