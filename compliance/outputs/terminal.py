"""The terminal's closing lines: one per case not compliant or not verifiable, capped, then
where every reason and fix is; last, the run's counts in audit words and the audit view."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from compliance.findings import Baseline, Finding, Outcome
from compliance.microsoft import counted
from compliance.outputs.words import WORDS
from compliance.text import one_line

# A CI log shows at most this many failing cases; the reports hold every one.
LINES = 200
# A display name is cut here on a case's line; the reason never is (a 403's advice names the
# role to assign at its end), only a reason past REASON (text Azure sent) is.
NAME = 80
REASON = 1500


def _failing(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.outcome in (Outcome.NOT_COMPLIANT, Outcome.NOT_VERIFIABLE)]


def counts(findings: Iterable[Finding]) -> str:
    """`18 compliant, 21 not compliant (5 known), 8 not verifiable`: each outcome that
    occurs, in report order, with how many failures a baseline already knew."""
    found = list(findings)
    tally = Counter(f.outcome for f in found)
    known = sum(f.baseline is Baseline.KNOWN for f in found)
    parts = []
    for outcome in Outcome:
        if tally[outcome]:
            part = f"{tally[outcome]} {WORDS[outcome]}"
            if outcome is Outcome.NOT_COMPLIANT and known:
                part += f" ({known} known)"
            parts.append(part)
    return ", ".join(parts)


def summary(findings: Iterable[Finding], reports_at: Sequence[str]) -> tuple[str, list[str]]:
    """The closing section: a title with the counts, and one line per case not compliant or
    not verifiable, at most LINES, then how many more and where."""
    shown = _failing(findings)
    lines = []
    for f in shown[:LINES]:
        name = f.subscription.display_name
        name = name if len(name) <= NAME else f"{name[:NAME]}..."
        reason = f.reason if len(f.reason) <= REASON else f"{f.reason[:REASON]}..."
        known = " (KNOWN)" if f.baseline is Baseline.KNOWN else ""
        lines.append(
            one_line(
                f"{f.outcome.label.upper()}{known}  CIS {f.cis_id} {name} "
                f"({f.subscription.id}): {reason}"
            )
        )
    where = ", ".join(reports_at) or "the --azure-findings file"
    if len(shown) > LINES:
        lines.append(f"... and {len(shown) - LINES} more: every case, reason and fix is in {where}")
    elif shown:
        lines.append(f"Every reason and how to fix it: {where}")
    return f"azure: {counts(shown)}", lines


def closing(
    findings: Sequence[Finding], audit_view: str | None, prefix: str = "azure"
) -> list[str]:
    """The run's (or a merge's) last lines: its counts in audit words, and the report to
    hand an auditor."""
    subscriptions = len({f.subscription.id.lower() for f in findings})
    lines = [
        f"{prefix}: {counts(findings) or 'no case judged'} "
        f"({len(findings)} case{'' if len(findings) == 1 else 's'} of {subscriptions} "
        f"subscription{'' if subscriptions == 1 else 's'})"
    ]
    if any(f.microsoft is not None for f in findings):  # --azure-cross-check
        lines.append(f"{prefix}: {counted(f.microsoft for f in findings)}")
    if audit_view is not None:
        lines.append(f"{prefix}: the audit report for auditors: {one_line(audit_view)}")
    return lines
