"""Reading the local files an audited organisation hands an auditor (waivers, baselines,
findings, evidence bundles, backups): for the auditor they are untrusted, so each is read
within limits of size, values and nesting, checked before the parser could recurse or
allocate past them, and a file past one is a LimitError naming the file and the limit.

Why these checks, in this order: Python's JSON and TOML parsers recurse once per nesting
level (5,000 levels is a RecursionError, not a parse error), and a parsed value costs up to
~70 bytes however short its text (`[],` is 3 bytes: 50 MB of them took 1.4 GiB). So the size
is checked with stat and at most limit+1 bytes are read; then one linear scan outside
strings counts the values (every value but a container's first follows a `,`, `:` or `=`)
and measures the nesting, both before the parser runs. Counts of entries (waivers,
findings, subscriptions) are the callers' to check, right after parsing.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compliance import strictjson


class LimitError(ValueError):
    """A file past one of the limits; the message names the file, the limit and what it holds."""


@dataclass(frozen=True)
class Limits:
    what: str  # what such a file is, for messages: "a findings file"
    bytes: int
    values: int
    depth: int = 64  # the suite's own files nest 7 deep at most (findings); 64 leaves room


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
# TOML's strings (multi-line ones first) and comments: what may hold a bracket or a comma
# that is not one.
_TOML_SKIPPED = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|\'[^\'\n]*\'|#[^\n]*',
    re.DOTALL,
)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def read_text(path: str | Path, limits: Limits) -> str:
    """The UTF-8 text of `path`; LimitError past limits.bytes, OSError or UnicodeDecodeError
    when it cannot be read."""
    with Path(path).open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > limits.bytes:
            raise _too_many(path, f"{size:,} bytes", limits.bytes, "bytes", limits)
        # A file that grows after the stat (or a pipe, whose stat says 0) is read only so far.
        data = file.read(limits.bytes + 1)
    if len(data) > limits.bytes:
        raise _too_many(path, "grew while it was read", limits.bytes, "bytes", limits)
    text = data.decode("utf-8")
    del data
    # One character past U+FFFF makes Python store every character of the text in 4 bytes
    # (and the strings parsed from it): the limit is on what the text costs, not its bytes.
    if sys.getsizeof(text) > limits.bytes + 100:
        raise LimitError(
            f"{path}: {sys.getsizeof(text):,} bytes as text, more than the {limits.bytes:,} "
            f"this suite reads in {limits.what} (a character past U+FFFF, an emoji say, makes "
            "every character take 4; this suite's own files write them as \\u escapes)"
        )
    return text


def loads_json(text: str, source: str, limits: Limits) -> Any:
    """`text` parsed as JSON (RFC 8259: no NaN, no Infinity) once its values and nesting are
    within `limits`; LimitError past them, ValueError when it is not JSON."""
    _check_structure(_JSON_STRING.sub("", text), source, limits)
    return strictjson.loads(text)


def loads_toml(text: str, source: str, limits: Limits) -> dict[str, Any]:
    """`text` parsed as TOML once its values and nesting are within `limits`; LimitError
    past them, tomllib.TOMLDecodeError when it is not TOML."""
    _check_structure(_TOML_SKIPPED.sub("", text), source, limits)
    try:
        data = tomllib.loads(text)
    except RecursionError:  # should the scan ever misread a string: the same answer
        raise _too_deep(source, None, limits) from None
    # Dotted keys (a.b.c = 1) nest without a bracket; the parser does not recurse on them,
    # but whatever prints the value would.
    _check_parsed_depth(data, source, limits)
    return data


def read_json(path: str | Path, limits: Limits) -> Any:
    return loads_json(read_text(path, limits), str(path), limits)


def shown(value: object, width: int = 200) -> str:
    """`value` as a message shows it: a file's value may be megabytes long."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}... ({len(text):,} characters)"


def check_count(source: str, count: int, what: str, limit: int) -> None:
    """LimitError when a file holds more than `limit` `what` (say, "subscriptions")."""
    if count > limit:
        raise LimitError(
            f"{source}: {count:,} {what}, more than the {limit:,} this suite reads in one file"
        )


def _check_structure(skeleton: str, source: str, limits: Limits) -> None:
    """Counts the values and measures the nesting of `skeleton` (the text without its
    strings and comments), in time linear in its length."""
    opening = skeleton.count("[") + skeleton.count("{")
    values = opening + skeleton.count(",") + skeleton.count(":") + skeleton.count("=")
    if values > limits.values:
        raise _too_many(source, f"{values:,} values", limits.values, "values", limits)
    depth = deepest = 0
    # At most 2 x limits.values brackets get here: the loop is bounded by the count above.
    for bracket in _NOT_BRACKET.sub("", skeleton):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
            if depth < 0:  # the parser stops here: not JSON, it will say so
                break
    if deepest > limits.depth:
        raise _too_deep(source, deepest, limits)


def _check_parsed_depth(value: Any, source: str, limits: Limits) -> None:
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:  # level by level, not recursively: the point is not to recurse
        depth += 1
        if depth > limits.depth:
            raise _too_deep(source, None, limits)
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]


def _too_deep(source: str, depth: int | None, limits: Limits) -> LimitError:
    nested = f"nested {depth:,} deep" if depth is not None else "nested too deep"
    return LimitError(
        f"{source}: {nested}, more than the {limits.depth} levels this suite reads in {limits.what}"
    )


def _too_many(source: str | Path, held: str, limit: int, unit: str, limits: Limits) -> LimitError:
    return LimitError(
        f"{source}: {held}, more than the {limit:,} {unit} this suite reads in {limits.what}"
    )
