"""Findings as OCSF Compliance Finding events (class 2003, OCSF 1.7.0), one JSON object per
line, for a SIEM or a security data lake.

One event per control and subscription: the CIS recommendation as the compliance control,
its verdict as the compliance status (Pass, Fail, or Warning when it could not be
verified: "did not yield a result due to missing information"), the reason, the fix as
remediation, the controls of other frameworks it serves (Control.references) as the
requirements, and the subscription as the resource. What OCSF has no attribute for (the
management-group path, the home tenant's delegations, a waiver, the baseline mark) is in
`unmapped`. The suite's own tests validate every event with pydantic-ocsf's models of the
published 1.7.0 schema.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from compliance import fixes
from compliance.arm.secrets import redact
from compliance.facts import RunFacts
from compliance.findings import Finding, Outcome
from compliance.outputs.report import Report
from compliance.writing import replaced

OCSF_VERSION = "1.7.0"
COMPLIANCE_FINDING = 2003  # class_uid, in category 2 (Findings)
CREATE = 1  # activity_id: a finding was created

# compliance.status_id: 1 Pass, 2 Warning (no result: information missing), 3 Fail
STATUS = {
    Outcome.COMPLIANT: (1, "Pass"),
    Outcome.NOT_COMPLIANT: (3, "Fail"),
    Outcome.WAIVED: (3, "Fail"),
    Outcome.NOT_VERIFIABLE: (2, "Warning"),
}
# severity_id: 1 Informational (passed or not judged), 3 Medium (a notification control
# failing: alerts may reach nobody), 0 Unknown (not verifiable)
SEVERITY = {
    Outcome.COMPLIANT: (1, "Informational"),
    Outcome.NOT_COMPLIANT: (3, "Medium"),
    Outcome.WAIVED: (3, "Medium"),
    Outcome.NOT_VERIFIABLE: (0, "Unknown"),
}


def event(finding: Finding, run: RunFacts) -> dict[str, Any] | None:
    """The finding as an OCSF Compliance Finding; None for a skipped case (not judged)."""
    if finding.outcome is Outcome.SKIPPED:
        return None
    status_id, status = STATUS[finding.outcome]
    severity_id, severity = SEVERITY[finding.outcome]
    sub = finding.subscription
    standard = f"CIS Microsoft Azure Foundations Benchmark v{finding.cis_version}"
    uid = hashlib.sha256(f"{sub.id.lower()}/{finding.control.key}".encode()).hexdigest()[:32]
    checked = dt.datetime.fromisoformat(finding.checked_at) if finding.checked_at else None
    data: dict[str, Any] = {
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": COMPLIANCE_FINDING,
        "class_name": "Compliance Finding",
        "activity_id": CREATE,
        "activity_name": "Create",
        "type_uid": COMPLIANCE_FINDING * 100 + CREATE,
        "type_name": "Compliance Finding: Create",
        "time": int(checked.timestamp() * 1000) if checked else 0,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 3 if finding.outcome is Outcome.WAIVED else 1,  # Suppressed, or New
        "status": "Suppressed" if finding.outcome is Outcome.WAIVED else "New",
        "status_code": finding.outcome.value,
        "message": f"{standard} {finding.cis_id}: {finding.outcome.label}: {finding.reason}",
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": "azure-security-contacts",
                "vendor_name": "azure-security-contacts",
                "version": run.suite_version,
            },
            "tenant_uid": sub.tenant_id or run.tenant,
        },
        "finding_info": {
            "uid": uid,
            "title": finding.control.title,
            "desc": finding.reason,
            "types": [standard],
        },
        "compliance": {
            "standards": [standard],
            "control": finding.cis_id,
            "status_id": status_id,
            "status": status,
            "status_detail": finding.reason,
            "desc": finding.control.rationale,
        },
        "resources": [
            {
                "uid": f"/subscriptions/{sub.id}",
                "name": sub.display_name,
                "type": "Microsoft.Resources/subscriptions",
                "group": {"name": sub.management_group_path} if sub.management_groups else None,
                "labels": [f"state:{sub.state}"],
            }
        ],
        "unmapped": {
            "control_key": finding.control.key,
            "verdict": finding.outcome.value,
            "management_groups": [g.display_name for g in sub.management_groups],
            "home_tenant_id": sub.tenant_id,
            "managed_by_tenants": list(sub.managed_by_tenants),
            "waiver": None if finding.waiver is None else finding.waiver.reason,
            "baseline": None if finding.baseline is None else finding.baseline.value,
            "policy": run.policy_words(),
        },
    }
    # Their sources are not repeated in every event (a SIEM bills by the byte: they would
    # add 60 % to it); the findings file and the README cite them.
    requirements = [f"{r.framework}: {c}" for r in finding.control.references for c in r.controls]
    if requirements:
        data["compliance"]["requirements"] = requirements
    if finding.microsoft is not None:  # Defender for Cloud's verdict beside ours
        data["unmapped"]["microsoft"] = finding.microsoft.to_dict()
    if finding.fix:
        data["remediation"] = {"desc": fixes.text(finding.fix)}
    if data["resources"][0]["group"] is None:
        del data["resources"][0]["group"]
    return data


def write(path: Path, report: Report) -> None:
    with replaced(path) as out:
        for finding in report.findings:
            data = event(finding, report.facts)
            if data is not None:  # ASCII JSON, one event a line, no secret
                out.write(redact(json.dumps(data, separators=(",", ":"), allow_nan=False)) + "\n")
