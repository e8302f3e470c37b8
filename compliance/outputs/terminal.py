"""The terminal's closing lines: one per case not compliant or not verifiable, capped, then
how many more and where every reason and fix is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from compliance.findings import Baseline, Finding, Outcome
from compliance.text import one_line

# A CI log shows at most this many failing cases; the reports hold every one.
LINES = 200


def summary(findings: Iterable[Finding], reports_at: Iterable[str]) -> tuple[str, list[str]]:
    """The closing section: a title with the counts, and one line per case not compliant or
    not verifiable, at most LINES, then how many more and where."""
    shown = [f for f in findings if f.outcome in (Outcome.NOT_COMPLIANT, Outcome.NOT_VERIFIABLE)]
    counts = Counter(f.outcome for f in shown)
    title = ", ".join(f"{n} {o.label}" for o, n in sorted(counts.items()))
    lines = [
        one_line(
            f"{f.outcome.label.upper()}{' (KNOWN)' if f.baseline is Baseline.KNOWN else ''}  "
            f"CIS {f.cis_id} {f.subscription.display_name} "
            f"({f.subscription.id}): {f.reason}"
        )[:300]
        for f in shown[:LINES]
    ]
    where = ", ".join(reports_at) or "the --azure-findings file"
    if len(shown) > LINES:
        lines.append(f"... and {len(shown) - LINES} more: every case, reason and fix is in {where}")
    elif shown:
        lines.append(f"Every reason and how to fix it: {where}")
    return f"azure: {title}", lines
