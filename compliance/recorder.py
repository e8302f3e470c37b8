"""pytest's reports -> the run's findings and its reports.

Each case becomes a Finding where it ran (its failure text the reason and the fix), and where
reports are written (a serial run, or the controller under pytest-xdist: compliance.roles
registers a Recorder there only) every finding is kept, and at the session's end every
output of the registry (compliance.outputs) is rendered from them and the run's facts.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

# pytest offers no public way to build a failure representation whose one-line message
# (-ra, pytest-xdist) differs from its text; these are the classes its own reports use, and
# what pytest-xdist knows how to carry from a worker.
from _pytest._code.code import (
    ReprExceptionInfo,
    ReprFileLocation,
    ReprTracebackNative,
    Traceback,
)

from compliance import __commit__, __version__
from compliance.arm import AuditError
from compliance.arm.secrets import redact
from compliance.assessment import Assessment, Evidence, assess
from compliance.baseline import Drift, Verdicts, compare, of_run
from compliance.contacts import SecurityContacts, Unverifiable
from compliance.controls import CONTROLS, Control
from compliance.evidence import make_bundle
from compliance.facts import RunFacts, coverage, tenants, utc_now
from compliance.findings import Baseline, Finding, Outcome, WaiverFacts, ordered
from compliance.fixes import Fix, Note
from compliance.microsoft import MicrosoftVerdict, beside, counted
from compliance.model import Subscription
from compliance.outputs import OtherCase, Output, Report
from compliance.outputs.words import story
from compliance.session import (
    ACTIVE_WAIVER,
    ASSESSMENT,
    EXPIRED_WAIVER,
    RUN,
    Run,
    case_of,
    pytest_selection,
    setting,
)
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
            return WaiverFacts(
                state,
                waiver.reason,
                waiver.approved_by,
                waiver.expires.isoformat(),
                waiver.describe(),
            )
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
        checked_at=utc_now(),
        raw_answers=(
            () if outcome is Outcome.COMPLIANT or assessment is None else assessment.raw_answers
        ),
        baseline=_against(run.baseline, subscription, control, outcome),
        microsoft=microsoft_beside(run, subscription, control, outcome, assessment, reason),
    )


def microsoft_beside(
    run: Run,
    subscription: Subscription,
    control: Control,
    outcome: Outcome,
    assessment: Assessment | None,
    reason: str = "",
    wait: bool = True,
) -> MicrosoftVerdict | None:
    """Defender for Cloud's verdict on the case beside the suite's (--azure-cross-check;
    None without): compared with the verdict the case reached before waivers and baselines
    (a waived case is not compliant), from the contacts it was judged on."""
    audit = run.audit
    if not audit.settings.cross_check:
        return None
    unjudged = {
        Outcome.SKIPPED: f"the subscription is {subscription.state}: not audited",
        Outcome.NOT_VERIFIABLE: "the suite could not verify this case",
    }
    read = assessment.read if assessment is not None else None
    return beside(
        control.key,
        None if outcome in unjudged else outcome is Outcome.COMPLIANT,
        read if isinstance(read, SecurityContacts) else None,
        audit.cross_check(subscription, wait) if subscription.checkable else None,
        audit.assessment_policies(),
        run.policy.min_alert_severity,
        unjudged.get(outcome, ""),
        reason,
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


def failure_text(item: pytest.Item, finding: Finding) -> ReprExceptionInfo:
    """The failure representation of a case that did not pass, instead of a traceback
    through the fixture or the assertion; -ra gets its one line."""
    text, line = story(finding)
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


class Recorder:
    """Keeps every case's finding where reports are written (a serial run, or the controller
    under pytest-xdist) and writes every output of the run at the session's end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.findings: dict[str, Finding] = {}
        self.others: dict[str, OtherCase] = {}  # tests that check no control, by node id
        self._drift: tuple[Drift, Verdicts] | None = None
        self.unwritten: list[Path] = []  # reports that could not be written
        self._writing = False
        self._handlers: dict[int, Any] = {}  # the signal handlers this object replaced
        self._collected: list[str] = []  # under pytest-xdist: the cases' node ids
        self.final: Report | None = None  # the report every output renders, once made

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
        elif getattr(report, "azure_other", False):
            other = _other_case(report)
            if other is not None:
                self.others[report.nodeid] = other

    def of(self, report: pytest.TestReport) -> Finding | None:
        """The finding the phase `report` decided (None for a phase that decided nothing)."""
        return getattr(report, "azure_finding", None)

    def ordered(self) -> Sequence[Finding]:
        """Every finding in report order: the report's, sorted once, when it was made."""
        return self.final.findings if self.final is not None else ordered(self.findings.values())

    def facts(self) -> RunFacts:
        run = self.config.stash[RUN]
        audit = run.audit
        settings = audit.settings
        identity = audit.identity
        who = identity.get("upn") or identity.get("unique_name") or identity.get("appid")
        subscriptions = audit.known_subscriptions()
        homes = sorted({s.tenant_id for s in subscriptions if s.tenant_id})
        if run.replay is not None:
            target = f"replay of {setting(self.config, 'azure_replay')}"
            auth = "replay"
        elif settings.demo:
            target, auth = "demo tenant (bundled emulator)", "emulator"
        else:
            target, auth = settings.cloud, settings.auth
        error = None
        if run.error is not None:
            error = did_not_run(run.error)
        elif run.interrupted is not None:
            error = interrupted_message(run, len(self.findings))
        waivers = Path(run.waivers_source).name if run.waivers_source else None
        return RunFacts(
            target=target,
            arm_endpoint=audit.endpoint,
            tenant=settings.tenant or ", ".join(homes) or "-",
            identity=(
                f"{identity.get('name', who)} ({who}, object id {identity.get('oid', '-')})"
                if identity
                else "unknown (the token carries no readable claims)"
            ),
            auth=auth,
            api_versions=tuple(audit.api_versions()),
            cis_version=run.cis_version,
            suite_version=__version__,
            suite_commit=__commit__,
            started=run.started,
            duration_s=round(time.time() - run.started_at, 1),
            subscriptions=len(subscriptions),
            management_groups=settings.management_groups,
            pytest_selection=pytest_selection(self.config),
            signed_in_tenant=identity.get("tid"),
            tenants=tenants(identity.get("tid"), subscriptions),
            policy=run.policy,
            waivers=waivers,
            waivers_sha256=run.waivers_sha256,
            coverage=coverage(
                audit.visible_count,
                audit.selection.subscriptions if audit.selection is not None else [],
                audit.selection.excluded if audit.selection is not None else (),
                self.findings.values(),
                settings.shard,
                audit.selection.before_shard if audit.selection is not None else (),
            ),
            baseline=self.drift_line() if run.baseline is not None else None,
            cross_check=(
                counted(f.microsoft for f in self.findings.values())
                if settings.cross_check
                else None
            ),
            error=error,
            interrupted=run.error is None and run.interrupted is not None,
        )

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

    def report(self) -> Report:
        """What every output renders: the run's facts and its findings, in order."""
        run = self.config.stash[RUN]
        facts = self.facts()
        return Report(
            facts=facts,
            findings=ordered(self.findings.values()),
            scopes=run.audit.settings.management_groups,
            bundle=functools.cache(lambda: self.bundle(facts)),  # made once, when written
            others=list(self.others.values()),
            suite_name=self.config.getini("junit_suite_name"),
            reports_at=run.reports_at(),
            audit_view=run.audit_view(),
        )

    @pytest.hookimpl(tryfirst=True)  # before pytest-html writes its page
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        run = self.config.stash[RUN]
        self._writing = True
        self.catch_signals(signal.SIGINT, signal.SIGTERM)
        self._judge_the_rest(session, run)
        report = self.report()
        for target in run.targets:
            if target.output.dest == "azure_evidence" and report.bundle is not None:
                # named, with its digest, in the others
                facts = replace(
                    report.facts,
                    evidence=target.path.name,
                    evidence_digest=report.bundle()["digest"],
                )
                report = replace(report, facts=facts)
        self.final = report  # what pytest-html's page shows too, when it is drawn next
        for target in run.targets:
            render = target.output.append if target.shared else target.output.write
            if render is not None:
                self.write(target.output, target.path, _rendering(render, report))

    def write(self, output: Output, path: Path, write: Callable[[Path], None]) -> None:
        """`write(path)`; a report that cannot be written is one ERROR: line, and the run's
        other reports are still written."""
        try:
            write(path)
        except OSError as exc:
            self.unwritten.append(path)
            sys.stderr.write(
                f"ERROR: {output.flag}: cannot write {one_line(str(path))}: {exc.strerror or exc}\n"
            )

    @pytest.hookimpl(wrapper=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_exit_status(self, session: pytest.Session) -> Generator[None]:
        """After every report is written (pytest-html's last): an interrupted run ends 2
        (pytest's "interrupted", -x included), else a report not written makes it 4."""
        try:
            yield
        finally:
            self._writing = False
            self.release_signals()
        run = self.config.stash[RUN]
        if run.interrupted is not None:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif self.unwritten:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        elif run.empty_shard and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK  # its reports say so: no gap, no failure

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._collected = ids  # every worker collects the same cases

    def _cases(self, session: pytest.Session) -> Iterator[tuple[str, Control, Subscription]]:
        """Every compliance case the run collected: its node id, control and subscription.
        Under pytest-xdist the controller has only the workers' node ids, which end in the
        subscription ID (compliance.text.case_id)."""
        for item in session.items:
            case = case_of(item)
            if case is not None:
                yield (item.nodeid, *case)
        known = {s.id.lower(): s for s in self.config.stash[RUN].audit.known_subscriptions()}
        for nodeid in self._collected:
            name = nodeid.partition("::")[2]
            control = CONTROLS.get(name.split("[", 1)[0])
            subscription = known.get(nodeid.rpartition("(")[2].removesuffix(")]").lower())
            if control is not None and subscription is not None:
                yield nodeid, control, subscription

    def _judge_the_rest(self, session: pytest.Session, run: Run) -> None:
        """A run stopped before it judged every case (a signal, -x, --maxfail) reports each
        case it never judged as not verifiable, saying why, in every report: an interrupted
        audit never looks complete. (pytest-html and the terminal only say the run was
        interrupted: a cancelled job has seconds before it is killed, and 40,000 rows
        through every plugin take longer.)"""
        never = [c for c in self._cases(session) if c[0] not in self.findings]
        stopped = session.shouldfail or session.shouldstop  # -x, --maxfail, a plugin
        if run.interrupted is None and stopped and never:
            run.interrupted = f"pytest stopping early ({one_line(str(stopped))})"
        if run.interrupted is None:
            return
        run.judged = len(self.findings)
        reason = f"not judged: the audit was interrupted by {run.interrupted} before this case ran"
        fix: Fix = (Note("Run the audit again and let it finish."),)
        checked_at = utc_now()
        for nodeid, control, subscription in never:
            self.findings[nodeid] = Finding(
                subscription=subscription,
                control=control,
                cis_version=run.cis_version,
                outcome=Outcome.NOT_VERIFIABLE,
                reason=reason,
                fix=fix,
                checked_at=checked_at,
                # what was read by now: an interrupted run never waits for a read
                microsoft=microsoft_beside(
                    run, subscription, control, Outcome.NOT_VERIFIABLE, None, wait=False
                ),
            )

    def bundle(self, facts: RunFacts) -> dict[str, Any]:
        run = self.config.stash[RUN]
        found, reads = run.audit.evidence()
        recorded = {
            **facts.to_dict(),
            "identity_claims": run.audit.identity,
            "served_api_version": run.audit.served_api_version(),
            "demo": run.demo_defaults,
            "ended": utc_now(),
        }
        return make_bundle(
            recorded, found, reads, run.audit.group_answers, run.audit.cross_check_evidence()
        )


def _rendering(render: Callable[[Path, Report], None], report: Report) -> Callable[[Path], None]:
    return lambda path: render(path, report)


def _other_case(report: pytest.TestReport) -> OtherCase | None:
    """A test that checks no control, as JUnit lists it (None: a phase that decides nothing)."""
    if not (report.when == "call" or report.failed or report.skipped):
        return None
    if report.passed:
        return OtherCase(report.nodeid, "passed")
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        return OtherCase(report.nodeid, "skipped", str(reason).removeprefix("Skipped: "))
    crash = getattr(report.longrepr, "reprcrash", None)
    return OtherCase(
        report.nodeid,
        "failed" if report.when == "call" else "error",
        crash.message if crash is not None else "",
        printable(report.longreprtext),
    )
