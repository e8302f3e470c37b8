"""What the run's readers get, from its Findings (compliance.findings): the HTML audit
report's additions, and the findings files (JSON and CSV). Testable without pytest.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import html
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from compliance import fixes
from compliance.arm.secrets import redact
from compliance.assessment import Evidence
from compliance.contacts import Contact
from compliance.findings import Baseline, Finding, Outcome, compliance_percent
from compliance.text import csv_cell, markdown_text
from compliance.writing import replaced, write_text

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


# The run facts' names as a reader sees them (the JUnit properties and findings keep the keys).
FACT_LABELS = {
    "target": "Audited",
    "arm_endpoint": "ARM endpoint",
    "tenant": "Tenant",
    "identity": "Identity",
    "auth": "Signed in with",
    "api_versions": "securityContacts api-version",
    "cis_version": "CIS Benchmark version",
    "suite_version": "Suite version",
    "started": "Started",
    "duration_s": "Duration (s)",
    "subscriptions": "Subscriptions",
    "management_groups": "Management groups audited",
    "waivers": "Waivers",
    "baseline": "Against the baseline",
    "error": "Error",
}


def header_block(meta: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(FACT_LABELS.get(k, k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in meta.items()
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


def evidence_lines(found: Evidence) -> list[str]:
    """What ARM answered and the contacts it held, one short line each."""
    answers = "; ".join(
        f"HTTP {r.status} at {r.received_at} (x-ms-request-id {r.request_id})"
        for r in found.responses
    )
    version = f", api-version {found.api_version}" if found.judged else ""
    lines = [f"Answers: {answers or 'none'}{version}"]
    return lines + [_contact_line(c) for c in found.contacts or ()]


def _contact_line(contact: Contact) -> str:
    enabled = {True: "enabled", False: "DISABLED", None: "no on/off setting"}[contact.enabled]
    severity = contact.alert_minimal_severity
    alerts = _from(severity) if severity else "on, with no severity set"
    if not contact.alert_notifications:
        alerts = "off"
    roles = ", ".join(contact.notify_roles) if contact.notify_roles_enabled else "off"
    return (
        f"contact '{contact.name}': {'; '.join(contact.addresses) or '(no address)'}"
        f" | {enabled} | alerts: {alerts} | roles: {roles or '(none)'}"
        f" | attack paths: {_from(contact.attack_path_minimal_risk)}"
    )


def _from(level: str | None) -> str:
    return f"{level} and above" if level else "off"


# --- findings files ---------------------------------------------------------------------------


def write_findings_json(path: Path, document: Mapping[str, Any]) -> None:
    # ASCII: whatever Azure sent (a lone surrogate, say) is written as a JSON escape.
    write_text(path, redact(json.dumps(document, indent=2, allow_nan=False)) + "\n")


CSV_COLUMNS = (
    "subscription_id",
    "subscription_name",
    "management_group_path",
    "home_tenant_id",
    "managed_by_tenants",
    "control",
    "cis_version",
    "cis_id",
    "verdict",
    "reason",
    "remediation",
    "waiver",
    "api_version",
    "request_ids",
    "checked_at",
)


def write_findings_csv(path: Path, findings: Iterable[Finding]) -> None:
    with replaced(path, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for f in findings:
            row = (
                f.subscription.id,
                f.subscription.display_name,
                f.subscription.management_group_path,
                f.subscription.tenant_id,
                " ".join(f.subscription.managed_by_tenants),
                f.control.key,
                f.cis_version,
                f.cis_id,
                f.outcome.value,
                f.reason,
                fixes.text(f.fix),
                f"{f.waiver.state}: {f.waiver.reason}" if f.waiver else "",
                f.evidence.api_version if f.evidence.judged else "",
                " ".join(r.request_id or "" for r in f.evidence.responses),
                f.checked_at,
            )
            writer.writerow([csv_cell(redact("" if cell is None else str(cell))) for cell in row])


# --- the CI job summary ----------------------------------------------------------------------

# A job summary lists at most this many cases (GitHub shows up to 1 MiB per step).
STEP_SUMMARY_CASES = 100


def step_summary(
    title: str,
    facts: Mapping[str, Any],
    counts: Mapping[str, Counter[Outcome]],
    labels: Mapping[str, str],
    findings: Iterable[Finding],
    reports_at: Iterable[str],
) -> str:
    """A Markdown job summary (GitHub Actions' $GITHUB_STEP_SUMMARY): per control its counts
    and compliance, then each case not compliant or not verifiable with its reason, capped."""

    def md(value: object) -> str:  # secrets out first: escaping would hide them from redact
        return markdown_text(redact(str(value)))

    lines = [f"## {title}", ""]
    if "error" in facts:
        lines += [f"**{md(facts['error'])}.**", ""]
    lines += [
        f"{md(facts['target'])}, tenant {md(facts['tenant'])}, "
        f"{facts['subscriptions']} subscriptions, identity {md(facts['identity'])}, "
        f"api-version {md(facts['api_versions'])}, suite "
        f"{md(facts['suite_version'])}, started {md(facts['started'])}",
        "",
        *([f"Against the baseline {md(facts['baseline'])}", ""] if "baseline" in facts else []),
        "| Control | " + " | ".join(o.label.capitalize() for o in Outcome) + " | Compliance |",
        "|---|" + "---:|" * (len(Outcome) + 1),
    ]
    for key, tally_ in counts.items():
        percent = compliance_percent(tally_)
        lines.append(
            f"| {md(labels.get(key, key))} | "
            + " | ".join(str(tally_[o]) for o in Outcome)
            + f" | {'n/a' if percent is None else f'{percent:.1f} %'} |"
        )
    shown = [f for f in findings if f.outcome in (Outcome.NOT_COMPLIANT, Outcome.NOT_VERIFIABLE)]
    if shown:
        lines += [
            "",
            f"### Not compliant or not verifiable: {len(shown)}",
            "",
            "| Verdict | Control | Subscription | Reason |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {f.outcome.label}{' (known)' if f.baseline is Baseline.KNOWN else ''} | "
            f"CIS {md(f.cis_id)} | "
            f"{md(f.subscription.display_name)} ({md(f.subscription.id)}) | "
            f"{md(redact(f.reason)[:1000])} |"
            for f in shown[:STEP_SUMMARY_CASES]
        ]
        where = md(", ".join(reports_at) or "the findings file")
        rest = len(shown) - STEP_SUMMARY_CASES
        lines += ["", f"{rest} more: see {where}." if rest > 0 else f"How to fix each: {where}."]
    return "\n".join(lines) + "\n"


def write_summary(path: Path, text: str, *, append: bool) -> None:
    """GitHub's step summary file is shared by a step's writers: appended to in one write;
    a file of the run's own is replaced whole."""
    if not append:
        write_text(path, text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(text)


def now() -> str:
    """The time in UTC, to the second."""
    return _formatted(int(time.time()))


@functools.lru_cache(maxsize=1)  # formatted once a second: every case asks
def _formatted(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).isoformat()
