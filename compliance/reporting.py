"""The run's reports, from pytest's reports: each case becomes a Finding where it ran, its
failure text the reason and the fix, and where reports are written (the controller under
pytest-xdist) the findings files, the JUnit properties and pytest-html's additions.
"""

from __future__ import annotations

import html
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

# pytest offers no public way to build a failure representation whose JUnit message is one
# line while its text is the whole story; these are the classes its own reports use, and
# what pytest-xdist knows how to carry from a worker.
from _pytest._code.code import (
    ReprExceptionInfo,
    ReprFileLocation,
    ReprTracebackNative,
    Traceback,
)

# JUnit's testsuite properties and an errored case for a run that never started: pytest's
# record_testsuite_property is a fixture (no test runs then), so the LogXML object is
# reached through the stash key junitxml keeps it under.
from _pytest.junitxml import xml_key as junit_xml_key

from compliance import __version__, auditview, fixes, ocsf, reports
from compliance.arm import AuditError
from compliance.arm.secrets import redact
from compliance.assessment import Evidence, assess
from compliance.baseline import Drift, Verdicts, compare, of_run
from compliance.contacts import Unverifiable
from compliance.controls import CATALOGUE, CONTROLS, Control
from compliance.evidence import make_bundle, write_bundle
from compliance.findings import (
    Baseline,
    Finding,
    Outcome,
    WaiverFacts,
    findings_document,
    ordered,
    tally,
)
from compliance.fixes import Fix, Note
from compliance.model import Subscription
from compliance.session import (
    ACTIVE_WAIVER,
    ASSESSMENT,
    EXPIRED_WAIVER,
    OUTPUTS,
    RUN,
    Run,
    case_of,
    output_path,
    setting,
)
from compliance.text import one_line, printable
from compliance.writing import beside, write_text


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
    """The case as a Finding: its control's part of its subscription's assessment (made once,
    in setup), or what stopped the case before it had one."""
    assessment = item.stash.get(ASSESSMENT, None)
    judged = assessment.verdicts.get(control.key) if assessment is not None else None
    fix: Fix = ()
    error = call.excinfo.value if call.excinfo is not None else None
    if judged is not None and not judged.verifiable:
        reason, fix = judged.reason, judged.fix
    elif isinstance(error, Unverifiable):
        reason = str(error)
    elif outcome is Outcome.NOT_VERIFIABLE:  # the check itself broke before a verdict
        reason = f"the check failed: {type(error).__name__}: {error}"
    elif judged is not None:
        reason = judged.reason
        fix = () if judged.compliant else judged.fix
    else:  # a skip: (path, line, message)
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")  # type: ignore[index]
    run = item.config.stash[RUN]
    if assessment is None and isinstance(error, Unverifiable):
        assessment = assess(subscription.id, error, run.policy, ())
    return Finding(
        subscription=subscription,
        control=control,
        cis_version=run.cis_version,
        outcome=outcome,
        reason=reason,
        fix=fix,
        waiver=_waiver_facts(item),
        evidence=Evidence() if assessment is None else assessment.evidence,
        checked_at=reports.now(),
        raw_answers=(
            () if outcome is Outcome.COMPLIANT or assessment is None else assessment.raw_answers
        ),
        baseline=_against(run.baseline, subscription, control, outcome),
    )


def _against(
    baseline: Verdicts | None, subscription: Subscription, control: Control, outcome: Outcome
) -> Baseline | None:
    """What the case is against the run's baseline (None: the run has none)."""
    if baseline is None:
        return None
    case = (subscription.id.lower(), control.key)
    if outcome is Outcome.NOT_COMPLIANT:
        return Baseline.KNOWN if case in baseline.known else Baseline.NEW
    if outcome is Outcome.COMPLIANT and case in baseline.failing:
        return Baseline.FIXED
    return None


