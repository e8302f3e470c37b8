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

import bisect
import datetime as dt
import hashlib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from compliance import localfiles
from compliance.localfiles import shown
from compliance.values import guid

_FIELDS = ("subscription", "control", "reason", "approved_by", "expires")

# A waiver is a signed-off exception and "*" covers every subscription: 100,000 is one per
# subscription of a 100,000-subscription tenant. An entry is ~200 bytes and 7 values (5
# keys, its [[waiver]] brackets); 32 MiB and 1,000,000 values hold 100,000 with long reasons.
# Past that, Python's TOML parser costs more than the audit: 32 MiB of `[],` took 11 s and
# 830 MB; 1,000,000 values of any kind take at most ~6 s and ~250 MB.
MAX_WAIVERS = 100_000
LIMITS = localfiles.Limits("a waivers file", bytes=32 * 2**20, values=1_000_000)


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
    raise WaiverError(f"{where}: 'expires' must be a date like 2027-06-30, not {shown(value)}")


def parse_waivers(text: str, source: str, controls: Iterable[str]) -> Waivers:
    """The waivers in `text`; WaiverError naming the entry and field when one is wrong."""
    known = sorted(controls)
    try:
        data = localfiles.loads_toml(text, source, LIMITS)
    except localfiles.LimitError as exc:
        raise WaiverError(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise WaiverError(f"{source}: not valid TOML: {exc}") from None
    extra = set(data) - {"waiver"}
    if extra:
        raise WaiverError(
            f"{source}: unknown top-level key(s) {shown(sorted(extra))}; use [[waiver]]"
        )
    entries = data.get("waiver", [])
    if not isinstance(entries, list):
        raise WaiverError(f"{source}: 'waiver' must be an array of tables ([[waiver]])")
    try:
        localfiles.check_count(source, len(entries), "waivers", MAX_WAIVERS)
    except localfiles.LimitError as exc:
        raise WaiverError(str(exc)) from None
    waivers = []
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: waiver {number}"
        if not isinstance(entry, dict):
            raise WaiverError(f"{where}: must be a table ([[waiver]]), not {shown(entry)}")
        unknown = set(entry) - set(_FIELDS)
        if unknown:
            raise WaiverError(f"{where}: unknown field(s) {sorted(unknown)}; fields are {_FIELDS}")
        for name in _FIELDS[:-1]:
            value = entry.get(name)
            if value is not None and not isinstance(value, str):
                raise WaiverError(f"{where}: '{name}' must be text, not {shown(value)}")
            if not value or not value.strip():
                raise WaiverError(f"{where}: '{name}' is missing or empty")
        subscription = entry["subscription"].strip().lower()
        try:
            subscription = subscription if subscription == "*" else guid(subscription)
        except ValueError:
            raise WaiverError(
                f"{where}: 'subscription' must be a subscription ID or \"*\", "
                f"not {shown(entry['subscription'])}"
            ) from None
        if entry["control"] not in known:
            raise WaiverError(
                f"{where}: 'control' {shown(entry['control'])} is not one of {', '.join(known)}"
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
    return Waivers(waivers)


def load_waivers(path: str | Path, controls: Iterable[str]) -> tuple[Waivers, str]:
    """The waivers of the file at `path`, and the SHA-256 of the bytes they were parsed
    from (read once: the digest names exactly what the verdicts used)."""
    try:
        text = localfiles.read_text(path, LIMITS)
    except localfiles.LimitError as exc:
        raise WaiverError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WaiverError(f"{path}: cannot read the waivers file ({exc})") from None
    # strict UTF-8 decodes and encodes back to the very bytes read
    return parse_waivers(text, str(path), controls), hashlib.sha256(text.encode()).hexdigest()


Key = tuple[str, str]  # (subscription id, lower case, or "*"; control key)


@dataclass(frozen=True)
class _Matching:
    """The waivers of one key that can decide a case, on one day: those before its first
    active one, expired (their numbers apart, to bisect), and that active one."""

    expired: list[Waiver]
    numbers: list[int]
    active: Waiver | None

    def last_expired_before(self, number: float) -> Waiver | None:
        at = bisect.bisect_left(self.numbers, number)
        return self.expired[at - 1] if at else None


class Waivers(tuple[Waiver, ...]):
    """The waivers of a file in its order, indexed by what they match: a case looks up two
    keys (its subscription's and "*"), however many waivers there are."""

    def __init__(self, waivers: Iterable[Waiver] = ()) -> None:
        self._by_key: dict[Key, list[Waiver]] = {}
        for waiver in self:
            self._by_key.setdefault((waiver.subscription, waiver.control), []).append(waiver)
        # per key and day: every case of a control shares the "*" key's
        self._matching: dict[tuple[Key, dt.date], _Matching] = {}

    def matching(self, key: Key, day: dt.date) -> _Matching:
        if (key, day) not in self._matching:
            expired: list[Waiver] = []
            active = None
            for waiver in self._by_key.get(key, ()):
                if waiver.active_on(day):
                    active = waiver
                    break
                expired.append(waiver)
            self._matching[key, day] = _Matching(expired, [w.number for w in expired], active)
        return self._matching[key, day]


def today() -> dt.date:
    """Waivers expire by the UTC calendar, so a run's verdicts don't depend on its host's zone."""
    return dt.datetime.now(dt.UTC).date()


def waivers_for(
    waivers: Iterable[Waiver], subscription_id: str, control: str, day: dt.date
) -> tuple[Waiver | None, Waiver | None]:
    """The active waiver of one case, and the expired one it had (each None when none);
    the first that matches decides, as in the file."""
    indexed = waivers if isinstance(waivers, Waivers) else Waivers(waivers)
    own = indexed.matching((subscription_id.lower(), control), day)
    every = indexed.matching(("*", control), day)
    actives = [w for w in (own.active, every.active) if w is not None]
    active = min(actives, key=lambda w: w.number, default=None)
    # the last expired one before the active one (of either key), as a walk down the file
    # would have found it
    until = active.number if active is not None else float("inf")
    expired = [w for w in (m.last_expired_before(until) for m in (own, every)) if w is not None]
    return active, max(expired, key=lambda w: w.number, default=None)


def unused_and_expired(
    waivers: Iterable[Waiver], cases: Iterable[tuple[str, str]], day: dt.date
) -> tuple[list[Waiver], list[Waiver]]:
    """The waivers that match none of the (subscription id, control) `cases` (stale), and
    those that match one but expired."""
    keys = {(subscription_id.lower(), control) for subscription_id, control in cases}
    controls = {control for _, control in keys}

    def used(waiver: Waiver) -> bool:
        if waiver.subscription == "*":
            return waiver.control in controls
        return (waiver.subscription, waiver.control) in keys

    waivers = list(waivers)
    stale = [w for w in waivers if not used(w)]
    return stale, [w for w in waivers if used(w) and not w.active_on(day)]
