"""The findings as one JSON document (schema compliance.findings.FINDINGS_SCHEMA), for a SIEM,
a ticketing system, a later run's baseline and a merge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compliance.arm.secrets import redact
from compliance.findings import (
    FINDINGS_SCHEMA,
    Finding,
    Outcome,
    compliance_percent,
    references,
    tally,
)
from compliance.outputs.report import Report
from compliance.writing import write_json


def document(run: Mapping[str, Any], findings: Sequence[Finding]) -> dict[str, Any]:
    controls = {f.control.key: f.control for f in findings}
    return {
        "schema": FINDINGS_SCHEMA,
        "run": dict(run),
        "summary": {
            key: {**{o.value: c[o] for o in Outcome}, "compliance_percent": compliance_percent(c)}
            for key, c in tally(findings).items()
        },
        # each control's references to other frameworks with their sources, once
        "references": {key: references(control, sources=True) for key, control in controls.items()},
        "findings": (f.to_dict() for f in findings),  # each made as it is written
    }


def write(path: Path, report: Report) -> None:
    """One finding a line, each made as it is written: a large tenant's findings are
    hundreds of megabytes. ASCII: whatever Azure sent (a lone surrogate, say) is an escape."""
    data = document(report.facts.to_dict(), report.findings)
    write_json(path, data, "findings", clean=redact)
