"""Checks of the values users give (options, ini keys, waivers), shared by the pytest
plugin and the command line: each returns the value as it is used, or raises ValueError
with a message that names the value and what is expected."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from compliance.contacts import address_problem

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def guid(value: str) -> str:
    value = value.strip()
    if not _GUID.match(value):
        raise ValueError(
            f"{value!r} is not an ID (a GUID like 00000000-0000-0000-0000-000000000000)"
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
    if not re.match(r"^https://[^/\s]+", value):
        raise ValueError(
            f"{value!r} is not an https:// URL (bearer tokens are never sent over plain http)"
        )
    return value


def email_address(value: str) -> str:
    value = value.strip()
    problem = address_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a valid email address: {problem}")
    return value
