"""The part a process plays in a run, as one plugin object each, chosen once at configure
time (`for_config`): a serial run, the pytest-xdist controller, or a pytest-xdist worker.

A hook only one role needs lives on that role's object, so no hook asks which process it
runs in. Azure is read once per run: alongside the tests of a serial run, and under
pytest-xdist by the controller only, before the workers start; it hands what it read to
every worker (workers never call Azure). Reports are written where every case's finding
arrives: a serial run and the controller, never a worker.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable
from typing import Any

import pytest

from compliance.arm import AuditError
from compliance.arm.secrets import redact
from compliance.audit import Audit
from compliance.baseline import report_lines
from compliance.controls import CATALOGUE
from compliance.findings import Outcome
from compliance.model import Subscription
from compliance.outputs.terminal import closing, summary
from compliance.recorder import Recorder, numbered_traceback
from compliance.session import (
    RUN,
    Run,
    check_marker_expression,
    is_check,
    pytest_selection,
    run_error,
)
from compliance.text import one_line
from compliance.waivers import today, unused_and_expired

# pytest's failure sections (--tb=auto, its default) cost time quadratic in the number of
# reports: past this many failing cases the plugin turns them off (the reports hold every
# reason and fix; an explicit --tb=line/short/long is kept).
MANY_FAILURES = 500


def for_config(config: pytest.Config) -> Serial | Controller | Worker:
    if hasattr(config, "workerinput"):
        return Worker()
    # pytest-xdist's controller: it starts the workers (and collects nothing itself) unless
    # --collect-only keeps the run in one process; either way it reads Azure first.
    if config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") != "no":
        return Controller(config)
    return Serial(config)


class _WritesReports:
    """What the roles that write reports share: the reports, and the terminal's closing
    sections from their findings."""

    def __init__(self, config: pytest.Config) -> None:
        self.reports = Recorder(config)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        if config.option.tbstyle == "auto":
            failing = sum(
                f.outcome in (Outcome.NOT_COMPLIANT, Outcome.NOT_VERIFIABLE)
                for f in self.reports.findings.values()
            )
            if failing > MANY_FAILURES:
                config.option.tbstyle = "no"

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        run = config.stash[RUN]
        if run.error is not None:
            return
        self.before_summary(terminalreporter, config, run)
        _summarize_cases(terminalreporter, config, self.reports)
        _summarize_waivers(terminalreporter, run)
        _summarize_baseline(terminalreporter, run, self.reports)

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_terminal_summary")
    def pytest_terminal_summary_closing(
        self, terminalreporter: Any, config: pytest.Config
    ) -> Generator[None]:
        """The run's last lines, after pytest's short summary (-rs, -ra) and right before
        its own counts: the outcomes in audit words, and the report to hand an auditor."""
        try:
            return (yield)
        finally:
            run = config.stash[RUN]
            if run.error is None:
                for line in closing(self.reports.ordered(), run.audit_view()):
                    terminalreporter.write_line(line)

    def before_summary(self, terminalreporter: Any, config: pytest.Config, run: Run) -> None:
        pass


class Serial(_WritesReports):
    """A run in one process: it reads the contacts in the background while the tests judge
    the subscriptions already read, and writes the reports."""

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        check_markers(session.config)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # pytest finishes the collection even when it ended in a run error.
        config = session.config
        run = config.stash[RUN]
        if config.option.collectonly or run.error is not None:
            return
        if run.cases and not session.items:
            selection = pytest_selection(config)
            run.error = AuditError(
                f"the selection {selection or '(-m, -k, --cis-version)'} leaves none of the "
                f"{run.cases} cases collected: nothing would be audited"
            )
            raise run_error(run.error)
        # The tests start while the contacts are read: each waits for its subscription's.
        run.audit.start_reading(
            item.callspec.params["subscription"]  # type: ignore[attr-defined]
            for item in session.items
            if is_check(item)
        )

    def before_summary(self, terminalreporter: Any, config: pytest.Config, run: Run) -> None:
        line = reading_line(run.audit)  # a controller says it before the tests
        if line and config.get_verbosity() >= 0:
            terminalreporter.write_line(line)


class Controller(_WritesReports):
    """Under pytest-xdist the controller reads Azure once and hands it to every worker, so a
    run asks for the subscriptions list and each subscription's contacts once, not once per
    worker. The controller collects no tests, so it reads every selected subscription."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        check_markers(session.config)  # before Azure is asked anything
        run = session.config.stash[RUN]
        if run.error is not None:
            return
        try:
            subscriptions = run.audit.subscriptions()
        except AuditError as exc:
            # Raised from sessionstart, it would end the run before any report is written:
            # the collection raises it, and the reports say the audit did not run.
            run.error = exc
            return
        prefetch(session.config, subscriptions)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        run = session.config.stash[RUN]
        if run.error is not None:
            raise run_error(run.error)

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput.update(node.config.stash[RUN].for_workers())


