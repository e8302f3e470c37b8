"""pytest glue only: hooks and fixtures.

The checks live in `tests/`; the controls, their verdicts and the one place a check is tied
to its control and marker in :mod:`compliance.controls`; options in
:mod:`compliance.options`; the run's state, built once from them, in
:mod:`compliance.session`; the hooks of one role only (a serial run, pytest-xdist's
controller or a worker: reading Azure once, the terminal's summary) in
:mod:`compliance.roles`; Azure access in :mod:`compliance.arm`; the reports in
:mod:`compliance.outputs`, written by :mod:`compliance.recorder`; waivers in
:mod:`compliance.waivers`. Importing this module touches nothing: Azure is asked only when a
collected test needs a subscription.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from compliance import fixes, recorder, roles
from compliance.arm import AuditError
from compliance.contacts import SecurityContacts, Unverifiable
from compliance.controls import CATALOGUE, CONTROLS, Policy, Verdict
from compliance.findings import Finding, Outcome
from compliance.model import Subscription
from compliance.options import OPTIONS
from compliance.session import (
    ACTIVE_WAIVER,
    ASSESSMENT,
    EXPIRED_WAIVER,
    KNOWN,
    RUN,
    Run,
    case_id,
    case_of,
    is_check,
    run_error,
)
from compliance.text import one_line
from compliance.waivers import today, waivers_for


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("azure", "Azure security-contact compliance (CIS Azure Foundations)")
    for option in OPTIONS:
        group.addoption(option.flag, dest=option.dest, **option.argparse_keywords())
        parser.addini(option.dest, f"{option.help} (same as {option.flag})", option.ini_type)  # type: ignore[arg-type]


# Style for pytest-html's report, given to it as its own --css adds one (a <style> in the
# summary's <div> is not valid HTML); pytest-html reads it in its pytest_configure.
HTML_CSS = Path(__file__).parent / "resources" / "pytest-html.css"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _Frozen.thaw()  # a second run in this process (pytest.main, pytester) collects as usual
    if getattr(config.option, "htmlpath", None):
        config.option.css = [*config.option.css, str(HTML_CSS)]
    config.stash[RUN] = Run.from_config(config)
    # The suite writes JUnit itself, from the findings (compliance.outputs.junit): pytest's
    # junitxml, which would write it from pytest's reports, is never made.
    config.option.xmlpath = None
    role = roles.for_config(config)  # serial, pytest-xdist controller or worker: once, here
    config.pluginmanager.register(role, "azure-role")
    if role.reports is not None:
        config.pluginmanager.register(role.reports, "azure-reporting")
        role.reports.catch_signals(signal.SIGTERM)
        if config.pluginmanager.hasplugin("html"):
            from compliance.outputs.pytest_html import HtmlReport

            config.pluginmanager.register(HtmlReport(role.reports), "azure-html-report")
    for control in CATALOGUE:
        ids = ", ".join(f"{v} {n}" for v, n in control.cis_ids.items())
        config.addinivalue_line("markers", f"{control.key}: {control.title} (CIS {ids})")


class _Frozen:
    """Once every case has run, what the run holds (pytest's items and reports, the findings:
    hundreds of MiB in a large tenant) lives to the process's end. gc.freeze() takes it out of
    the garbage collector's sight: writing the reports, pytest's collection for unraisable
    exceptions at its end and the interpreter's at exit no longer walk it (bench/README.md,
    issue 20: 6 s of a 10,000-subscription run's end). At exit its objects are left to the
    operating system, as Spack does (spack/spack#53020): atexit handlers still run and
    stdout and stderr are still flushed; only finalizers of objects alive at exit are skipped,
    which Python does not promise to run. Every report is closed before then."""

    froze = False

    @classmethod
    def freeze(cls) -> None:
        gc.freeze()
        cls.froze = True

    @classmethod
    def thaw(cls) -> None:
        if cls.froze:
            gc.unfreeze()
            cls.froze = False


@pytest.hookimpl(wrapper=True)  # before any plugin's pytest_sessionfinish writes its report
def pytest_sessionfinish(session: pytest.Session) -> Generator[None]:
    _Frozen.freeze()
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is not None:
        run.audit.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash[RUN]
    s = run.audit.settings
    if run.replay is not None:
        recorded = run.replay["run"]
        target = (
            f"replay of an evidence bundle recorded {one_line(str(recorded.get('started')))} at "
            f"{one_line(str(recorded.get('arm_endpoint')))} (offline: no credential, no network)"
        )
    elif s.demo:
        target = "demo tenant on the bundled ARM emulator (no Azure account)"
    else:
        target = f"cloud {s.cloud}, auth {s.auth}, ARM {run.audit.endpoint}"
    lines = [f"azure: {target}", f"azure: CIS Microsoft Azure Foundations {run.cis_version}"]
    if s.tenant or s.subscriptions or s.exclude:
        lines.append(
            f"azure selection: tenant {s.tenant or 'any'}, "
            f"subscriptions {', '.join(s.subscriptions) or 'all'}, "
            f"excluded {', '.join(s.exclude) or 'none'}"
        )
    p = run.policy
    if p != Policy():
        lines.append(
            f"azure policy: required contacts {', '.join(p.required_contacts) or 'none'}; "
            f"allowed domains {', '.join(p.allowed_contact_domains) or 'any'}; "
            f"alerts from {p.min_alert_severity}; attack paths from {p.min_attack_path_risk}"
        )
    if run.waivers_source:
        lines.append(f"azure waivers: {len(run.waivers)} from {run.waivers_source}")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "subscription" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash[RUN]
    subscriptions = []
    try:
        if run.error is None:  # a run that did not start asks Azure nothing
            subscriptions = run.audit.subscriptions()
    except AuditError as exc:
        # Raised here, pytest would call it a collection error with a traceback; the run
        # ends after collection with one ERROR: line instead.
        run.error = exc
    control = CONTROLS.get(metafunc.function.__name__)
    cis = control.cis_id(run.cis_version) if control else None
    ids = [case_id(s, cis) for s in subscriptions]
    metafunc.parametrize("subscription", subscriptions, ids=ids)


@pytest.hookimpl(tryfirst=True)  # markers in place before -m deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash[RUN]
    if run.error is not None:
        raise run_error(run.error)
    if run.empty_shard:  # no subscription: pytest's "empty parameter set" items go
        config.hook.pytest_deselected(items=[i for i in items if is_check(i)])
        items[:] = [i for i in items if not is_check(i)]
    run.cases = sum(is_check(i) for i in items)
    keep, deselected = [], []
    day = today()
    known = run.baseline.known if run.baseline is not None else frozenset()
    for item in items:
        if not is_check(item):
            keep.append(item)
            continue
        control = CONTROLS.get(getattr(item, "originalname", ""))
        if control is None:
            raise pytest.UsageError(
                f"{item.nodeid}: checks security contacts but is not in the control catalogue "
                "(compliance/controls.py)"
            )
        if control.cis_id(run.cis_version) is None:
            deselected.append(item)
            continue
        keep.append(item)
        item.add_marker(control.key)  # the catalogue ties a check to its marker
        subscription: Subscription = item.callspec.params["subscription"]  # type: ignore[attr-defined]
        active, expired = waivers_for(run.waivers, subscription.id, control.key, day)
        if expired is not None:
            item.stash[EXPIRED_WAIVER] = expired
        reason = None
        if active is not None:
            item.stash[ACTIVE_WAIVER] = active
            reason = one_line(  # pytest prints it (-v, -ra): the waiver file's text, one line
                f"waived until {active.expires.isoformat()} by {active.approved_by}: "
                f"{active.reason}"
            )
        elif run.baseline is not None and (subscription.id.lower(), control.key) in known:
            reason = item.stash[KNOWN] = f"known: it failed in the baseline {run.baseline.source}"
        if reason is not None:
            # Only a failed check is waived or known: what could not be verified stays an error.
            item.add_marker(pytest.mark.xfail(reason=reason, raises=AssertionError, strict=False))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    # A subscription's cases one after another, in the order its contacts are read (by id):
    # the tests follow the read from its first answers, instead of waiting for all of them
    # before the second control. Other tests keep their places.
    places = [n for n, item in enumerate(keep) if is_check(item)]
    by_subscription = sorted(
        (keep[n] for n in places),
        key=lambda i: i.callspec.params["subscription"].id.lower(),  # type: ignore[attr-defined]
    )
    for n, item in zip(places, by_subscription, strict=True):
        keep[n] = item
    items[:] = keep


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    run = config.stash[RUN]
    # pytest reports the collection even when it ended in a run error.
    if run.audit.visible_count == 0 or run.error is not None:
        return []
    selected = run.audit.subscriptions()
    unchecked = sum(not s.checkable for s in selected)
    return [
        f"azure: {len(selected)} of {run.audit.visible_count} visible subscriptions selected"
        + (f", {unchecked} disabled or deleted (skipped)" if unchecked else "")
    ]


def _skip_unless_checkable(subscription: Subscription) -> None:
    if not subscription.checkable:
        pytest.skip(  # -rs prints it: the subscription named, one line
            one_line(
                f"subscription {subscription.display_name} ({subscription.id}) is "
                f"{subscription.state}: its security contacts are not checked"
            )
        )


@pytest.fixture
def security_contacts(
    subscription: Subscription, request: pytest.FixtureRequest
) -> SecurityContacts:
    """The subscription's Defender for Cloud security contacts, read once per run (for a
    check of your own; the suite's checks take `verdict`)."""
    _skip_unless_checkable(subscription)
    return request.config.stash[RUN].audit.security_contacts(subscription)


@pytest.fixture
def verdict(request: pytest.FixtureRequest, subscription: Subscription) -> Verdict:
    """The requesting check's control's part of its subscription's assessment, made once
    per run from contacts read once (one fixture: each costs pytest time, 40,000 times over).

    A read that failed, and a verdict that depends on a value this suite does not know, are
    raised here, in setup: the case is an error (not verifiable), never a pass.
    """
    _skip_unless_checkable(subscription)
    assessment = request.node.stash[ASSESSMENT] = request.config.stash[RUN].assessment(subscription)
    if assessment.error is not None:
        raise assessment.error
    judged = assessment.verdicts[CONTROLS[request.node.originalname].key]
    if not judged.verifiable:
        raise Unverifiable(f"{judged.reason}\n{fixes.text(judged.fix)}", assessment.read.responses)
    return judged


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_without_traceback(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> pytest.TestReport | None:
    """A case that failed or could not be verified, reported without the traceback pytest
    would format (a millisecond each, thousands in a first audit): its text is the
    finding's reason and fix (below)."""
    if case_of(item) is None or not _verdict_error(call):
        return None
    excinfo, call.excinfo = call.excinfo, None  # pytest's report, less the traceback
    try:
        report = pytest.TestReport.from_item_and_call(item, call)
    finally:
        call.excinfo = excinfo
    report.outcome = "failed"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Each case's report carries its finding; a failure's text is its reason and fix."""
    report = yield
    case = case_of(item)
    if case is None:
        report.azure_other = True  # type: ignore[attr-defined]  # JUnit lists it too
        return report
    outcome = recorder.outcome_of(report, call.excinfo)
    if outcome is None:
        return report
    if outcome is Outcome.WAIVED and KNOWN in item.stash:
        outcome = Outcome.NOT_COMPLIANT  # known, not waived: reported so, failing nothing
    finding = recorder.finding_for(item, report, call, *case, outcome)
    report.azure_finding = finding  # type: ignore[attr-defined]
    if call.excinfo is not None and _verdict_error(call):
        report.longrepr = recorder.failure_text(item, finding)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(
    report: pytest.TestReport,
) -> Generator[None, dict[str, Any] | None, dict[str, Any] | None]:
    """A report's finding travels as plain data (pytest-xdist, reportlog); in the process
    that made it, it stays one object, shared by the reports that hold it."""
    data = yield
    if data is not None and isinstance(data.get("azure_finding"), Finding):
        data["azure_finding"] = data["azure_finding"].to_dict(raw=True)
    return data


@pytest.hookimpl(wrapper=True)
def pytest_report_from_serializable(
    data: dict[str, Any],
) -> Generator[None, pytest.TestReport | None, pytest.TestReport | None]:
    report = yield
    if isinstance(getattr(report, "azure_finding", None), dict):
        report.azure_finding = Finding.from_dict(report.azure_finding)  # type: ignore[union-attr]
    return report


def _verdict_error(call: pytest.CallInfo[None]) -> bool:
    return call.excinfo is not None and call.excinfo.errisinstance((AssertionError, Unverifiable))
