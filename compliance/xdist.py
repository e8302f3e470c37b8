"""Reading Azure once per run: alongside the tests of a serial run, and under pytest-xdist
in the controller only, before the workers start, which hands what it read to every worker
(workers never call Azure)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pytest

from compliance.arm import AuditError
from compliance.audit import Audit
from compliance.model import Subscription
from compliance.session import RUN, check_marker_expression, run_error


def is_controller(config: pytest.Config) -> bool:
    return (
        config.pluginmanager.hasplugin("xdist")
        and config.getoption("dist", "no") != "no"
        and not hasattr(config, "workerinput")
    )


class Controller:
    """Under pytest-xdist the controller reads Azure once and hands it to every worker, so a
    run asks for the subscriptions list and each subscription's contacts once, not once per
    worker. The controller collects no tests, so it reads every selected subscription."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        check_marker_expression(session.config)  # before Azure is asked anything
        run = session.config.stash[RUN]
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
        # the workers wait for nothing when the run could not start: it ends at collection
        node.workerinput.update(node.config.stash[RUN].for_workers())


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
            say(f"azure: security contacts read: {done}/{total}, {throttled} throttled answers")

    if audit.prefetch(subscriptions, progress):
        say(reading_line(audit))


def reading_line(audit: Audit) -> str:
    reading = audit.reading
    if reading is None:
        return ""
    return (
        f"azure: security contacts of {reading.count} subscriptions read in "
        f"{reading.seconds:.1f}s (concurrency {audit.settings.concurrency}, "
        f"{reading.throttled} throttled answers)"
    )
