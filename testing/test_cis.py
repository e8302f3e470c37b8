"""Unit tests for compliance.cis: the CIS numbering table, what is derived from it, its
checks, and the README's copy of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compliance import cis
from compliance.controls import CATALOGUE, CIS_VERSIONS, CONTACT_EMAIL, NEWEST_CIS_VERSION

README = Path(__file__).resolve().parent.parent / "README.md"
KEYS = [c.key for c in CATALOGUE]
ABSENT = "\N{EN DASH}"  # the README's cell for a control a version lacks


def readme_numbering() -> tuple[list[str], dict[str, dict[str, str]]]:
    """The numbering table of the README's "The controls": its versions in column order, and
    version -> control key -> number. A column may head several versions ("1.3.0 / 1.4.0")
    that number every control alike."""
    section = README.read_text(encoding="utf-8").split("\n## The controls\n", 1)[1]
    rows = [line for line in section.split("\n## ", 1)[0].splitlines() if line.startswith("|")]
    header, _rule, *body = ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)
    first = next(i for i, cell in enumerate(header) if cell.startswith("CIS "))
    columns = [cell.removeprefix("CIS ").split(" / ") for cell in header[first:]]
    numbering: dict[str, dict[str, str]] = {v: {} for column in columns for v in column}
    for row in body:
        key = row[0].strip("`")
        for column, number in zip(columns, row[first:], strict=True):
            for version in column:
                if number != ABSENT:
                    numbering[version][key] = number
    return [v for column in columns for v in column], numbering


def test_the_readme_table_shows_the_numbering() -> None:
    shown, numbering = readme_numbering()
    assert numbering == cis.NUMBERING
    assert shown == list(cis.versions())


def test_the_readme_lists_the_versions_cis_version_takes() -> None:
    row = next(
        line for line in README.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `--cis-version")
    )  # fmt: skip
    listed = re.search(r"show: ([0-9., ]+) \(default: ([0-9.]+)\)", row)
    assert listed is not None, row
    assert listed[1].split(", ") == list(cis.versions())
    assert listed[2] == cis.newest()


def test_versions_in_release_order_whatever_the_table_order(monkeypatch) -> None:
    assert CIS_VERSIONS == cis.versions() == tuple(cis.NUMBERING)
    assert NEWEST_CIS_VERSION == cis.newest() == "5.0.0"
    numbered = {"contact_email": "7.1.13"}
    monkeypatch.setitem(cis.NUMBERING, "10.0.0", numbered)
    monkeypatch.setitem(cis.NUMBERING, "6.0.0", numbered)
    assert cis.versions()[-3:] == ("5.0.0", "6.0.0", "10.0.0")  # not "10.0.0" < "5.0.0"
    assert cis.newest() == "10.0.0"


def test_numbers_by_version_and_control() -> None:
    assert cis.number("1.3.0", "contact_email") == "2.13"
    assert cis.number("3.0.0", "attack_path_notifications") is None  # came with 4.0.0
    assert cis.number("1.2.0", "contact_email") is None  # no such version: nothing to show
    assert cis.numbers("attack_path_notifications") == {"4.0.0": "9.1.15", "5.0.0": "8.1.15"}
    for key in ("contact_email", "alert_severity", "owner_notifications"):
        assert list(cis.numbers(key)) == list(cis.versions())


def test_a_control_reads_the_table_when_asked(monkeypatch) -> None:
    monkeypatch.setitem(cis.NUMBERING, "6.0.0", {"contact_email": "7.1.13"})
    assert CONTACT_EMAIL.cis_id("6.0.0") == "7.1.13"
    assert list(CONTACT_EMAIL.cis_ids)[-2:] == ["5.0.0", "6.0.0"]


def test_the_option_takes_the_versions_of_the_table(monkeypatch) -> None:
    assert cis.known_version("5.0.0") == "5.0.0"
    with pytest.raises(ValueError, match=r"'6\.0\.0' is not one of 1\.1\.0, 1\.3\.0, .*, 5\.0\.0$"):
        cis.known_version("6.0.0")
    monkeypatch.setitem(cis.NUMBERING, "6.0.0", {"contact_email": "7.1.13"})
    assert cis.known_version("6.0.0") == "6.0.0"


def test_the_table_agrees_with_the_catalogue() -> None:
    cis.validate(cis.NUMBERING, KEYS)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param({"6.0": {"contact_email": "7.1"}}, "version '6.0' is not X.Y.Z", id="version"),
        pytest.param(
            {"6.0.0": {"contact_emails": "7.1.13"}},
            "CIS 6.0.0 numbers unknown controls ['contact_emails']",
            id="unknown-control",
        ),
        pytest.param(
            {"6.0.0": {"contact_email": "7.1.13 "}},
            "CIS 6.0.0 has malformed numbers ['7.1.13 ']",
            id="malformed-number",
        ),
        pytest.param(
            {"6.0.0": {"contact_email": "7.1.13", "alert_severity": "7.1.13"}},
            "CIS 6.0.0 uses an id twice: ['7.1.13', '7.1.13']",
            id="id-twice",
        ),
    ],
)
def test_validate_rejects_contradictions(change: dict[str, dict[str, str]], error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"CIS numbering: {error}")):
        cis.validate({**cis.NUMBERING, **change}, KEYS)


def test_validate_rejects_a_control_no_version_numbers() -> None:
    with pytest.raises(ValueError, match=re.escape("no version numbers the controls ['new']")):
        cis.validate(cis.NUMBERING, [*KEYS, "new"])


def test_the_readme_says_how_each_control_passes_as_the_catalogue_does() -> None:
    """The reports' method paragraph and the README's "passes when" column are one text."""
    section = README.read_text(encoding="utf-8").split("\n## The controls\n", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    passes = {row.split("|")[1].strip(" `"): row.split("|")[3].strip() for row in rows}
    assert passes == {c.key: c.passes_when for c in CATALOGUE}
