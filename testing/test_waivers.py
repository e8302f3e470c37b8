"""Unit tests for compliance.waivers: parsing, validation, matching and expiry of waivers."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest

from compliance.controls import CATALOGUE
from compliance.waivers import Waiver, WaiverError, load_waivers, parse_waivers, today

KEYS = [c.key for c in CATALOGUE]
SUB = "3e8a1f20-6d5c-4b3a-9f8e-7d6c5b4a3f21"
OTHER_SUB = "20ff7fc3-e762-44dd-bd96-b71116dcdc23"
EXPIRES = dt.date(2027, 6, 30)

VALID = f"""
[[waiver]]
subscription = "{SUB.upper()}"
control = "contact_email"
reason = "Sandbox without production data (RISK-1234)"
approved_by = "Jane Doe, CISO"
expires = 2027-06-30

[[waiver]]
subscription = "*"
control = "attack_path_notifications"
reason = "  Sovereign cloud without api-version 2023-12-01-preview  "
approved_by = "John Roe"
expires = "2026-01-31"
"""

# The TOML of a valid entry, field by field.
FIELDS = {
    "subscription": f'"{SUB}"',
    "control": '"alert_severity"',
    "reason": '"Pilot tenant (RISK-9)"',
    "approved_by": '"Jane Doe"',
    "expires": "2027-06-30",
}


def parse(text: str) -> tuple[Waiver, ...]:
    return parse_waivers(text, "w.toml", controls=KEYS)


def table(fields: dict[str, str]) -> str:
    return "[[waiver]]\n" + "".join(f"{name} = {value}\n" for name, value in fields.items())


def two_entries(**changes: str | None) -> str:
    """A valid [[waiver]], then one with `changes` to FIELDS (None removes the field)."""
    second = {k: v for k, v in {**FIELDS, **changes}.items() if v is not None}
    return f"{table(FIELDS)}\n{table(second)}"


def waiver(subscription: str = SUB, control: str = "contact_email") -> Waiver:
    return Waiver(1, subscription, control, "Sandbox", "Jane Doe", EXPIRES)


# --- a valid file ---------------------------------------------------------------------------


def test_valid_file() -> None:
    assert parse(VALID) == (
        Waiver(
            number=1,
            subscription=SUB,  # lower-cased
            control="contact_email",
            reason="Sandbox without production data (RISK-1234)",
            approved_by="Jane Doe, CISO",
            expires=EXPIRES,
        ),
        Waiver(
            number=2,
            subscription="*",
            control="attack_path_notifications",
            reason="Sovereign cloud without api-version 2023-12-01-preview",  # trimmed
            approved_by="John Roe",
            expires=dt.date(2026, 1, 31),
        ),
    )


@pytest.mark.parametrize("text", ["", "# no waivers yet\n", "waiver = []\n"], ids=repr)
def test_no_waivers(text: str) -> None:
    assert parse(text) == ()


@pytest.mark.parametrize(
    "expires",
    ["2027-06-30", '"2027-06-30"', "2027-06-30T23:59:59", "2027-06-30T10:00:00+02:00"],
    ids=["toml-date", "iso-string", "local-datetime", "offset-datetime"],
)
def test_expires_forms(expires: str) -> None:
    (_, second) = parse(two_entries(expires=expires))
    assert second.expires == EXPIRES


def test_the_helper_file_is_valid() -> None:
    assert [w.number for w in parse(two_entries())] == [1, 2]


# --- malformed files ------------------------------------------------------------------------


def assert_rejected(text: str, *parts: str) -> None:
    with pytest.raises(WaiverError) as raised:
        parse(text)
    message = str(raised.value)
    assert message.startswith("w.toml: ")
    for part in parts:
        assert part in message, message


@pytest.mark.parametrize("field", FIELDS)
def test_missing_field(field: str) -> None:
    assert_rejected(two_entries(**{field: None}), f"waiver 2: '{field}' is missing")


@pytest.mark.parametrize("field", ["subscription", "control", "reason", "approved_by"])
@pytest.mark.parametrize("value", ['""', '"   "'], ids=["empty", "blank"])
def test_empty_field(field: str, value: str) -> None:
    assert_rejected(two_entries(**{field: value}), f"waiver 2: '{field}' is missing or empty")


@pytest.mark.parametrize("field", ["subscription", "control", "reason", "approved_by"])
def test_field_that_is_not_text(field: str) -> None:
    assert_rejected(two_entries(**{field: "42"}), f"waiver 2: '{field}' must be text, not 42")


def test_unknown_field() -> None:
    text = two_entries(expires=None) + "expiry = 2027-06-30\n"
    assert_rejected(text, "waiver 2: unknown field(s) ['expiry']", "'expires'")


@pytest.mark.parametrize(
    "subscription",
    [
        "not-a-guid",
        SUB[:-1],
        f"{{{SUB}}}",
        f"/subscriptions/{SUB}",
        "**",
        "all",
    ],
    ids=["words", "short", "braces", "resource-id", "double-star", "all"],
)
def test_bad_subscription(subscription: str) -> None:
    assert_rejected(
        two_entries(subscription=f'"{subscription}"'),
        "waiver 2: 'subscription' must be a subscription ID or \"*\"",
        repr(subscription),
    )


@pytest.mark.parametrize("control", ["contact-email", "Contact_Email", "cis_2.13"])
def test_unknown_control_lists_the_known_ones(control: str) -> None:
    assert_rejected(
        two_entries(control=f'"{control}"'),
        f"waiver 2: 'control' {control!r} is not one of "
        "alert_severity, attack_path_notifications, contact_email, owner_notifications",
    )


@pytest.mark.parametrize(
    "expires",
    ['"2027-13-01"', '"30/06/2027"', '""', "20270630", "07:30:00", "true"],
    ids=["month-13", "day-first", "empty", "integer", "time-only", "boolean"],
)
def test_bad_expiry_date(expires: str) -> None:
    assert_rejected(two_entries(expires=expires), "waiver 2: 'expires' must be a date like")


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        pytest.param("[[waiver]\ncontrol = 'x'\n", ["not valid TOML", "line 1"], id="invalid-toml"),
        pytest.param(
            two_entries().replace("[[waiver]]", "[[waivers]]"),
            ["unknown top-level key(s) ['waivers']", "[[waiver]]"],
            id="top-level-waivers",
        ),
        pytest.param(
            "title = 'exceptions'\n" + two_entries(),
            ["unknown top-level key(s) ['title']"],
            id="top-level-extra-key",
        ),
        pytest.param(
            table(FIELDS).replace("[[waiver]]", "[waiver]"),
            ["'waiver' must be an array of tables ([[waiver]])"],
            id="single-table",
        ),
        pytest.param(
            "waiver = 'contact_email'\n",
            ["'waiver' must be an array of tables"],
            id="string",
        ),
        pytest.param(
            "waiver = ['contact_email']\n",
            ["waiver 1: must be a table ([[waiver]]), not 'contact_email'"],
            id="array-of-strings",
        ),
    ],
)
def test_malformed_file(text: str, parts: list[str]) -> None:
    assert_rejected(text, *parts)


# --- Waiver ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscription", "control", "expected"),
    [
        pytest.param(SUB, "contact_email", True, id="same"),
        pytest.param(SUB.upper(), "contact_email", True, id="subscription-upper-case"),
        pytest.param(OTHER_SUB, "contact_email", False, id="other-subscription"),
        pytest.param(SUB, "alert_severity", False, id="other-control"),
        pytest.param(SUB, "contact", False, id="control-prefix"),
    ],
)
def test_matches(subscription: str, control: str, expected: bool) -> None:
    assert waiver().matches(subscription, control) is expected


@pytest.mark.parametrize("subscription", [SUB, OTHER_SUB.upper()])
def test_star_matches_every_subscription_but_only_its_control(subscription: str) -> None:
    assert waiver("*").matches(subscription, "contact_email")
    assert not waiver("*").matches(subscription, "owner_notifications")


def test_parsed_subscription_matches_either_case() -> None:
    (first, _) = parse(VALID)  # written upper-case in the file
    assert first.matches(SUB, "contact_email")
    assert first.matches(SUB.upper(), "contact_email")


@pytest.mark.parametrize(
    ("day", "active"),
    [
        pytest.param(dt.date(2020, 1, 1), True, id="long-before"),
        pytest.param(EXPIRES - dt.timedelta(days=1), True, id="day-before"),
        pytest.param(EXPIRES, True, id="expiry-day"),
        pytest.param(EXPIRES + dt.timedelta(days=1), False, id="day-after"),
    ],
)
def test_active_on_includes_the_expiry_day(day: dt.date, active: bool) -> None:
    assert waiver().active_on(day) is active


def test_describe() -> None:
    first, second = parse(VALID)
    assert first.describe() == (
        f"waiver 1 (contact_email on {SUB}, approved by Jane Doe, CISO, expires 2027-06-30): "
        "Sandbox without production data (RISK-1234)"
    )
    assert second.describe().startswith(
        "waiver 2 (attack_path_notifications on every subscription, approved by John Roe, "
        "expires 2026-01-31): "
    )


def test_today_is_the_utc_date() -> None:
    before = dt.datetime.now(dt.UTC).date()
    assert today() in (before, dt.datetime.now(dt.UTC).date())


# --- load_waivers ---------------------------------------------------------------------------


def test_load_waivers(tmp_path: Path) -> None:
    path = tmp_path / "waivers.toml"
    path.write_text(VALID, encoding="utf-8")
    waivers, digest = load_waivers(path, KEYS)
    assert waivers == parse(VALID)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_waivers_names_the_file_in_entry_errors(tmp_path: Path) -> None:
    path = tmp_path / "waivers.toml"
    path.write_text(two_entries(control='"nope"'), encoding="utf-8")
    with pytest.raises(WaiverError, match=re.escape(f"{path}: waiver 2: 'control'")):
        load_waivers(str(path), KEYS)


@pytest.mark.parametrize(
    "content",
    [None, b"\xff\xfe[\x00[\x00w\x00", "reason = 'caf\u00e9'".encode("latin-1")],
    ids=["missing", "utf-16", "latin-1"],
)
def test_unreadable_file_names_the_path(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "waivers.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WaiverError, match=re.escape(f"{path}: cannot read the waivers file")):
        load_waivers(path, KEYS)
