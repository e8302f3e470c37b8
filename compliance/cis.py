"""CIS Microsoft Azure Foundations numbering: in each benchmark version, the recommendation
number of each control, as one table keyed by version, then control key.

Benchmarks renumber their recommendations from one version to the next, so the numbers are
data, not code: numbering a new version is one entry in NUMBERING. Everything else follows
from the table: the versions `--cis-version` takes, its default (the newest), the case ids,
the findings' `control.cis`. The README's table in "The controls" shows the same numbers
(testing/test_cis.py reads it and compares).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from compliance import values

# A version lists only the controls it has: attack path notifications came with 4.0.0.
NUMBERING: dict[str, dict[str, str]] = {
    "1.1.0": {"contact_email": "2.16", "alert_severity": "2.18", "owner_notifications": "2.19"},
    "1.3.0": {"contact_email": "2.13", "alert_severity": "2.14", "owner_notifications": "2.15"},
    "1.4.0": {"contact_email": "2.13", "alert_severity": "2.14", "owner_notifications": "2.15"},
    "1.5.0": {"contact_email": "2.3.2", "alert_severity": "2.3.3", "owner_notifications": "2.3.1"},
    "2.0.0": {
        "contact_email": "2.1.19",
        "alert_severity": "2.1.20",
        "owner_notifications": "2.1.18",
    },
    "2.1.0": {
        "contact_email": "2.1.18",
        "alert_severity": "2.1.19",
        "owner_notifications": "2.1.17",
    },
    "3.0.0": {
        "contact_email": "3.1.13",
        "alert_severity": "3.1.14",
        "owner_notifications": "3.1.12",
    },
    "4.0.0": {
        "contact_email": "9.1.13",
        "alert_severity": "9.1.14",
        "owner_notifications": "9.1.12",
        "attack_path_notifications": "9.1.15",
    },
    "5.0.0": {
        "contact_email": "8.1.13",
        "alert_severity": "8.1.14",
        "owner_notifications": "8.1.12",
        "attack_path_notifications": "8.1.15",
    },
}

_VERSION = re.compile(r"\d+\.\d+\.\d+")
_NUMBER = re.compile(r"\d+(\.\d+)+")


def _release_order(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


# The functions below read NUMBERING when called, not when imported, so that a version added
# to it (by a test, in-process) shows everywhere at once.


def versions() -> tuple[str, ...]:
    """Every version the table numbers, oldest first (by release, whatever the table's order)."""
    return tuple(sorted(NUMBERING, key=_release_order))


def newest() -> str:
    """The default version: the newest the table numbers."""
    return versions()[-1]


def number(version: str, control: str) -> str | None:
    """`control`'s recommendation number in CIS `version`; None where that version lacks the
    control, or the table lacks the version (a findings file written by another release of
    this suite can name one)."""
    return NUMBERING.get(version, {}).get(control)


def numbers(control: str) -> dict[str, str]:
    """`control`'s number in each version that has it, oldest version first."""
    return {v: NUMBERING[v][control] for v in versions() if control in NUMBERING[v]}


def known_version(value: str) -> str:
    """`--cis-version`'s check: a version of the table, in any letter case, as it spells it."""
    return values.one_of(versions())(value)


def validate(numbering: Mapping[str, Mapping[str, str]], controls: Iterable[str]) -> None:
    """ValueError when `numbering` contradicts itself or the catalogue's control keys: a
    version that is not X.Y.Z, a control the catalogue lacks, a number that is not one, one
    number for two controls of a version, a control no version numbers."""
    keys = tuple(controls)
    for version, ids in numbering.items():
        if not _VERSION.fullmatch(version):
            raise ValueError(f"CIS numbering: version {version!r} is not X.Y.Z")
        unknown = sorted(set(ids) - set(keys))
        if unknown:
            raise ValueError(f"CIS numbering: CIS {version} numbers unknown controls {unknown}")
        malformed = sorted(n for n in ids.values() if not _NUMBER.fullmatch(n))
        if malformed:
            raise ValueError(f"CIS numbering: CIS {version} has malformed numbers {malformed}")
        used = list(ids.values())
        if len(set(used)) != len(used):
            raise ValueError(f"CIS numbering: CIS {version} uses an id twice: {used}")
    unnumbered = [k for k in keys if not any(k in ids for ids in numbering.values())]
    if unnumbered:
        raise ValueError(f"CIS numbering: no version numbers the controls {unnumbered}")
