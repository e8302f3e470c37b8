"""Checks of the values users give (options, ini keys, waivers), shared by the pytest
plugin and the command line: each returns the value as it is used, or raises ValueError
with a message that names the value and what is expected."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from compliance.contacts import address_problem

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def guid(value: str) -> str:
    value = value.strip()
    if not _GUID.match(value):
        raise ValueError(
            f"{value!r} is not an ID (a GUID like 00000000-0000-0000-0000-000000000000)"
        )
    return value


# ARM's rule for a management group's ID (its name): letters, digits, - _ ( ) . up to 90.
_GROUP_ID = re.compile(r"^[A-Za-z0-9_().-]{1,90}$")


def management_group(value: str) -> str:
    value = value.strip()
    if not _GROUP_ID.match(value):
        raise ValueError(
            f"{value!r} is not a management group ID (letters, digits, - _ ( ) . up to 90 "
            "characters: the group's ID, not its display name)"
        )
    return value


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    """A check that accepts any of `choices` in any letter case and returns its spelling."""

    def check(value: str) -> str:
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise ValueError(f"{value!r} is not one of {', '.join(choices)}")

    return check


def https_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.scheme == "https" and bool(parts.hostname) and (parts.port or 443) > 0
    except ValueError:  # e.g. an unclosed [ or a port that is not a number
        valid = False
    if not valid or any(c.isspace() for c in value):
        raise ValueError(
            f"{value!r} is not an https:// URL with a host "
            "(bearer tokens are never sent over plain http)"
        )
    return value


def whole_number(low: int, high: int) -> Callable[[str], str]:
    """A check that accepts a whole number from `low` to `high`."""

    def check(value: str) -> str:
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
            raise ValueError(f"{value!r} is not a number from {low} to {high}")
        return value

    return check


concurrency = whole_number(1, 256)


def seconds(low: float, high: float) -> Callable[[str], str]:
    """A check that accepts a number of seconds from `low` to `high`."""

    def check(value: str) -> str:
        value = value.strip()
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not low <= number <= high:  # NaN fails too
            raise ValueError(f"{value!r} is not a number of seconds from {low:g} to {high:g}")
        return value

    return check


MAX_SHARDS = 1000
_SHARD = re.compile(r"([0-9]{1,4})/([0-9]{1,4})")


def shard(value: str) -> str:
    """`K/N`: shard K of N, 1 <= K <= N <= MAX_SHARDS."""
    value = value.strip()
    match = _SHARD.fullmatch(value)
    if match is None or not 1 <= int(match[1]) <= int(match[2]) <= MAX_SHARDS:
        raise ValueError(
            f"{value!r} is not K/N, shard K of N with 1 <= K <= N <= {MAX_SHARDS} (e.g. 2/4)"
        )
    return f"{int(match[1])}/{int(match[2])}"


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def domain(value: str) -> str:
    """A mail domain, lower case, without a leading @."""
    name = value.strip().lower().removeprefix("@")
    if not _DOMAIN.match(name):
        raise ValueError(f"{value!r} is not a domain")
    return name


def email_address(value: str) -> str:
    value = value.strip()
    problem = address_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a valid email address: {problem}")
    return value
