"""The result of one case: a Finding (a control on a subscription), its Outcome, and the one
serializer every report reads it through.

A Finding crosses from pytest-xdist workers to the controller as `to_dict(raw=True)` and
comes back with `from_dict`; the findings file is `to_dict()` (schema below); the CSV,
the JUnit message and the HTML row read the same object.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from compliance import fixes
from compliance.assessment import Evidence
from compliance.controls import CATALOGUE, Control
from compliance.microsoft import MicrosoftVerdict
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


class Baseline(StrEnum):
    """What a case is against --azure-baseline."""

    NEW = "new"  # it fails, and did not in the baseline
    KNOWN = "known"  # it failed then too: reported, failing nothing
    FIXED = "fixed"  # it failed then and passes now


@dataclass(frozen=True)
class WaiverFacts:
    state: str  # "active" or "expired"
    reason: str
    approved_by: str
    expires: str  # ISO date
    described: str = ""  # the waiver as its file numbers and states it


@dataclass(frozen=True)
class Finding:
    subscription: Subscription
    control: Control
    cis_version: str
    outcome: Outcome
    reason: str
    fix: fixes.Fix = ()  # for a failure, how to make it pass; outputs render it
    waiver: WaiverFacts | None = None
    evidence: Evidence = field(default_factory=Evidence)
    checked_at: str = ""
    baseline: Baseline | None = None  # None: the run has no baseline
    # The answers behind a verdict that did not pass, as a failing HTML row shows them (not
    # in the findings file: the evidence bundle keeps them whole).
    raw_answers: tuple[str, ...] = ()
    # Defender for Cloud's verdict beside this one (--azure-cross-check; None: not asked).
    microsoft: MicrosoftVerdict | None = None

    @property
    def cis_id(self) -> str | None:
        return self.control.cis_id(self.cis_version)

    def to_dict(self, *, raw: bool = False) -> dict[str, Any]:
        """The finding as the findings file holds it; with `raw` (how it crosses from a
        pytest-xdist worker), its raw answers too."""
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
                "references": references(self.control),
            },
            "verdict": self.outcome.value,
            "reason": self.reason,
            "remediation": fixes.text(self.fix),
            "fix": fixes.to_data(self.fix),  # the same steps, typed: how a merge renders them
            "waiver": None if self.waiver is None else asdict(self.waiver),
            "evidence": self.evidence.to_dict(),
            "checked_at": self.checked_at,
            "baseline": None if self.baseline is None else self.baseline.value,
        }
        if self.microsoft is not None:  # only a cross-checked run's findings hold it
            data["microsoft"] = self.microsoft.to_dict()
        if raw:
            data["raw_answers"] = list(self.raw_answers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """From to_dict() (a findings file's, or with `raw`, a worker's)."""
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
            fix=fixes.from_data(data["fix"]),
            waiver=None if data["waiver"] is None else WaiverFacts(**data["waiver"]),
            evidence=Evidence.from_dict(data["evidence"]),
            checked_at=data["checked_at"],
            baseline=None if data.get("baseline") is None else Baseline(data["baseline"]),
            raw_answers=tuple(data.get("raw_answers", ())),
            microsoft=(
                MicrosoftVerdict.from_dict(data["microsoft"]) if data.get("microsoft") else None
            ),
        )


CONTROLS_BY_KEY = {c.key: c for c in CATALOGUE}


def references(control: Control, *, sources: bool = False) -> list[dict[str, Any]]:
    """The control's references to other frameworks as data (from_dict takes them from the
    catalogue again, by the control's key). Each finding holds the frameworks and their
    ids; the sources, long links the same for every finding of a control, are written once
    per findings file (`sources`: with them)."""
    return [
        {
            "framework": r.framework,
            "controls": list(r.controls),
            **({"source": r.source} if sources else {}),
        }
        for r in control.references
    ]


def tally(findings: Iterable[Finding]) -> dict[str, Counter[Outcome]]:
    """Outcome counts per control key, in CIS order (the run's version numbers them)."""
    counts: dict[str, Counter[Outcome]] = {}
    numbers: dict[str, tuple[int, ...]] = {}
    for finding in findings:
        key = finding.control.key
        if key not in counts:  # a control's number, once: the run's version numbers it
            counts[key] = Counter()
            numbers[key] = cis_number(finding.cis_id)
        counts[key][finding.outcome] += 1
    return dict(sorted(counts.items(), key=lambda item: numbers[item[0]]))


def cis_number(cis_id: str | None) -> tuple[int, ...]:
    """A recommendation number to sort by: 8.1.12 before 8.1.13 before 8.1.15."""
    return tuple(int(part) for part in cis_id.split(".")) if cis_id else (1 << 30,)


def compliance_percent(counts: Counter[Outcome]) -> float | None:
    """Compliant share of what was judged: skipped cases aside, waived ones count against."""
    judged = sum(counts[o] for o in Outcome if o is not Outcome.SKIPPED)
    return 100 * counts[Outcome.COMPLIANT] / judged if judged else None


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """By subscription id, then control in CIS order."""
    return sorted(findings, key=lambda f: (f.subscription.id.lower(), cis_number(f.cis_id)))
