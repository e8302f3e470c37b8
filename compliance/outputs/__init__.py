"""Every file a run writes, one module per output, and the one registry of them.

Each output renders a `Report` (what one run judged: its facts and findings) its own way;
none reads another's text. The registry (`OUTPUTS`) names each output's option, its writer
and what it is, in the order they are written and listed: a new format is a module and a
line here (and its option in compliance.options). The run (compliance.recorder) checks
every path before the audit and writes each output it was given a path for.

    report.py         Report: what every output renders
    words.py          the words every output shares: outcome words, a case's story
    html.py           HTML fragments: facts, the per-control chart and table, a case's row
    audit_view.py     the audit view (reports/audit.html), for auditors
    junit.py          JUnit XML, for the pipeline's tests tab
    findings_json.py  the findings as one JSON document
    findings_csv.py   the findings as CSV
    ocsf.py           the findings as OCSF Compliance Finding events
    step_summary.py   the Markdown job summary
    pytest_html.py    pytest-html's report: the suite's additions to it (pytest-html writes it)
    terminal.py       the terminal's closing lines
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compliance.evidence import write_bundle
from compliance.outputs import (
    audit_view,
    findings_csv,
    findings_json,
    junit,
    ocsf,
    step_summary,
)
from compliance.outputs.report import OtherCase, Report

__all__ = ["OUTPUTS", "OtherCase", "Output", "Report", "by_dest"]


@dataclass(frozen=True)
class Output:
    dest: str  # the option's destination (and ini key)
    flag: str
    what: str  # what a reader calls it
    # Writes the report to the path; None: another plugin writes it (pytest-html).
    write: Callable[[Path, Report], None] | None
    # A page a person reads every case's reason and fix in: what summaries point to.
    for_readers: bool = False
    # Its name in a folder of reports (what `python -m compliance merge` writes); None: not
    # written by a merge.
    file: str | None = None
    # The environment variable naming a file shared with other steps, appended to when the
    # option is not set (GitHub's $GITHUB_STEP_SUMMARY).
    shared_env: str | None = None
    append: Callable[[Path, Report], None] | None = None

    def shared_file(self) -> Path | None:
        """The file shared with other steps this run appends to, when the CI names one."""
        shared = os.environ.get(self.shared_env) if self.shared_env else None
        return Path(shared) if shared else None


def _evidence(path: Path, report: Report) -> None:
    if report.bundle is not None:
        write_bundle(path, report.bundle())


OUTPUTS: tuple[Output, ...] = (
    Output(
        "azure_audit_html",
        "--azure-audit-html",
        "the audit view",
        audit_view.write,
        for_readers=True,
        file="audit.html",
    ),
    Output("htmlpath", "--html", "pytest-html's report", None, for_readers=True),
    Output("xmlpath", "--junitxml", "JUnit", junit.write, for_readers=True, file="junit.xml"),
    Output(
        "azure_findings",
        "--azure-findings",
        "the findings",
        findings_json.write,
        file="findings.json",
    ),
    Output(
        "azure_findings_csv",
        "--azure-findings-csv",
        "the findings CSV",
        findings_csv.write,
        file="findings.csv",
    ),
    Output(
        "azure_findings_ocsf",
        "--azure-findings-ocsf",
        "the OCSF events",
        ocsf.write,
        file="findings.ocsf.jsonl",
    ),
    Output(
        "azure_evidence",
        "--azure-evidence",
        "the evidence bundle",
        _evidence,
        file="evidence.json",
    ),
    Output(
        "azure_step_summary",
        "--azure-step-summary",
        "the job summary",
        step_summary.write,
        shared_env="GITHUB_STEP_SUMMARY",
        append=step_summary.append,
        file="summary.md",
    ),
)


def by_dest(dest: str) -> Output:
    return next(o for o in OUTPUTS if o.dest == dest)
