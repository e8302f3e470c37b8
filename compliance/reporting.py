"""The run's reports, from pytest's reports: each case becomes a Finding where it ran, its
failure text the reason and the fix, and where reports are written (the controller under
pytest-xdist) the findings files, the JUnit properties and pytest-html's additions.
"""

from __future__ import annotations

import html
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

# pytest offers no public way to build a failure representation whose JUnit message is one
# line while its text is the whole story; these are the classes its own reports use, and
# what pytest-xdist knows how to carry from a worker.
from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTracebackNative

# JUnit's testsuite properties and an errored case for a run that never started: pytest's
# record_testsuite_property is a fixture (no test runs then), so the LogXML object is
# reached through the stash key junitxml keeps it under.
from _pytest.junitxml import xml_key as junit_xml_key

from compliance import __version__, auditview, ocsf, reports
from compliance.arm import AuditError, Subscription, Unverifiable
from compliance.arm.secrets import redact
from compliance.baseline import Drift, Verdicts, compare, of_run
from compliance.contacts import SecurityContacts
from compliance.controls import CATALOGUE, Control
from compliance.evidence import make_bundle, write_bundle
from compliance.findings import (
    Finding,
    Outcome,
    WaiverFacts,
    evidence,
    findings_document,
    ordered,
    raw_answers,
    tally,
)
from compliance.session import ACTIVE_WAIVER, EXPIRED_WAIVER, READ, RUN, VERDICT, setting
from compliance.text import one_line, printable


def outcome_of(
    report: pytest.TestReport, excinfo: pytest.ExceptionInfo[BaseException] | None
) -> Outcome | None:
    """What a phase's report decides about its case; None when a later phase decides."""
    if report.when == "setup":
        if report.failed:
            return Outcome.NOT_VERIFIABLE
        return Outcome.SKIPPED if report.skipped else None
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return Outcome.WAIVED if report.skipped else Outcome.COMPLIANT
        if report.failed and not (excinfo and excinfo.errisinstance(AssertionError)):
            return Outcome.NOT_VERIFIABLE  # the check itself broke: no verdict was reached
        return Outcome.COMPLIANT if report.passed else Outcome.NOT_COMPLIANT
    return None


def _waiver_facts(item: pytest.Item) -> WaiverFacts | None:
    for state, key in (("active", ACTIVE_WAIVER), ("expired", EXPIRED_WAIVER)):
        waiver = item.stash.get(key, None)
        if waiver is not None:
            return WaiverFacts(state, waiver.reason, waiver.approved_by, waiver.expires.isoformat())
    return None


def finding_for(
    item: pytest.Item,
    report: pytest.TestReport,
    call: pytest.CallInfo[None],
    control: Control,
    subscription: Subscription,
    outcome: Outcome,
) -> Finding:
    """The case as a Finding, from its verdict (judged once, in setup) or what stopped it."""
    read = item.stash.get(READ, None)
    judged = item.stash.get(VERDICT, None)
    remediation = ""
    responses: tuple[Any, ...] = ()
    error = call.excinfo.value if call.excinfo is not None else None
    if judged is not None and not judged.verifiable:
        reason = judged.reason
        remediation = judged.remediation
    elif isinstance(error, Unverifiable):
        reason = str(error)
        responses = error.responses
    elif outcome is Outcome.NOT_VERIFIABLE:  # the check itself broke before a verdict
        reason = f"the check failed: {type(error).__name__}: {error}"
    elif judged is not None:
        reason = judged.reason
        remediation = "" if judged.compliant else judged.remediation
    else:  # a skip: (path, line, message)
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")  # type: ignore[index]
    run = item.config.stash[RUN]
    return Finding(
        subscription=subscription,
        control=control,
        cis_version=run.cis_version,
        outcome=outcome,
        reason=reason,
        remediation=remediation,
        waiver=_waiver_facts(item),
        evidence=_once(item.config, read, evidence, responses),
        checked_at=reports.now(),
        raw_answers=(
            () if outcome is Outcome.COMPLIANT else _once(item.config, read, raw_answers, responses)
        ),
        baseline=_against(run.baseline, subscription, control, outcome),
    )