def failure_story(finding: Finding, expired_waiver: str | None = None) -> tuple[str, str]:
    """A failure's or an error's whole story (title, reason, how to fix it), and its one
    line: what the terminal and JUnit show of a case that did not pass, from its finding."""
    cis = f"CIS {finding.cis_version} {finding.cis_id}"
    text = f"{cis} {finding.control.title}\n"
    if finding.subscription.management_groups:
        # display names, whose line breaks printable() would keep
        text += f"Management groups: {one_line(finding.subscription.management_group_path)}\n"
    fix = fixes.text(finding.fix)
    if finding.outcome is Outcome.NOT_VERIFIABLE:
        text += f"Could not be verified: {finding.reason}" + (f"\n{fix}" if fix else "")
    else:
        text += finding.reason + (f"\nHow to fix:\n{fix}" if fix else "")
    if expired_waiver is not None:
        text += f"\nA waiver for this case expired and was ignored: {one_line(expired_waiver)}"
    return (
        printable(redact(text)),
        one_line(redact(f"{cis}: {finding.outcome.label}: {finding.reason}")),
    )


def failure_text(item: pytest.Item, finding: Finding) -> ReprExceptionInfo:
    """The failure representation of a case that did not pass, instead of a traceback
    through the fixture or the assertion; JUnit and -ra get its one line."""
    expired = item.stash.get(EXPIRED_WAIVER, None)
    text, line = failure_story(finding, None if expired is None else expired.describe())
    return verdict_repr(text, line, str(item.path), item.location[1] or 0)


def verdict_repr(text: str, message: str, path: str, lineno: int) -> ReprExceptionInfo:
    """A failure representation that prints `text` whole, while JUnit's failure message
    and -ra's summary line get the one-line `message`."""
    return ReprExceptionInfo(
        reprtraceback=ReprTracebackNative([text + "\n"]),
        reprcrash=ReprFileLocation(path, lineno, message),
    )


def did_not_run(error: AuditError) -> str:
    reason = one_line(redact(str(error)))
    return f"the audit did not run: {reason}. Nothing below is an audit result"


def interrupted_message(run: Run, cases: int) -> str:
    cause = f"the audit was interrupted by {one_line(run.interrupted or '')}"
    if not cases:
        return f"{cause} before any case was collected. Nothing below is an audit result"
    return (
        f"{cause} with {run.judged} of {cases} cases judged. The results are partial: every "
        "case never judged is not verifiable"
    )


def run_error_reports(message: str, interrupted: bool = False) -> list[pytest.TestReport]:
    """A run that never started (or was interrupted), as one errored case for JUnit."""
    name = "audit interrupted" if interrupted else "audit did not run"
    return _error_reports(f"azure::{name}", ("azure", None, name), message)


def _error_reports(
    nodeid: str, location: tuple[str, int | None, str], message: str, finding: Finding | None = None
) -> list[pytest.TestReport]:
    """An errored case's reports (setup, then teardown), as pytest would make them."""
    path, line, _ = location
    failed = pytest.TestReport(
        nodeid, location, {}, "failed", verdict_repr(message, message, path, line or 0), "setup"
    )
    if finding is not None:
        failed.azure_finding = finding  # type: ignore[attr-defined]
    return [failed, pytest.TestReport(nodeid, location, {}, "passed", None, "teardown")]


