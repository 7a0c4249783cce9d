"""The characters XML 1.0 cannot carry (§2.2 Char), found in text and in UTF-8 bytes.

XML 1.0 has no way to write most C0 control characters, U+FFFE, U+FFFF or a lone surrogate,
not even as a character reference (§4.1 WFC: Legal Character). The listing parser refuses
them in the data (graph/listing.py), the server refuses them in request parameters and in
SPARQL results asked for as XML, and the build refuses them in the settings it publishes
(--title, --publisher, --license): every XML body kgpub sends is well-formed.
"""

from __future__ import annotations

import re

from graph.errors import KgpubError

# Tab, line feed and carriage return are the only C0 characters XML 1.0 allows.
_NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# The same in UTF-8 (a surrogate cannot be encoded, so never appears in valid UTF-8).
_NOT_XML_UTF8 = re.compile(b"[\x00-\x08\x0b\x0c\x0e-\x1f]|\xef\xbf[\xbe\xbf]")


def find_non_xml(text: str) -> int:
    """The offset of the first character XML 1.0 cannot carry in text, or -1."""
    found = _NOT_XML_TEXT.search(text)
    return -1 if found is None else found.start()


def find_non_xml_utf8(data: bytes) -> str | None:
    """The first character XML 1.0 cannot carry in UTF-8 bytes, or None."""
    found = _NOT_XML_UTF8.search(data)
    return None if found is None else found.group().decode("utf-8")


def code_point(char: str) -> str:
    """'U+0001' for a character."""
    return f"U+{ord(char):04X}"


def refuse_non_xml(what: str, text: str) -> None:
    """KgpubError if a setting to be published (what: 'library title', 'publisher', ...)
    holds a character XML 1.0 cannot carry: one message for each of them."""
    at = find_non_xml(text)
    if at >= 0:
        raise KgpubError(
            f"the {what} {text!r} holds the character {code_point(text[at])}, which cannot be "
            f"published (XML 1.0 has no way to write it); expected a {what} without control "
            "characters"
        )