def _against(
    baseline: Verdicts | None, subscription: Subscription, control: Control, outcome: Outcome
) -> str | None:
    """What the case is against the run's baseline: new, known, fixed (None: no baseline)."""
    if baseline is None:
        return None
    case = (subscription.id.lower(), control.key)
    if outcome is Outcome.NOT_COMPLIANT:
        return "known" if case in baseline.known else "new"
    return "fixed" if outcome is Outcome.COMPLIANT and case in baseline.failing else None


_SHARED = pytest.StashKey[dict[tuple[int, str], tuple[Any, Any]]]()


def _once(
    config: pytest.Config,
    read: SecurityContacts | None,
    make: Callable[[SecurityContacts | None, Any], Any],
    responses: Any,
) -> Any:
    """`make(read, responses)`, made once per subscription read: its four controls share it."""
    if read is None:
        return make(read, responses)
    shared = config.stash.setdefault(_SHARED, {})
    key = (id(read), make.__name__)
    if key not in shared:
        shared[key] = (read, make(read, responses))  # holding `read` keeps its id unique
    return shared[key][1]


def failure_text(item: pytest.Item, finding: Finding, error: BaseException) -> ReprExceptionInfo:
    """The whole story of a failure or an error (title, reason, how to fix it), instead of
    a traceback through the fixture or the assertion; JUnit and -ra get its one line."""
    cis = f"CIS {finding.cis_version} {finding.cis_id}"
    text = f"{cis} {finding.control.title}\n"
    if finding.subscription.management_groups:
        # display names, whose line breaks printable() would keep
        text += f"Management groups: {one_line(finding.subscription.management_group_path)}\n"
    if finding.outcome is Outcome.NOT_VERIFIABLE:
        text += f"Could not be verified: {error}"
    else:
        text += str(error)
    expired = item.stash.get(EXPIRED_WAIVER, None)
    if expired is not None:
        text += f"\nA waiver for this case expired and was ignored: {one_line(expired.describe())}"
    return verdict_repr(
        printable(redact(text)),
        one_line(redact(f"{cis}: {finding.outcome.label}: {finding.reason}")),
        str(item.path),
        item.location[1] or 0,
    )


def verdict_repr(text: str, message: str, path: str, lineno: int) -> ReprExceptionInfo:
    """A failure representation that prints `text` whole, while JUnit's failure message
    and -ra's summary line get the one-line `message`."""
    return ReprExceptionInfo(
        reprtraceback=ReprTracebackNative([text + "\n"]),
        reprcrash=ReprFileLocation(path, lineno, message),
    )


def did_not_run(error: AuditError) -> str:
    return f"the audit did not run: {one_line(redact(str(error)))}"


def run_error_reports(message: str) -> list[pytest.TestReport]:
    """A run that never started, as one errored case (setup, then teardown) for JUnit."""
    nodeid, location = "azure::audit did not run", ("azure", None, "audit did not run")
    return [
        pytest.TestReport(
            nodeid, location, {}, "failed", verdict_repr(message, message, "azure", 0), "setup"
        ),
        pytest.TestReport(nodeid, location, {}, "passed", None, "teardown"),
    ]


