"""The result of one case: a Finding (a control on a subscription), its Outcome, and the one
serializer every report reads it through.

A Finding crosses from pytest-xdist workers to the controller as `to_dict(raw=True)` and
comes back with `from_dict`; the findings file is `to_dict()` (schema below); the CSV,
the JUnit message and the HTML row read the same object.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any

from compliance.arm.secrets import redact
from compliance.contacts import Contact, RawResponse, SecurityContacts
from compliance.controls import CATALOGUE, Control
from compliance.model import ManagementGroup, Subscription

FINDINGS_SCHEMA = "azure-security-contacts/findings/v1"


class Outcome(StrEnum):
    """What a case says about its control and subscription, in the order reports show."""

    COMPLIANT = "compliant"
    NOT_COMPLIANT = "not_compliant"
    NOT_VERIFIABLE = "not_verifiable"
    SKIPPED = "skipped"
    WAIVED = "waived"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class WaiverFacts:
    state: str  # "active" or "expired"
    reason: str
    approved_by: str
    expires: str  # ISO date


@dataclass(frozen=True)
class Finding:
    subscription: Subscription
    control: Control
    cis_version: str
    outcome: Outcome
    reason: str
    remediation: str = ""
    waiver: WaiverFacts | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)  # plain data, see evidence()
    checked_at: str = ""
    # Against --azure-baseline: "new", "known" (it failed then too) or "fixed"; None without.
    baseline: str | None = None
    # The answers behind a verdict that did not pass, as a failing HTML row shows them (not
    # in the findings file: the evidence bundle keeps them whole).
    raw_answers: tuple[str, ...] = ()

    @property
    def cis_id(self) -> str | None:
        return self.control.cis_id(self.cis_version)

    def to_dict(self, *, raw: bool = False) -> dict[str, Any]:
        """The finding as the findings file holds it (with `raw`, its raw answers too)."""
        data: dict[str, Any] = {
            "subscription": {
                "id": self.subscription.id,
                "name": self.subscription.display_name,
                "state": self.subscription.state,
                "tenant_id": self.subscription.tenant_id,
                "management_groups": [
                    {"id": g.id, "name": g.display_name}
                    for g in self.subscription.management_groups
                ],
                "managed_by_tenants": list(self.subscription.managed_by_tenants),
            },
            "control": {
                "key": self.control.key,
                "title": self.control.title,
                "rationale": self.control.rationale,
                "cis_version": self.cis_version,
                "cis_id": self.cis_id,
                "cis": dict(self.control.cis_ids),
            },
            "verdict": self.outcome.value,
            "reason": self.reason,
            "remediation": self.remediation,
            "waiver": None if self.waiver is None else asdict(self.waiver),
            "evidence": dict(self.evidence),
            "checked_at": self.checked_at,
            "baseline": self.baseline,
        }
        if raw:
            data["raw_answers"] = list(self.raw_answers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        sub = data["subscription"]
        return cls(
            subscription=Subscription(
                sub["id"],
                sub["name"],
                sub["state"],
                sub["tenant_id"],
                tuple(ManagementGroup(g["id"], g["name"]) for g in sub["management_groups"]),
                tuple(sub["managed_by_tenants"]),
            ),
            control=CONTROLS_BY_KEY[data["control"]["key"]],
            cis_version=data["control"]["cis_version"],
            outcome=Outcome(data["verdict"]),
            reason=data["reason"],
            remediation=data["remediation"],
            waiver=None if data["waiver"] is None else WaiverFacts(**data["waiver"]),
            evidence=data["evidence"],
            checked_at=data["checked_at"],
            baseline=data.get("baseline"),
            raw_answers=tuple(data.get("raw_answers", ())),
        )


CONTROLS_BY_KEY = {c.key: c for c in CATALOGUE}


def evidence(
    read: SecurityContacts | None, responses: Iterable[RawResponse] = ()
) -> dict[str, Any]:
    """The evidence summary of a verdict: normalized contacts and what ARM answered (the
    answers themselves are in the evidence bundle)."""
    answers = list(read.responses if read is not None else responses)
    summary: dict[str, Any] = {
        "responses": [
            {k: getattr(r, k) for k in ("path", "status", "request_id", "received_at")}
            for r in answers
        ],
    }
    if read is not None:
        summary["api_version"] = read.api_version
        summary["defender_registered"] = read.defender_registered
        summary["contacts"] = [_contact_summary(c) for c in read.contacts]
    return summary


def _contact_summary(contact: Contact) -> dict[str, Any]:
    """A contact's fields as plain data, less `raw` (which dataclasses.asdict would first
    deep-copy: most of a first audit's evidence time)."""
    summary: dict[str, Any] = {}
    for name in _CONTACT_FIELDS:
        value = getattr(contact, name)
        if isinstance(value, tuple):
            value = [asdict(v) if is_dataclass(v) else v for v in value]  # type: ignore[arg-type]
        summary[name] = value
    return summary


_CONTACT_FIELDS = tuple(f.name for f in fields(Contact) if f.name != "raw")


# A failing row shows its raw answers, each up to this many characters: a report grows with
# the tenant, not with one hostile answer (the whole answer is in the evidence bundle).
RAW_BODY_SHOWN = 4096


def raw_answers(
    read: SecurityContacts | None, responses: Iterable[RawResponse] = ()
) -> tuple[str, ...]:
    answers = read.responses if read is not None else responses
    return tuple(_shown(redact(r.body)) for r in answers)


def _shown(body: str) -> str:
    if len(body) <= RAW_BODY_SHOWN:
        return body
    digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
    return (
        f"{body[:RAW_BODY_SHOWN]}\n[... cut: {len(body)} characters in all, sha256 {digest}; "
        "the whole answer is in the evidence bundle (--azure-evidence)]"
    )


def tally(findings: Iterable[Finding]) -> dict[str, Counter[Outcome]]:
    """Outcome counts per control key, in CIS order (the run's version numbers them)."""
    counts: dict[str, Counter[Outcome]] = {}
    numbers: dict[str, tuple[int, ...]] = {}
    for finding in findings:
        counts.setdefault(finding.control.key, Counter())[finding.outcome] += 1
        numbers[finding.control.key] = cis_number(finding.cis_id)
    return dict(sorted(counts.items(), key=lambda item: numbers[item[0]]))


def cis_number(cis_id: str | None) -> tuple[int, ...]:
    """A recommendation number to sort by: 8.1.12 before 8.1.13 before 8.1.15."""
    return tuple(int(part) for part in cis_id.split(".")) if cis_id else (1 << 30,)


def compliance_percent(counts: Counter[Outcome]) -> float | None:
    """Compliant share of what was judged: skipped cases aside, waived ones count against."""
    judged = sum(counts[o] for o in Outcome if o is not Outcome.SKIPPED)
    return 100 * counts[Outcome.COMPLIANT] / judged if judged else None


def findings_document(meta: Mapping[str, Any], findings: Iterable[Finding]) -> dict[str, Any]:
    findings = list(findings)
    return {
        "schema": FINDINGS_SCHEMA,
        "run": dict(meta),
        "summary": {
            key: {**{o.value: c[o] for o in Outcome}, "compliance_percent": compliance_percent(c)}
            for key, c in tally(findings).items()
        },
        "findings": [f.to_dict() for f in findings],
    }


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """By subscription id, then control in CIS order."""
    return sorted(findings, key=lambda f: (f.subscription.id.lower(), cis_number(f.cis_id)))
