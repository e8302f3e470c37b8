"""Waivers: approved, dated exceptions for one control on one subscription (or all of them).

A waivers file is TOML, one ``[[waiver]]`` table per exception::

    [[waiver]]
    subscription = "3e8a1f20-6d5c-4b3a-9f8e-7d6c5b4a3f21"   # or "*" for every subscription
    control = "contact_email"
    reason = "Sandbox without production data (RISK-1234)"
    approved_by = "Jane Doe, CISO"
    expires = 2027-06-30                                     # the last day it applies

An active waiver turns a failing case into xfail; an expired one is ignored and said so.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from compliance.values import guid

_FIELDS = ("subscription", "control", "reason", "approved_by", "expires")


class WaiverError(ValueError):
    """The waivers file cannot be trusted; the message names the entry and the field."""


@dataclass(frozen=True)
class Waiver:
    number: int  # its position in the file, from 1, for messages
    subscription: str
    control: str
    reason: str
    approved_by: str
    expires: dt.date

    def matches(self, subscription_id: str, control: str) -> bool:
        return self.control == control and self.subscription in ("*", subscription_id.lower())

    def active_on(self, day: dt.date) -> bool:
        return day <= self.expires

    def describe(self) -> str:
        who = "every subscription" if self.subscription == "*" else self.subscription
        return (
            f"waiver {self.number} ({self.control} on {who}, approved by {self.approved_by}, "
            f"expires {self.expires.isoformat()}): {self.reason}"
        )


def _expires(value: object, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise WaiverError(f"{where}: 'expires' must be a date like 2027-06-30, not {value!r}")


def parse_waivers(text: str, source: str, controls: Iterable[str]) -> tuple[Waiver, ...]:
    """The waivers in `text`; WaiverError naming the entry and field when one is wrong."""
    known = sorted(controls)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WaiverError(f"{source}: not valid TOML: {exc}") from None
    extra = set(data) - {"waiver"}
    if extra:
        raise WaiverError(f"{source}: unknown top-level key(s) {sorted(extra)}; use [[waiver]]")
    entries = data.get("waiver", [])
    if not isinstance(entries, list):
        raise WaiverError(f"{source}: 'waiver' must be an array of tables ([[waiver]])")
    waivers = []
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: waiver {number}"
        if not isinstance(entry, dict):
            raise WaiverError(f"{where}: must be a table ([[waiver]]), not {entry!r}")
        unknown = set(entry) - set(_FIELDS)
        if unknown:
            raise WaiverError(f"{where}: unknown field(s) {sorted(unknown)}; fields are {_FIELDS}")
        for name in _FIELDS[:-1]:
            value = entry.get(name)
            if value is not None and not isinstance(value, str):
                raise WaiverError(f"{where}: '{name}' must be text, not {value!r}")
            if not value or not value.strip():
                raise WaiverError(f"{where}: '{name}' is missing or empty")
        subscription = entry["subscription"].strip().lower()
        try:
            subscription = subscription if subscription == "*" else guid(subscription)
        except ValueError:
            raise WaiverError(
                f"{where}: 'subscription' must be a subscription ID or \"*\", "
                f"not {entry['subscription']!r}"
            ) from None
        if entry["control"] not in known:
            raise WaiverError(
                f"{where}: 'control' {entry['control']!r} is not one of {', '.join(known)}"
            )
        if "expires" not in entry:
            raise WaiverError(f"{where}: 'expires' is missing")
        waivers.append(
            Waiver(
                number=number,
                subscription=subscription,
                control=entry["control"],
                reason=entry["reason"].strip(),
                approved_by=entry["approved_by"].strip(),
                expires=_expires(entry["expires"], where),
            )
        )
    return tuple(waivers)


def load_waivers(path: str | Path, controls: Iterable[str]) -> tuple[Waiver, ...]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WaiverError(f"{path}: cannot read the waivers file ({exc})") from None
    return parse_waivers(text, str(path), controls)


def today() -> dt.date:
    """Waivers expire by the UTC calendar, so a run's verdicts don't depend on its host's zone."""
    return dt.datetime.now(dt.UTC).date()


def waivers_for(
    waivers: Iterable[Waiver], subscription_id: str, control: str, day: dt.date
) -> tuple[Waiver | None, Waiver | None]:
    """The active waiver of one case, and the expired one it had (each None when none);
    the first that matches decides, as in the file."""
    expired = None
    for waiver in waivers:
        if waiver.matches(subscription_id, control):
            if waiver.active_on(day):
                return waiver, expired
            expired = waiver
    return None, expired


def unused_and_expired(
    waivers: Iterable[Waiver], cases: Iterable[tuple[str, str]], day: dt.date
) -> tuple[list[Waiver], list[Waiver]]:
    """The waivers that match none of the (subscription id, control) `cases` (stale), and
    those that match one but expired."""
    cases = list(cases)
    waivers = list(waivers)
    matching = [w for w in waivers if any(w.matches(*case) for case in cases)]
    stale = [w for w in waivers if w not in matching]
    return stale, [w for w in matching if not w.active_on(day)]