class Reporting:
    """Collects every case's finding where reports are written (the controller under
    pytest-xdist) and writes the run facts and findings files at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.findings: dict[str, Finding] = {}
        self._drift: tuple[Drift, Verdicts] | None = None

    @pytest.hookimpl(tryfirst=True)  # before pytest-html draws the row
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        finding = getattr(report, "azure_finding", None)
        if finding is not None:
            self.findings[report.nodeid] = finding

    def of(self, report: pytest.TestReport) -> Finding | None:
        """The finding the phase `report` decided (None for a phase that decided nothing)."""
        return getattr(report, "azure_finding", None)

    def ordered(self) -> list[Finding]:
        return ordered(self.findings.values())

    def run_facts(self) -> dict[str, Any]:
        run = self.config.stash[RUN]
        audit = run.audit
        settings = audit.settings
        identity = audit.identity
        who = identity.get("upn") or identity.get("unique_name") or identity.get("appid")
        tenants = sorted({s.tenant_id for s in audit.known_subscriptions() if s.tenant_id})
        if run.replay is not None:
            target = f"replay of {setting(self.config, 'azure_replay')}"
        else:
            target = "demo tenant (bundled emulator)" if settings.demo else settings.cloud
        return {
            "target": target,
            "arm_endpoint": audit.endpoint,
            "tenant": settings.tenant or ", ".join(tenants) or "-",
            "identity": (
                f"{identity.get('name', who)} ({who}, object id {identity.get('oid', '-')})"
                if identity
                else "unknown (the token carries no readable claims)"
            ),
            "auth": "emulator token" if settings.demo else settings.auth,
            "api_versions": ", ".join(audit.api_versions()) or "-",
            "cis_version": run.cis_version,
            "suite_version": __version__,
            "started": run.started,
            "duration_s": round(time.time() - run.started_at, 1),
            "subscriptions": len(audit.known_subscriptions()),
            "management_groups": ", ".join(settings.management_groups) or "-",
            "waivers": run.waivers_source or "-",
            **({"baseline": self.drift_line()} if run.baseline is not None else {}),
            **({"error": did_not_run(run.error)} if run.error is not None else {}),
        }

    def drift(self) -> tuple[Drift, Verdicts] | None:
        """How this run compares with its baseline, and its verdicts (None: no baseline).
        Asked for at the session's end only (facts, reports, terminal): computed once."""
        baseline = self.config.stash[RUN].baseline
        if baseline is not None and self._drift is None:
            now = of_run(self.findings.values())
            self._drift = compare(baseline, now), now
        return self._drift

    def drift_line(self) -> str:
        compared = self.drift()
        baseline = self.config.stash[RUN].baseline
        if compared is None or baseline is None:
            return ""
        return f"{baseline.source}: {compared[0].line()}"

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            return
        facts = self.run_facts()
        xml = self.config.stash.get(junit_xml_key, None)
        if xml is not None:
            for name, value in facts.items():
                xml.add_global_property(f"azure.{name}", str(value))
            if "error" in facts:  # pipelines publish JUnit always(): it must not look green
                for report in run_error_reports(facts["error"]):
                    xml.pytest_runtest_logreport(report)
        findings = self.ordered()  # sorted once, for every file below
        writers: dict[str, Callable[[Path], None]] = {
            "azure_findings": lambda path: reports.write_findings_json(
                path, findings_document(facts, findings)
            ),
            "azure_findings_csv": lambda path: reports.write_findings_csv(path, findings),
            "azure_findings_ocsf": lambda path: ocsf.write(path, findings, facts),
            "azure_evidence": lambda path: write_bundle(path, self.bundle(facts)),
            "azure_audit_html": lambda path: auditview.write(
                path,
                report_title(self.config),
                facts,
                findings,
                self.config.stash[RUN].audit.settings.management_groups,
            ),
            # GitHub's step summary file is shared by a job's steps: appended to, not replaced
            "azure_step_summary": lambda path: reports.write_summary(
                path,
                self.step_summary(facts, findings),
                append=setting(self.config, "azure_step_summary") is None,
            ),
        }
        for dest, write in writers.items():
            path = setting(self.config, dest)
            if dest == "azure_step_summary":  # a GitHub Actions step names its file
                path = path or os.environ.get("GITHUB_STEP_SUMMARY")
            if not path:
                continue
            try:
                write(Path(path))
            except OSError as exc:
                # The audit's other reports still get written; the run is not green.
                sys.stderr.write(f"ERROR: --{dest.replace('_', '-')}: cannot write {path}: {exc}\n")
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def step_summary(self, facts: dict[str, Any], findings: list[Finding]) -> str:
        config = self.config
        return reports.step_summary(
            report_title(config),
            facts,
            tally(findings),
            control_labels(config, titled=True),
            findings,
            [p for p in (config.option.htmlpath, config.option.xmlpath) if p],
        )

    def bundle(self, facts: dict[str, Any]) -> dict[str, Any]:
        run = self.config.stash[RUN]
        found, reads = run.audit.evidence()
        facts = {
            **facts,
            "identity_claims": run.audit.identity,
            "served_api_version": run.audit.served_api_version(),
            "demo": run.demo_defaults,
            "ended": reports.now(),
        }
        return make_bundle(facts, found, reads, run.audit.group_answers)


# A CI log shows at most this many failing cases; the reports hold every one.
SUMMARY_LINES = 200


