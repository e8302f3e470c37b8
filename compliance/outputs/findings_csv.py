"""The findings as CSV, one row per control and subscription, for spreadsheets: every cell
is made inert (a formula prefixed, control characters escaped)."""

from __future__ import annotations

import csv
from pathlib import Path

from compliance import fixes
from compliance.arm.secrets import redact
from compliance.findings import Finding
from compliance.outputs.report import Report
from compliance.text import csv_cell
from compliance.writing import replaced

COLUMNS = (
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
    "references",  # added within schema v1, after the others: they keep their places
    # Defender for Cloud's verdict beside ours (--azure-cross-check; empty without)
    "microsoft_assessment",
    "microsoft_status",
    "microsoft_status_changed",
    "microsoft_agrees",
    "microsoft_why",
)
AGREES = {True: "true", False: "false", None: ""}


def write(path: Path, report: Report) -> None:
    with replaced(path, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for f in report.findings:
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
                "; ".join(r.text for r in f.control.references),
                *_microsoft(f),
            )
            writer.writerow([csv_cell(redact("" if cell is None else str(cell))) for cell in row])


def _microsoft(finding: Finding) -> tuple[str | None, ...]:
    m = finding.microsoft
    if m is None:
        return ("",) * 5
    return (m.assessment, m.status, m.status_changed, AGREES[m.agrees], m.why)
