"""Baselines and drift: how one run's verdicts compare with an earlier run's.

A case is one control on one subscription (its id and the control's key: the comparison
holds across CIS versions). A case *fails* when it is not compliant, or waived (a waiver
accepts a failure, it does not fix it). Against an earlier run:

- new:               not compliant now, and not then (compliant, waived then but its waiver
                     has expired or gone, not verifiable, or not in that run);
- still failing:     failed then, fails now, and is not new (a baseline run calls the not
                     compliant ones *known*);
- fixed:             failed then, compliant now;
- no longer present: failed then, not judged now (not in this run, or skipped);
- not verifiable:    could not be verified now, whatever it was before.

New failures and what is not verifiable make things worse, and so does a later run that did
not run at all. Pure: no pytest, no Azure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compliance import localfiles
from compliance.findings import FINDINGS_SCHEMA, Finding, Outcome

Case = tuple[str, str]  # (subscription id, lower case; control key)
FAILING = frozenset({Outcome.NOT_COMPLIANT, Outcome.WAIVED})

# A findings file holds ~2,500 bytes and ~100 values per case (four cases a subscription:
# 10 KB and 390 values; measured on bench tenants of 1,000). Read whole, a file costs about
# its size again in memory, and up to ~70 bytes per value however short its text: 128 MiB
# and 6,000,000 values (about 12,500 subscriptions' findings) keep any file under 1 GiB.
# A 100,000-subscription tenant's findings (1 GB) would need a streamed reader.
LIMITS = localfiles.Limits("a findings file", bytes=128 * 2**20, values=6_000_000)
# 128 MiB hold ~52,000 real findings (13,000 subscriptions); twice that bounds what a
# comparison keeps of each file (~45 MB), so `diff` of two files at the limits stays at ~0.7 GiB.
MAX_FINDINGS = 100_000


class BaselineError(ValueError):
    """The file cannot be compared with; the message says why."""


@dataclass(frozen=True)
class Verdicts:
    """One run's verdict per case, and what to call each case in a report."""

    source: str
    verdict: Mapping[Case, Outcome]
    label: Mapping[Case, str] = field(default_factory=dict)  # "CIS 8.1.13 Name (id)"
    reason: Mapping[Case, str] = field(default_factory=dict)
    error: str | None = None  # the run did not run: why

    @property
    def failing(self) -> frozenset[Case]:
        return frozenset(c for c, v in self.verdict.items() if v in FAILING)

    @property
    def known(self) -> frozenset[Case]:
        """What a baseline run does not fail on: cases not compliant here (a waived case
        whose waiver ends is not known: its failure was accepted, not recorded)."""
        return frozenset(c for c, v in self.verdict.items() if v is Outcome.NOT_COMPLIANT)


@dataclass(frozen=True)
class Drift:
    new: list[Case]
    still_failing: list[Case]
    fixed: list[Case]
    no_longer_present: list[Case]
    not_verifiable: list[Case]

    did_not_run: str | None = None  # the later run never audited anything: why

    @property
    def worse(self) -> bool:
        return bool(self.new or self.not_verifiable or self.did_not_run)

    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "fixed": len(self.fixed),
            "still_failing": len(self.still_failing),
            "no_longer_present": len(self.no_longer_present),
            "not_verifiable": len(self.not_verifiable),
        }

    def line(self) -> str:
        c = self.counts()
        return (
            f"{c['new']} new, {c['fixed']} fixed, {c['still_failing']} still failing, "
            f"{c['no_longer_present']} no longer present, {c['not_verifiable']} not verifiable"
        )


def compare(old: Verdicts, new: Verdicts) -> Drift:
    fresh = {c for c, v in new.verdict.items() if v is Outcome.NOT_COMPLIANT and c not in old.known}
    return Drift(
        new=sorted(fresh),
        still_failing=sorted((new.failing & old.failing) - fresh),
        fixed=sorted(c for c in old.failing if new.verdict.get(c) is Outcome.COMPLIANT),
        no_longer_present=sorted(
            c for c in old.failing if new.verdict.get(c, Outcome.SKIPPED) is Outcome.SKIPPED
        ),
        not_verifiable=sorted(c for c, v in new.verdict.items() if v is Outcome.NOT_VERIFIABLE),
        did_not_run=new.error,
    )