def summary(findings: Iterable[Finding], reports_at: Iterable[str]) -> tuple[str, list[str]]:
    """The terminal's closing section: a title with the counts, and one line per case not
    compliant or not verifiable, at most SUMMARY_LINES, then how many more and where."""
    shown = [f for f in findings if f.outcome in (Outcome.NOT_COMPLIANT, Outcome.NOT_VERIFIABLE)]
    counts = Counter(f.outcome for f in shown)
    title = ", ".join(f"{n} {o.label}" for o, n in sorted(counts.items()))
    lines = [
        one_line(
            f"{f.outcome.label.upper()}{' (KNOWN)' if f.baseline == 'known' else ''}  "
            f"CIS {f.cis_id} {f.subscription.display_name} "
            f"({f.subscription.id}): {f.reason}"
        )[:300]
        for f in shown[:SUMMARY_LINES]
    ]
    where = ", ".join(reports_at) or "the --azure-findings file"
    if len(shown) > SUMMARY_LINES:
        lines.append(f"... and {len(shown) - SUMMARY_LINES} more: every case, reason and fix is "
                     f"in {where}")  # fmt: skip
    elif shown:
        lines.append(f"Every reason and how to fix it: {where}")
    return f"azure: {title}", lines


def report_title(config: pytest.Config) -> str:
    return (
        f"Azure security contacts: CIS Microsoft Azure Foundations {config.stash[RUN].cis_version}"
    )


def control_labels(config: pytest.Config, *, titled: bool = False) -> dict[str, str]:
    """Each control of the run's CIS version as `CIS 8.1.13 contact_email` (or its title)."""
    version = config.stash[RUN].cis_version
    return {
        c.key: f"CIS {c.cis_id(version)} {c.title if titled else c.key}"
        for c in CATALOGUE
        if c.cis_id(version)
    }


class HtmlReport:
    """pytest-html additions: the run's facts and a summary chart before the table,
    subscription/control/reason columns, and per row the verdict, fix and evidence."""

    def __init__(self, reporting: Reporting) -> None:
        self.reporting = reporting

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = report_title(self.reporting.config)

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        run = self.reporting.config.stash[RUN]
        labels = control_labels(self.reporting.config)
        counts = tally(self.reporting.findings.values())
        if run.error is not None:
            prefix.append(reports.run_error_banner(did_not_run(run.error)))
        prefix.extend(
            [
                "<h2>Audit</h2>",
                reports.header_block(self.reporting.run_facts()),
                "<h2>Compliance per control</h2>",
                reports.summary_svg(counts, labels),
                reports.summary_table(counts, labels),
            ]
        )

    # pytest-html's Duration (the verdict is judged in setup, from answers read in the
    # background: it shows 0 ms) and Links (always empty here) columns are left out.
    @staticmethod
    def _useful(cells: list[str]) -> list[str]:
        """The cells less Duration and Links, told by their opening tag (a cell's content
        holds a subscription's name, which may say anything)."""
        dropped = ("col-duration", "col-links", 'data-column-type="duration"')
        return [
            c
            for c in cells
            if not any(d in c.split(">", 1)[0] for d in dropped) and c.strip() != "<th>Links</th>"
        ]

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[:] = self._useful(cells)
        cells[2:2] = [
            '<th class="sortable" data-column-type="subscription">Subscription</th>',
            '<th class="sortable" data-column-type="subscriptionId">Subscription ID</th>',
            '<th class="sortable" data-column-type="control">Control</th>',
            "<th>Verdict reason</th>",
        ]

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        # pytest-html writes the test id into the page as it is, and a case id holds a
        # subscription's display name: anyone who may rename a subscription could put script
        # into the auditor's browser. Every row's id is escaped here.
        cells[:] = self._useful(cells)
        cells[1] = f'<td class="col-testId">{html.escape(report.nodeid)}</td>'
        finding = self.reporting.of(report)
        values = (
            ("subscription", finding.subscription.display_name if finding else ""),
            ("subscriptionId", finding.subscription.id if finding else ""),
            ("control", f"CIS {finding.cis_id}" if finding else ""),
            ("reason", finding.reason if finding else ""),
        )
        cells[2:2] = [f'<td class="col-{k}">{html.escape(redact(v))}</td>' for k, v in values]

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        finding = self.reporting.of(report)
        if finding is not None:
            data[:] = [redact(reports.row_html(finding))]
