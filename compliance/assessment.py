"""One subscription judged once: its Assessment, made by a pure function from its read and
the policy, that every case of the subscription and every output renders from.

An assessment holds the read (or why it failed), the evidence behind the verdicts, the raw
answers a failing case shows, and per control a verdict whose fix is typed steps
(compliance.fixes). The run keeps one per subscription (compliance.session.Run), so the
four controls of a subscription share one evidence, one set of raw answers and one plan.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from compliance.arm.secrets import redact
from compliance.contacts import (
    Contact,
    RawResponse,
    ReadResult,
    Unverifiable,
    contact_from_data,
)
from compliance.controls import CATALOGUE, Control, Policy, Verdict, planned_steps

# --- evidence ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """What the evidence keeps of one answer (the answer itself is in the evidence bundle)."""

    path: str
    status: int
    request_id: str | None
    received_at: str


@dataclass(frozen=True)
class Evidence:
    """The evidence summary of a verdict: what ARM answered and, for a read that could be
    judged, the contacts it held as normalized. One serializer: to_dict / from_dict."""

    responses: tuple[Answered, ...] = ()
    # None when the read could not be judged (it failed, or never happened).
    api_version: str | None = None
    defender_registered: bool | None = None
    contacts: tuple[Contact, ...] | None = None

    @classmethod
    def of(cls, read: ReadResult | None) -> Evidence:
        if read is None:
            return cls()
        answered = tuple(
            Answered(r.path, r.status, r.request_id, r.received_at) for r in read.responses
        )
        if isinstance(read, Unverifiable):
            return cls(answered)
        return cls(answered, read.api_version, read.defender_registered, read.contacts)

    @property
    def judged(self) -> bool:
        return self.contacts is not None

    def to_dict(self) -> dict[str, Any]:
        """As the findings file's `evidence` holds it."""
        data: dict[str, Any] = {"responses": [asdict(r) for r in self.responses]}
        if self.contacts is not None:
            data["api_version"] = self.api_version
            data["defender_registered"] = self.defender_registered
            data["contacts"] = [_contact_data(c) for c in self.contacts]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        responses = tuple(Answered(**r) for r in data["responses"])
        if "contacts" not in data:
            return cls(responses)
        return cls(
            responses,
            data["api_version"],
            data["defender_registered"],
            tuple(contact_from_data(c) for c in data["contacts"]),
        )


def _contact_data(contact: Contact) -> dict[str, Any]:
    """A contact's fields as plain data, less `raw` (which dataclasses.asdict would first
    deep-copy: most of a first audit's evidence time)."""
    data: dict[str, Any] = {}
    for name in _CONTACT_FIELDS:
        value = getattr(contact, name)
        if isinstance(value, tuple):
            value = [asdict(v) if is_dataclass(v) else v for v in value]  # type: ignore[arg-type]
        data[name] = value
    return data


_CONTACT_FIELDS = tuple(f.name for f in fields(Contact) if f.name != "raw")


# A failing row shows its raw answers, each up to this many characters: a report grows with
# the tenant, not with one hostile answer (the whole answer is in the evidence bundle).
RAW_BODY_SHOWN = 4096


def raw_answers(responses: Iterable[RawResponse]) -> tuple[str, ...]:
    return tuple(_shown(redact(r.body)) for r in responses)


def _shown(body: str) -> str:
    if len(body) <= RAW_BODY_SHOWN:
        return body
    digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
    return (
        f"{body[:RAW_BODY_SHOWN]}\n[... cut: {len(body)} characters in all, sha256 {digest}; "
        "the whole answer is in the evidence bundle (--azure-evidence)]"
    )


# --- the assessment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    subscription_id: str
    read: ReadResult
    evidence: Evidence
    # What a case that did not pass shows of the answers (none when every verdict passed).
    raw_answers: tuple[str, ...] = ()
    # Per control key; none when the read failed (every case is then not verifiable).
    verdicts: Mapping[str, Verdict] = field(default_factory=dict)

    @property
    def error(self) -> Unverifiable | None:
        return self.read if isinstance(self.read, Unverifiable) else None


def assess(
    subscription_id: str,
    read: ReadResult,
    policy: Policy,
    controls: Iterable[Control] = CATALOGUE,
) -> Assessment:
    """The subscription's assessment: each of `controls` judged on `read` with `policy`,
    the planned writes made once for every control that fails."""
    if isinstance(read, Unverifiable):
        return Assessment(subscription_id, read, Evidence.of(read), raw_answers(read.responses))
    planned = functools.cache(lambda: planned_steps(read, policy))
    verdicts = {c.key: c.evaluate(read, policy, planned) for c in controls}
    failing = not all(v.compliant for v in verdicts.values())
    return Assessment(
        subscription_id,
        read,
        Evidence.of(read),
        raw_answers(read.responses) if failing else (),
        verdicts,
    )
