"""What every output renders: one run's (or one merge's) facts and findings."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compliance.facts import RunFacts
from compliance.findings import Finding
from compliance.outputs.words import title


@dataclass(frozen=True)
class OtherCase:
    """A test of the run that checks no control (JUnit lists it beside the findings)."""

    nodeid: str
    outcome: str  # passed, failed, error or skipped
    message: str = ""
    text: str = ""


@dataclass(frozen=True)
class Report:
    facts: RunFacts
    findings: Sequence[Finding]  # by subscription id, then control in CIS order
    scopes: tuple[str, ...] = ()  # the management groups the run audited
    # The evidence bundle, made only when it is written.
    bundle: Callable[[], Mapping[str, Any]] | None = None
    others: Sequence[OtherCase] = ()
    suite_name: str = "pytest"  # JUnit's testsuite name (pytest's junit_suite_name)
    # Where the run's reports are, the audit view first: what a summary points to.
    reports_at: tuple[str, ...] = ()
    audit_view: str | None = None  # the report to hand an auditor, when written

    @property
    def title(self) -> str:
        return title(self.facts.cis_version)
