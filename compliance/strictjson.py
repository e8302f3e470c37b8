"""JSON as RFC 8259 defines it, for everything the suite reads: ARM's answers and the local
files it is handed. Python's json also takes NaN, Infinity and -Infinity, and reads 1e999 as
Infinity; what the suite writes or prints from such a value (a PUT body, evidence, a
report) would not be JSON either, so a text holding one is refused.
"""

from __future__ import annotations

import json
from typing import Any


class NotJson(ValueError):
    """The text holds a number JSON does not allow; the message says which."""


def loads(text: str) -> Any:
    """`text` as JSON; NotJson for a non-finite number, ValueError when it is not JSON."""
    return json.loads(text, parse_constant=_not_a_number, parse_float=_finite)


def _not_a_number(constant: str) -> Any:
    raise NotJson(f"holds {constant}, which JSON (RFC 8259) does not allow as a number")


_INFINITY = float("inf")


def _finite(text: str) -> float:
    value = float(text)
    if value in (_INFINITY, -_INFINITY):  # past a double's range: it would read as Infinity
        raise NotJson(
            f"holds {text[:40]}, which JSON (RFC 8259) does not allow as a number that "
            "interoperates: it is beyond a double's range"
        )
    return value
