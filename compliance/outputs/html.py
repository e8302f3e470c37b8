"""HTML fragments from the findings and facts: the run's facts, the per-control chart and
table, a banner for a run that did not run or finish, and one case's row (its verdict, fix
and evidence). pytest-html's report shows them (compliance.outputs.pytest_html).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping

from compliance import fixes
from compliance.facts import RunFacts
from compliance.findings import Finding, Outcome, compliance_percent
from compliance.outputs.words import evidence_lines, microsoft_line

COLOURS = {
    Outcome.COMPLIANT: "#2e7d32",
    Outcome.NOT_COMPLIANT: "#c62828",
    Outcome.NOT_VERIFIABLE: "#ef6c00",
    Outcome.WAIVED: "#1565c0",
}
JUDGED = tuple(COLOURS)  # every outcome but skipped


# --- counts and the summary chart -------------------------------------------------------------


def summary_svg(counts: Mapping[str, Counter[Outcome]], labels: Mapping[str, str]) -> str:
    """One stacked bar per control, inline SVG (the report must open offline)."""
    width, bar, gap, left = 760, 22, 14, 230
    rows = []
    for index, (key, tally_) in enumerate(counts.items()):
        y = 10 + index * (bar + gap)
        # Skipped cases were not judged: the bar, like the percentage, is of the judged ones.
        total = sum(tally_[o] for o in JUDGED) or 1
        x = float(left)
        rows.append(
            f'<text x="0" y="{y + 15}" font-size="13">{html.escape(labels.get(key, key))}</text>'
        )
        for outcome in JUDGED:
            share = (width - left - 70) * tally_[outcome] / total
            if share:
                rows.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{share:.1f}" height="{bar}" '
                    f'fill="{COLOURS[outcome]}"><title>{outcome.label}: '
                    f"{tally_[outcome]}</title></rect>"
                )
                x += share
        percent = compliance_percent(tally_)
        shown = "n/a" if percent is None else f"{percent:.0f} %"
        rows.append(f'<text x="{width - 62}" y="{y + 15}" font-size="13">{shown}</text>')
    legend_y = 20 + len(counts) * (bar + gap)
    x = float(left)
    for outcome in JUDGED:
        rows.append(
            f'<rect x="{x}" y="{legend_y - 10}" width="10" height="10" '
            f'fill="{COLOURS[outcome]}"/><text x="{x + 14}" y="{legend_y}" '
            f'font-size="12">{outcome.label}</text>'
        )
        x += 14 + 7 * len(outcome.label) + 18
    height = legend_y + 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="compliance per '
        f'control" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        + "".join(rows)
        + "</svg>"
    )


def summary_table(counts: Mapping[str, Counter[Outcome]], labels: Mapping[str, str]) -> str:
    head = "".join(f"<th>{o.label}</th>" for o in Outcome)
    body = []
    for key, tally_ in counts.items():
        percent = compliance_percent(tally_)
        cells = "".join(f'<td class="azure-{o.value}">{tally_[o]}</td>' for o in Outcome)
        shown = "n/a" if percent is None else f"{percent:.1f} %"
        body.append(
            f'<tr data-control="{html.escape(key)}"><td>{html.escape(labels.get(key, key))}</td>'
            f'{cells}<td class="azure-percent">{shown}</td></tr>'
        )
    return (
        f'<table id="azure-summary"><tr><th>control</th>{head}<th>compliance</th></tr>'
        + "".join(body)
        + "</table>"
    )


def run_error_banner(message: str) -> str:
    """The first thing a report of a run that never started, or did not finish, shows."""
    return (
        '<div id="azure-run-error" role="alert" style="background:#c62828;color:#fff;'
        f'padding:12px;font-weight:bold">{html.escape(message)}.</div>'
    )


def header_block(facts: RunFacts) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in facts.rows()
    )
    return f'<table id="azure-run">{rows}</table>'


# --- one row's expansion ----------------------------------------------------------------------


def row_html(finding: Finding) -> str:
    """The verdict, the fix (for a failure) and the evidence, as one HTML fragment."""
    parts = [
        f'<div class="azure-row"><p><b>{html.escape(finding.outcome.label)}'
        f"</b>: {html.escape(finding.reason)}</p>"
    ]
    if finding.subscription.management_groups:
        parts.append(
            f"<p>Management groups: {html.escape(finding.subscription.management_group_path)}</p>"
        )
    if finding.waiver is not None:
        waiver = finding.waiver
        parts.append(
            f"<p>Waiver ({html.escape(waiver.state)}): {html.escape(waiver.reason)}, "
            f"approved by {html.escape(waiver.approved_by)}, expires "
            f"{html.escape(waiver.expires)}</p>"
        )
    if finding.fix:
        parts.append(f"<p>Why it matters: {html.escape(finding.control.rationale)}</p>")
        parts.append(
            '<h4>How to fix</h4><pre class="azure-remediation">'
            f"{html.escape(fixes.text(finding.fix))}</pre>"
        )
    microsoft = microsoft_line(finding)
    if microsoft is not None:
        parts.append(f'<p class="azure-microsoft">{html.escape(microsoft)}</p>')
    # Evidence in a few short lines: a tenant of thousands of subscriptions makes a report
    # of tens of thousands of rows, and every byte here is repeated in each.
    lines = evidence_lines(finding.evidence)
    parts.append("".join(f'<p class="azure-evidence">{html.escape(line)}</p>' for line in lines))
    if finding.outcome is not Outcome.COMPLIANT:
        for body in finding.raw_answers:
            parts.append(
                "<details><summary>Raw response</summary>"
                f'<pre class="azure-raw">{html.escape(body)}</pre></details>'
            )
    parts.append("</div>")
    return "".join(parts)