class Worker:
    """A pytest-xdist worker judges the cases it is given on what the controller read; it
    never asks Azure, writes no report and prints no summary (the controller does both)."""

    reports = None

    @pytest.hookimpl(tryfirst=True)  # before the terminal formats its traceback
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        numbered_traceback(excinfo)


def check_markers(config: pytest.Config) -> None:
    """A marker in -m that does not exist ends the run at collection, not here: raised at
    the session's start, pytest would end it before any report says it did not run."""
    run = config.stash[RUN]
    if run.error is None:
        try:
            check_marker_expression(config)
        except pytest.UsageError as exc:
            run.error = AuditError(str(exc))


def prefetch(config: pytest.Config, subscriptions: Iterable[Subscription]) -> None:
    """Read every needed subscription's contacts before the workers start, concurrently,
    with progress lines (plain text: CI logs get no control characters; none under -q)."""
    audit = config.stash[RUN].audit
    terminal = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if terminal is not None and config.get_verbosity() >= 0:
            terminal.write_line(line)

    last = time.monotonic()

    def progress(done: int, total: int, throttled: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done < total and now - last >= 2:
            last = now
            say(
                f"azure: security contacts read: {done}/{total}, {throttled} throttled "
                f"answer{'' if throttled == 1 else 's'}"
            )

    if audit.prefetch(subscriptions, progress):
        say(reading_line(audit))


def reading_line(audit: Audit) -> str:
    reading = audit.reading
    if reading is None:
        return ""
    beside = " (and Defender for Cloud's assessments)" if audit.settings.cross_check else ""
    return (
        f"azure: security contacts{beside} of {reading.count} subscriptions read in "
        f"{reading.seconds:.1f}s (concurrency {audit.settings.concurrency}, "
        f"{reading.throttled} throttled answer{'' if reading.throttled == 1 else 's'})"
    )


def _summarize_cases(terminalreporter: Any, config: pytest.Config, reports: Recorder) -> None:
    """One line per case not compliant or not verifiable, capped, unless pytest's own short
    summary (-rf, -rE, -ra) lists them already."""
    if set(config.option.reportchars) & set("fEaA"):
        return
    title, lines = summary(reports.ordered(), config.stash[RUN].reports_at())
    if len(lines) > 0:
        terminalreporter.write_sep("=", title)
        for line in lines:
            terminalreporter.write_line(line)


def _summarize_baseline(terminalreporter: Any, run: Run, reports: Recorder) -> None:
    if run.baseline is None:
        return
    compared = reports.drift()
    if compared is None:
        return
    terminalreporter.write_sep("=", "azure baseline")
    drift, now = compared
    for line in report_lines(drift, run.baseline, now):
        terminalreporter.write_line(one_line(redact(line))[:300])


def _summarize_waivers(terminalreporter: Any, run: Run) -> None:
    if not run.waivers:
        return
    # Judged against every case the run's subscriptions and benchmark version have, not the
    # items a worker or -k happened to collect, so every process agrees.
    cases = [
        (s.id, c.key)
        for s in run.audit.known_subscriptions()
        for c in CATALOGUE
        if c.cis_id(run.cis_version)
    ]
    if not cases:  # no subscription was asked for: nothing to judge waivers against
        return
    stale, expired = unused_and_expired(run.waivers, cases, today())
    for title, waivers in (
        ("stale waivers: they match no case of this run", stale),
        ("expired waivers (ignored)", expired),
    ):
        if waivers:
            terminalreporter.write_sep("=", title)
            for waiver in waivers:
                terminalreporter.write_line(one_line(waiver.describe()))
