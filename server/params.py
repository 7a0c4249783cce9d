"""Numbers in query parameters (?page=, ?before=, ?after=): plain ASCII digits within range.

str.isdigit() accepts any Unicode digit ('²', '٣') and int() refuses some of them and numbers
of more than 4,300 digits: both were 500s. Anything but 1-9 ASCII digits is a 400 here.
"""

from __future__ import annotations

import re

from server.errors import HttpError

# No list has a billion pages or a history a billion changes: beyond is a mistake or an attack.
MAX_DIGITS = 9
_NUMBER = re.compile(f"[0-9]{{1,{MAX_DIGITS}}}", re.ASCII)


def whole_number(name: str, raw: str, least: int = 1) -> int:
    """The value of a numeric parameter; HttpError 400 unless plain digits from least."""
    if _NUMBER.fullmatch(raw) is None or int(raw) < least:
        what = "a positive integer" if least == 1 else f"a whole number from {least}"
        raise HttpError(
            400, f"{name} must be {what} of at most {MAX_DIGITS} ASCII digits, not {_shown(raw)}"
        )
    return int(raw)


def _shown(raw: str, width: int = 40) -> str:
    """The value as the message shows it: quoted, escaped, cut short."""
    return repr(raw if len(raw) <= width else raw[:width] + "…")