def numbered_traceback(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """A signal lands between any two instructions, some of which have no line number:
    pytest cannot format such an entry (an INTERNALERROR instead of the interruption)."""
    excinfo.traceback = Traceback(_with_line_numbers(excinfo.tb) or excinfo.tb)


def _with_line_numbers(tb: TracebackType | None) -> TracebackType | None:
    """The traceback `tb` less its entries that have no line number."""
    numbered = []
    while tb is not None:
        if tb.tb_lineno is not None:
            numbered.append(tb)
        tb = tb.tb_next
    rest = None
    for entry in reversed(numbered):
        rest = TracebackType(rest, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rest


def _write_junit(xml: Any, path: Path) -> None:
    with beside(path) as temp:
        xml.logfile = str(temp)
        xml.pytest_sessionfinish()


class Reporting:
    """Collects every case's finding where reports are written (a serial run, or the
    controller under pytest-xdist: compliance.roles registers it there only) and writes the
    run facts and findings files at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.findings: dict[str, Finding] = {}
        self._drift: tuple[Drift, Verdicts] | None = None
        self._junit: Path | None = None  # where junitxml's file goes
        self.unwritten: list[Path] = []  # reports that could not be written
        self._writing = False
        self._handlers: dict[int, Any] = {}  # the signal handlers this object replaced
        self._collected: list[str] = []  # under pytest-xdist: the cases' node ids

    def catch_signals(self, *signums: int) -> None:
        """`signums` (SIGTERM: what CI sends on cancel and timeout) interrupt the run as
        Ctrl-C does; while the reports are written, they wait for the writing to end. A
        handler someone else set is left alone."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in signums:
            previous = signal.getsignal(signum)
            if previous in (signal.SIG_DFL, signal.default_int_handler):
                self._handlers.setdefault(signum, previous)
                signal.signal(signum, self._on_signal)

    def release_signals(self) -> None:
        for signum, previous in self._handlers.items():
            signal.signal(signum, previous)
        self._handlers = {}

    def pytest_unconfigure(self) -> None:
        self.release_signals()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._writing:  # a report half-written would be lost: the writing ends first
            return
        run = self.config.stash[RUN]
        run.interrupted = run.interrupted or signal.Signals(signum).name
        raise KeyboardInterrupt(signal.Signals(signum).name)

    @pytest.hookimpl(tryfirst=True)  # before the terminal formats its traceback
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        numbered_traceback(excinfo)
        run = self.config.stash[RUN]
        if run.interrupted is None:
            if excinfo.errisinstance(pytest.Session.Interrupted):  # session.shouldstop
                run.interrupted = f"pytest stopping early ({one_line(str(excinfo.value))})"
            elif excinfo.errisinstance(KeyboardInterrupt):
                run.interrupted = "SIGINT (Ctrl-C)"
            else:
                run.interrupted = f"pytest.exit ({one_line(str(excinfo.value))})"

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
            **(
                {"error": interrupted_message(run, len(self.findings))}
                if run.interrupted is not None and run.error is None
                else {}
            ),
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

    @pytest.hookimpl(tryfirst=True)  # before junitxml and pytest-html write their files
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        run = self.config.stash[RUN]
        self._writing = True
        self.catch_signals(signal.SIGINT, signal.SIGTERM)
        xml = self.config.stash.get(junit_xml_key, None)
        self._judge_the_rest(session, run, xml)
        facts = self.run_facts()
        if xml is not None:
            for name, value in facts.items():
                xml.add_global_property(f"azure.{name}", str(value))
            if "error" in facts:  # pipelines publish JUnit always(): it must not look green
                for report in run_error_reports(facts["error"], run.interrupted is not None):
                    xml.pytest_runtest_logreport(report)
            self._junit = Path(xml.logfile)
            self.write("xmlpath", self._junit, lambda path: _write_junit(xml, path))
            # junitxml's own sessionfinish runs after this one: it writes nowhere.
            xml.logfile = os.devnull
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
                run.audit.settings.management_groups,
            ),
            # GitHub's step summary file is shared by a job's steps: appended to, not replaced
            "azure_step_summary": lambda path: reports.write_summary(
                path,
                self.step_summary(facts, findings),
                append=setting(self.config, "azure_step_summary") is None,
            ),
        }
        for dest, write in writers.items():
            path = output_path(self.config, dest)
            if dest == "azure_step_summary":  # a GitHub Actions step names its file
                path = path or os.environ.get("GITHUB_STEP_SUMMARY")
            if path:
                self.write(dest, Path(path), write)

    def write(self, dest: str, path: Path, write: Callable[[Path], None]) -> None:
        """`write(path)`; a report that cannot be written is one ERROR: line, and the run's
        other reports are still written."""
        try:
            write(path)
        except OSError as exc:
            self.unwritten.append(path)
            sys.stderr.write(
                f"ERROR: {OUTPUTS[dest]}: cannot write {one_line(str(path))}: "
                f"{exc.strerror or exc}\n"
            )

    @pytest.hookimpl(trylast=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_junit_path(self) -> None:
        if self._junit is not None:  # for junitxml's "generated xml file" line
            self.config.stash[junit_xml_key].logfile = str(self._junit)

    @pytest.hookimpl(wrapper=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_exit_status(self, session: pytest.Session) -> Generator[None]:
        """After every report is written (pytest-html's last): an interrupted run ends 2
        (pytest's "interrupted", -x included), else a report not written makes it 4."""
        try:
            yield
        finally:
            self._writing = False
            self.release_signals()
        if self.config.stash[RUN].interrupted is not None:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif self.unwritten:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._collected = ids  # every worker collects the same cases

    def _cases(
        self, session: pytest.Session
    ) -> Iterator[tuple[str, tuple[str, int | None, str], Control, Subscription]]:
        """Every compliance case the run collected: its node id, location, control and
        subscription. Under pytest-xdist the controller has only the workers' node ids,
        which end in the subscription ID (compliance.text.case_id)."""
        for item in session.items:
            case = case_of(item)
            if case is not None:
                yield (item.nodeid, item.location, *case)
        known = {s.id.lower(): s for s in self.config.stash[RUN].audit.known_subscriptions()}
        for nodeid in self._collected:
            path, _, name = nodeid.partition("::")
            control = CONTROLS.get(name.split("[", 1)[0])
            subscription = known.get(nodeid.rpartition("(")[2].removesuffix(")]").lower())
            if control is not None and subscription is not None:
                yield nodeid, (path, None, name), control, subscription

    def _judge_the_rest(self, session: pytest.Session, run: Run, xml: Any) -> None:
        """A run stopped before it judged every case (a signal, -x, --maxfail) reports each
        case it never judged as not verifiable, saying why, to every report and the
        terminal: an interrupted audit never looks complete."""
        never = [c for c in self._cases(session) if c[0] not in self.findings]
        stopped = session.shouldfail or session.shouldstop  # -x, --maxfail, a plugin
        if run.interrupted is None and stopped and never:
            run.interrupted = f"pytest stopping early ({one_line(str(stopped))})"
        if run.interrupted is None:
            return
        run.judged = len(self.findings)
        reason = f"not judged: the audit was interrupted by {run.interrupted} before this case ran"
        for nodeid, location, control, subscription in never:
            finding = Finding(
                subscription=subscription,
                control=control,
                cis_version=run.cis_version,
                outcome=Outcome.NOT_VERIFIABLE,
                reason=reason,
                fix=(Note("Run the audit again and let it finish."),),
                checked_at=reports.now(),
            )
            self.findings[nodeid] = finding
            # JUnit lists each as an errored case (the pipeline's test tab); pytest-html and
            # the terminal only say the run was interrupted: a cancelled job has seconds
            # before it is killed, and 40,000 rows through every plugin take longer.
            if xml is not None:
                for report in _error_reports(nodeid, location, one_line(reason), finding):
                    xml.pytest_runtest_logreport(report)

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
            f"{f.outcome.label.upper()}{' (KNOWN)' if f.baseline is Baseline.KNOWN else ''}  "
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

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """pytest-html writes its page in place (a run killed meanwhile would leave half of
        it, over the last good one): its one writing method writes beside and renames, and
        a failure is the run's ERROR: line, not a traceback that stops the other reports."""
        from pytest_html.basereport import BaseReport  # type: ignore[import-untyped]

        for plugin in session.config.pluginmanager.get_plugins():
            if isinstance(plugin, BaseReport):
                path = plugin._report_path

                def write(rendered: str, path: Path = path) -> None:
                    self.reporting.write("htmlpath", path, lambda p: write_text(p, rendered))

                plugin._write_report = write

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = report_title(self.reporting.config)

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        labels = control_labels(self.reporting.config)
        counts = tally(self.reporting.findings.values())
        facts = self.reporting.run_facts()
        if "error" in facts:
            prefix.append(reports.run_error_banner(facts["error"]))
        prefix.extend(
            [
                "<h2>Audit</h2>",
                reports.header_block(facts),
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