def case_of(finding: Mapping[str, Any]) -> Case:
    return (str(finding["subscription"]["id"]).lower(), str(finding["control"]["key"]))


def from_findings(document: Mapping[str, Any], source: str) -> Verdicts:
    """The verdicts of a findings document (compliance.outputs.findings_json)."""
    if document.get("schema") != FINDINGS_SCHEMA:
        raise BaselineError(
            f"{source}: not a findings file ({FINDINGS_SCHEMA!r} expected, found schema "
            f"{localfiles.shown(document.get('schema'))})"
        )
    try:
        found = list(document["findings"])
        cases = [case_of(f) for f in found]
        error = (document.get("run") or {}).get("error")
        return Verdicts(
            source,
            {c: Outcome(f["verdict"]) for c, f in zip(cases, found, strict=True)},
            {c: _label(f) for c, f in zip(cases, found, strict=True)},
            {c: str(f.get("reason") or "") for c, f in zip(cases, found, strict=True)},
            str(error) if error else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"{source}: not laid out as {FINDINGS_SCHEMA}: {exc!r}") from None


def _label(finding: Mapping[str, Any]) -> str:
    sub = finding["subscription"]
    return f"CIS {finding['control']['cis_id']} {sub['name']} ({sub['id']})"


def load(
    path: str | Path, limits: localfiles.Limits = LIMITS, max_findings: int = MAX_FINDINGS
) -> dict[str, Any]:
    """A findings file's JSON document, read within `limits`; BaselineError when it cannot
    be read or is past a limit."""
    try:
        document = localfiles.read_json(path, limits)
        found = document.get("findings") if isinstance(document, dict) else None
        if isinstance(found, list):  # before any work per finding
            localfiles.check_count(str(path), len(found), "findings", max_findings)
    except localfiles.LimitError as exc:
        raise BaselineError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read it ({exc})") from None
    except ValueError as exc:
        raise BaselineError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise BaselineError(f"{path}: not a findings file (a JSON object is expected)")
    return document


def load_findings(path: str | Path) -> Verdicts:
    return from_findings(load(path), str(path))


def of_run(findings: Iterable[Finding], source: str = "this run") -> Verdicts:
    verdict: dict[Case, Outcome] = {}
    label: dict[Case, str] = {}
    reason: dict[Case, str] = {}
    for f in findings:
        case = (f.subscription.id.lower(), f.control.key)
        verdict[case] = f.outcome
        label[case] = f"CIS {f.cis_id} {f.subscription.display_name} ({f.subscription.id})"
        reason[case] = f.reason
    return Verdicts(source, verdict, label, reason)


def report_lines(drift: Drift, old: Verdicts, new: Verdicts, cap: int = 200) -> list[str]:
    """The comparison as lines for a terminal: counts, then the cases that changed."""
    lines = [f"against {old.source}: {drift.line()}"]
    if drift.did_not_run:
        lines.append(f"DID NOT RUN  {new.source}: {drift.did_not_run}")
    for title, cases, where in (
        ("NEW", drift.new, new),
        ("NOT VERIFIABLE", drift.not_verifiable, new),
        ("FIXED", drift.fixed, old),
        ("NO LONGER PRESENT", drift.no_longer_present, old),
    ):
        for case in cases[:cap]:
            label = where.label.get(case, f"{case[1]} on {case[0]}")
            reason = where.reason.get(case, "")
            lines.append(f"{title}  {label}" + (f": {reason}" if title != "FIXED" else ""))
        if len(cases) > cap:
            lines.append(f"... and {len(cases) - cap} more {title.lower()}")
    return lines
