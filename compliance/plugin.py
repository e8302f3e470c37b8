"""pytest glue only: options, discovery -> parametrize, fixtures, report hooks.

The checks themselves live in `tests/`; the verdicts in :mod:`compliance.controls`; Azure
access in :mod:`compliance.arm`; waivers in :mod:`compliance.waivers`. Importing this module
touches nothing: Azure is asked only when a collected test needs a subscription.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import os
import re
import sys
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTracebackNative
from _pytest.junitxml import xml_key as junit_xml_key

from compliance import __version__, options, reports, sources
from compliance.arm import AuditError, Subscription, Unverifiable
from compliance.arm.secrets import redact
from compliance.audit import Audit, Settings
from compliance.contacts import SecurityContacts
from compliance.controls import (
    CATALOGUE,
    CONTROLS,
    Control,
    Policy,
    Verdict,
)
from compliance.evidence import EvidenceError, load_bundle, make_bundle, write_bundle
from compliance.options import OPTIONS, OptionError
from compliance.text import one_line, printable
from compliance.waivers import Waiver, WaiverError, load_waivers, today

# What --azure-demo audits against when the run sets no waivers of its own: an active waiver
# and an expired one (its policy is compliance.options.DEMO_ALLOWED_DOMAINS).
DEMO_WAIVERS = Path(__file__).parent / "emulator" / "tenants" / "demo-waivers.toml"


@dataclass
class Run:
    """Everything one pytest run decided at configure time, and what it learned since."""

    audit: Audit
    cis_version: str
    policy: Policy
    waivers: tuple[Waiver, ...] = ()
    waivers_source: str | None = None
    demo_defaults: bool = False  # the demo's policy and waivers apply
    replay: dict[str, Any] | None = None  # the evidence bundle a replay re-runs
    error: AuditError | None = None  # ends the run after collection
    cases: int = 0  # compliance cases collected, before -k and -m deselect any
    started_at: float = 0.0  # time.time() at configure
    started: str = ""


RUN = pytest.StashKey[Run]()
VERDICT = pytest.StashKey[Verdict]()
ACTIVE_WAIVER = pytest.StashKey[Waiver]()
EXPIRED_WAIVER = pytest.StashKey[Waiver]()


# --- options (declared in compliance.options) --------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("azure", "Azure security-contact compliance (CIS Azure Foundations)")
    for option in OPTIONS:
        group.addoption(option.flag, dest=option.dest, **option.argparse_keywords())
        parser.addini(option.dest, f"{option.help} (same as {option.flag})", option.ini_type)  # type: ignore[arg-type]


def _setting(config: pytest.Config, dest: str) -> Any:
    """The command line wins; otherwise the ini value (None when neither is set)."""
    value = config.getoption(dest)
    if value is not None:
        return value
    value = config.getini(dest)
    return value if value not in ("", []) else None


# --- run lifecycle ---------------------------------------------------------------------------


def waivers_path_for(config: pytest.Config, demo: bool) -> str | None:
    """The command line's path is the user's (relative to the working directory); the ini
    file's is relative to the ini file, as testpaths are."""
    if config.getoption("azure_waivers") is not None:
        return str(config.getoption("azure_waivers"))
    if config.getini("azure_waivers"):
        base = config.inipath.parent if config.inipath else config.rootpath
        return str(base / config.getini("azure_waivers"))
    return str(DEMO_WAIVERS) if demo else None


def _replay_bundle(config: pytest.Config, settings: Settings) -> dict[str, Any] | None:
    path = _setting(config, "azure_replay")
    if path is None:
        return None
    if settings.demo:
        raise pytest.UsageError("--azure-replay re-runs a recorded audit: drop --azure-demo")
    try:
        return load_bundle(path)
    except EvidenceError as exc:
        raise pytest.UsageError(f"--azure-replay: {exc}") from None


def _check_output(config: pytest.Config, dest: str) -> None:
    """Refuse an output path the run could not write, before the audit, not after it."""
    path = _setting(config, dest)
    if path is None:
        return
    flag = f"--{dest.replace('_', '-')}"
    target = Path(path)
    if target.is_dir():
        raise pytest.UsageError(f"{flag}: {path} is a directory; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise pytest.UsageError(f"{flag}: cannot create {target.parent}: {exc}") from None
    if not os.access(target.parent, os.W_OK):
        raise pytest.UsageError(f"{flag}: {target.parent} is not writable")


_T = TypeVar("_T")


def _usage_errors(read: Callable[[], _T]) -> _T:
    """`read()`, a value the user gave that no option takes being a usage error."""
    try:
        return read()
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    lookup = functools.partial(_setting, config)
    settings = _usage_errors(lambda: options.read_settings(lookup))
    cis_version = _usage_errors(lambda: options.read_cis_version(lookup))
    for dest in ("azure_findings", "azure_findings_csv", "azure_evidence"):
        _check_output(config, dest)
    workerinput = getattr(config, "workerinput", {})
    replay = None
    if "azure_audit" in workerinput:  # a pytest-xdist worker: the controller read Azure
        audit = Audit.from_snapshot(settings, workerinput["azure_audit"])
        demo_defaults = workerinput["azure_demo_defaults"]
    else:
        replay = _replay_bundle(config, settings)
        audit = Audit(settings, sources.for_run(settings, replay))
        # The demo's policy and waivers apply to the demo and to replays of it alike.
        demo_defaults = settings.demo or bool(replay and replay["run"].get("demo"))
    waivers_path = waivers_path_for(config, demo_defaults)
    try:
        waivers = load_waivers(waivers_path, (c.key for c in CATALOGUE)) if waivers_path else ()
    except WaiverError as exc:
        raise pytest.UsageError(f"--azure-waivers: {exc}") from None
    if _is_xdist_controller(config):
        config.pluginmanager.register(_XdistController(), "azure-xdist-controller")
    config.stash[RUN] = Run(
        audit=audit,
        cis_version=cis_version,
        replay=replay,
        policy=_usage_errors(lambda: options.read_policy(lookup, demo_defaults)),
        demo_defaults=demo_defaults,
        waivers=waivers,
        waivers_source=waivers_path,
        started_at=time.time(),
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    reporting = _Reporting(config)
    config.pluginmanager.register(reporting, "azure-reporting")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(_HtmlReport(reporting), "azure-html-report")
    for control in CATALOGUE:
        ids = ", ".join(f"{v} {n}" for v, n in control.cis_ids.items())
        config.addinivalue_line("markers", f"{control.key}: {control.title} (CIS {ids})")


def _did_not_run(error: AuditError) -> str:
    return f"the audit did not run: {one_line(redact(str(error)))}"


def _run_error_reports(message: str) -> list[pytest.TestReport]:
    """A run that never started, as one errored case (setup, then teardown) for JUnit."""
    nodeid, location = "azure::audit did not run", ("azure", None, "audit did not run")
    return [
        pytest.TestReport(
            nodeid, location, {}, "failed", _verdict_repr(message, message, "azure", 0), "setup"
        ),
        pytest.TestReport(nodeid, location, {}, "passed", None, "teardown"),
    ]


def _run_error(error: AuditError) -> pytest.UsageError:
    """A run-ending error as pytest's one `ERROR:` line: one line, no secret in it (an
    azure-identity message can quote what `az` printed)."""
    return pytest.UsageError(one_line(redact(str(error))))


def _is_xdist_controller(config: pytest.Config) -> bool:
    return (
        config.pluginmanager.hasplugin("xdist")
        and config.getoption("dist", "no") != "no"
        and not hasattr(config, "workerinput")
    )


class _XdistController:
    """Under pytest-xdist the controller reads Azure once and hands it to every worker, so a
    run asks for the subscriptions list and each subscription's contacts once, not once per
    worker. The controller collects no tests, so it reads every selected subscription."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        _check_marker_expression(session.config)  # before Azure is asked anything
        run = session.config.stash[RUN]
        try:
            subscriptions = run.audit.subscriptions()
        except AuditError as exc:
            # Raised from sessionstart, it would end the run before any report is written:
            # the collection raises it, and the reports say the audit did not run.
            run.error = exc
            return
        _prefetch(session.config, subscriptions)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        run = session.config.stash[RUN]
        if run.error is not None:
            raise _run_error(run.error)

    def pytest_configure_node(self, node: Any) -> None:
        run = node.config.stash[RUN]
        if run.error is not None:  # the workers wait for nothing: the run ends at collection
            snapshot = Audit.empty_snapshot()
        else:
            # Workers never hold a secret: whatever an answer echoed is redacted before
            # they see it (a token is a plain run of [A-Za-z0-9._~-]: the JSON stays JSON).
            snapshot = json.loads(redact(json.dumps(run.audit.snapshot())))
        node.workerinput["azure_audit"] = snapshot
        node.workerinput["azure_demo_defaults"] = run.demo_defaults


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


def case_id(subscription: Subscription, cis: str | None) -> str:
    """Display names are not unique; the subscription ID in every case id is."""
    name = f"{subscription.display_name} ({subscription.id})"
    return f"CIS {cis}: {name}" if cis else name


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "subscription" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash[RUN]
    try:
        subscriptions = run.audit.subscriptions()
    except AuditError as exc:
        # Raised here, pytest would call it a collection error with a traceback; the run
        # ends after collection with one ERROR: line instead.
        run.error = exc
        subscriptions = []
    control = CONTROLS.get(metafunc.function.__name__)
    cis = control.cis_id(run.cis_version) if control else None
    ids = [case_id(s, cis) for s in subscriptions]
    metafunc.parametrize("subscription", subscriptions, ids=ids)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash[RUN]
    if run.error is not None:
        raise _run_error(run.error)
    run.cases = sum("security_contacts" in getattr(i, "fixturenames", ()) for i in items)
    keep, deselected = [], []
    day = today()
    for item in items:
        if "security_contacts" not in getattr(item, "fixturenames", ()):
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
        subscription: Subscription = item.callspec.params["subscription"]  # type: ignore[attr-defined]
        _apply_waivers(run, item, control.key, subscription.id, day)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


def _apply_waivers(run: Run, item: pytest.Item, control: str, sub_id: str, day: date) -> None:
    for waiver in run.waivers:
        if not waiver.matches(sub_id, control):
            continue
        if waiver.active_on(day):
            item.stash[ACTIVE_WAIVER] = waiver
            item.add_marker(
                pytest.mark.xfail(
                    reason=f"waived until {waiver.expires.isoformat()} by {waiver.approved_by}: "
                    f"{waiver.reason}",
                    # Only a failed check is waived: what could not be verified stays an error.
                    raises=AssertionError,
                    strict=False,
                )
            )
            return
        item.stash[EXPIRED_WAIVER] = waiver


_MARK_WORDS = {"and", "or", "not", "True", "False"}


def _check_marker_expression(config: pytest.Config) -> None:
    """A marker in -m that no plugin registered is a typo (`-m contact-email`), not a
    selection of nothing."""
    expression = config.option.markexpr or ""
    known = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    used = set(re.findall(r"[\w.+\-\[\]\\/]+", expression)) - _MARK_WORDS
    unknown = sorted(used - known)
    if unknown:
        raise pytest.UsageError(
            f"-m {expression!r}: no marker {', '.join(unknown)}; the controls' markers are "
            f"{', '.join(c.key for c in CATALOGUE)} (pytest --markers lists every marker)"
        )


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        _check_marker_expression(session.config)


def pytest_collection_finish(session: pytest.Session) -> None:
    # pytest finishes the collection even when it ended in a run error.
    run = session.config.stash[RUN]
    if session.config.option.collectonly or run.error is not None:
        return
    if run.cases and not session.items and not hasattr(session.config, "workerinput"):
        option = session.config.option
        selection = " ".join(
            f"{flag} {value!r}"
            for flag, value in (("-m", option.markexpr), ("-k", option.keyword))
            if value
        )
        raise pytest.UsageError(
            f"the selection {selection or '(-m, -k, --cis-version)'} leaves none of the "
            f"{run.cases} cases collected: nothing would be audited"
        )
    subscriptions = {
        item.callspec.params["subscription"]  # type: ignore[attr-defined]
        for item in session.items
        if "security_contacts" in getattr(item, "fixturenames", ())
    }
    _prefetch(session.config, subscriptions)


def _prefetch(config: pytest.Config, subscriptions: Iterable[Subscription]) -> None:
    """Read every needed subscription's contacts before the first test, concurrently, with
    progress lines (plain text: CI logs get no control characters; none under -q)."""
    audit = config.stash[RUN].audit
    terminal = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if terminal is not None and config.get_verbosity() >= 0:
            terminal.write_line(line)

    started = last = time.monotonic()

    def progress(done: int, total: int, throttled: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done < total and now - last >= 2:
            last = now
            say(f"azure: security contacts read: {done}/{total}, {throttled} throttled answers")

    count = audit.prefetch(subscriptions, progress)
    if count:
        say(
            f"azure: security contacts of {count} subscriptions read in "
            f"{time.monotonic() - started:.1f}s "
            f"(concurrency {audit.settings.concurrency}, {audit.throttled} throttled answers)"
        )


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


@pytest.fixture
def security_contacts(
    subscription: Subscription, request: pytest.FixtureRequest
) -> SecurityContacts:
    """The subscription's Defender for Cloud security contacts, read once per run."""
    if not subscription.checkable:
        pytest.skip(f"subscription is {subscription.state}: its security contacts are not checked")
    return request.config.stash[RUN].audit.security_contacts(subscription)


@pytest.fixture
def policy(request: pytest.FixtureRequest) -> Policy:
    """The organisation's policy (required contacts, allowed domains, minimal levels)."""
    return request.config.stash[RUN].policy


@pytest.fixture
def verdict(
    request: pytest.FixtureRequest, security_contacts: SecurityContacts, policy: Policy
) -> Verdict:
    """The verdict of the requesting check's control on its subscription, judged once.

    A verdict that depends on a value this suite does not know is raised here, in setup:
    the case is an error (not verifiable), never a pass.
    """
    control = CONTROLS[request.node.originalname]
    judged = control.evaluate(security_contacts, policy)
    request.node.stash[VERDICT] = judged
    if not judged.verifiable:
        raise Unverifiable(f"{judged.reason}\n{judged.remediation}", security_contacts.responses)
    return judged


def _verdict(
    report: pytest.TestReport, excinfo: pytest.ExceptionInfo[BaseException] | None
) -> str | None:
    """What a phase's report decides about its case; None when a later phase decides."""
    if report.when == "setup":
        if report.failed:
            return "not_verifiable"
        return "skipped" if report.skipped else None
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "waived" if report.skipped else "compliant"
        if report.failed and not (excinfo and excinfo.errisinstance(AssertionError)):
            return "not_verifiable"  # the check itself broke: no verdict was reached
        return "compliant" if report.passed else "not_compliant"
    return None


def _waiver_facts(item: pytest.Item) -> dict[str, str] | None:
    for state, key in (("active", ACTIVE_WAIVER), ("expired", EXPIRED_WAIVER)):
        waiver = item.stash.get(key, None)
        if waiver is not None:
            return {
                "state": state,
                "reason": waiver.reason,
                "approved_by": waiver.approved_by,
                "expires": waiver.expires.isoformat(),
            }
    return None


def _finding(
    item: pytest.Item,
    report: pytest.TestReport,
    call: pytest.CallInfo[None],
    control: Control,
    subscription: Subscription,
    verdict: str,
) -> dict[str, Any]:
    """The case as one finding (plain data: it crosses from xdist workers intact)."""
    run = item.config.stash[RUN]
    read = getattr(item, "funcargs", {}).get("security_contacts")
    judged = item.stash.get(VERDICT, None)
    remediation = ""
    responses: tuple[Any, ...] = ()
    error = call.excinfo.value if call.excinfo is not None else None
    if judged is not None and not judged.verifiable:
        reason = f"could not be verified: {judged.reason}"
        remediation = judged.remediation
    elif isinstance(error, Unverifiable):
        reason = f"could not be verified: {error}"
        responses = error.responses
    elif verdict == "not_verifiable":  # the check itself broke before reaching a verdict
        reason = f"could not be verified: the check failed: {type(error).__name__}: {error}"
    elif judged is not None:
        reason = judged.reason
        remediation = "" if judged.compliant else judged.remediation
    else:  # a skip: (path, line, message)
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")  # type: ignore[index]
    return {
        "subscription": {
            "id": subscription.id,
            "name": subscription.display_name,
            "state": subscription.state,
            "tenant_id": subscription.tenant_id,
        },
        "control": {
            "key": control.key,
            "title": control.title,
            "rationale": control.rationale,
            "cis_version": run.cis_version,
            "cis_id": control.cis_id(run.cis_version),
            "cis": dict(control.cis_ids),
        },
        "verdict": verdict,
        "reason": reason,
        "remediation": remediation,
        "waiver": _waiver_facts(item),
        "evidence": reports.evidence(
            read if isinstance(read, SecurityContacts) else None, responses
        ),
        "checked_at": reports.now(),
        "_raw": reports.raw_bodies(read if isinstance(read, SecurityContacts) else None, responses),
    }


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    control = CONTROLS.get(getattr(item, "originalname", ""))
    subscription = getattr(item, "callspec", None) and item.callspec.params.get("subscription")  # type: ignore[attr-defined]
    verdict = _verdict(report, call.excinfo)
    if control is None or not isinstance(subscription, Subscription) or verdict is None:
        return report
    finding = _finding(item, report, call, control, subscription, verdict)
    raw = finding.pop("_raw")
    report.azure_finding = finding  # type: ignore[attr-defined]
    report.azure_raw = raw if verdict != "compliant" else []  # type: ignore[attr-defined]
    if call.excinfo is None or not call.excinfo.errisinstance((AssertionError, Unverifiable)):
        return report  # a pass, a skip, or a bug in a check: pytest's own report says most
    # The message is the whole story (reason, and how to fix it): a traceback through the
    # fixture or the assertion would only bury it. JUnit and -ra show its one-line reason.
    cis = f"CIS {finding['control']['cis_version']} {finding['control']['cis_id']}"
    text = f"{cis} {control.title}\n"
    if verdict == "not_verifiable":
        text += f"Could not be verified: {call.excinfo.value}"
    else:
        text += str(call.excinfo.value)
    expired = item.stash.get(EXPIRED_WAIVER, None)
    if expired is not None:
        text += f"\nA waiver for this case expired and was ignored: {expired.describe()}"
    report.longrepr = _verdict_repr(
        printable(redact(text)),
        one_line(redact(f"{cis}: {finding['reason']}")),
        str(item.path),
        item.location[1] or 0,
    )
    return report


def _verdict_repr(text: str, message: str, path: str, lineno: int) -> ReprExceptionInfo:
    """A failure representation that prints `text` whole, while JUnit's failure message
    and -ra's summary line get the one-line `message`. Built from pytest's own classes so
    pytest-xdist carries it from workers to the controller unchanged."""
    return ReprExceptionInfo(
        reprtraceback=ReprTracebackNative([text + "\n"]),
        reprcrash=ReprFileLocation(path, lineno, message),
    )


class _Reporting:
    """Collects every case's finding where reports are written (the controller under
    pytest-xdist) and writes the run facts and findings files at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.findings: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        finding = getattr(report, "azure_finding", None)
        if finding is not None:
            self.findings[report.nodeid] = finding

    def ordered(self) -> list[dict[str, Any]]:
        order = {c.key: i for i, c in enumerate(CATALOGUE)}
        return sorted(
            self.findings.values(),
            key=lambda f: (f["subscription"]["id"].lower(), order[f["control"]["key"]]),
        )

    def run_facts(self) -> dict[str, Any]:
        run = self.config.stash[RUN]
        audit = run.audit
        settings = audit.settings
        identity = audit.identity
        who = identity.get("upn") or identity.get("unique_name") or identity.get("appid")
        tenants = sorted({s.tenant_id for s in audit.known_subscriptions() if s.tenant_id})
        if run.replay is not None:
            target = f"replay of {_setting(self.config, 'azure_replay')}"
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
            "waivers": run.waivers_source or "-",
            **({"error": _did_not_run(run.error)} if run.error is not None else {}),
        }

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
                for report in _run_error_reports(facts["error"]):
                    xml.pytest_runtest_logreport(report)
        writers: dict[str, Callable[[Path], None]] = {
            "azure_findings": lambda path: reports.write_findings_json(
                path, reports.findings_document(facts, self.ordered())
            ),
            "azure_findings_csv": lambda path: reports.write_findings_csv(path, self.ordered()),
            "azure_evidence": lambda path: write_bundle(path, self.bundle(facts)),
        }
        for dest, write in writers.items():
            path = _setting(self.config, dest)
            if not path:
                continue
            try:
                write(Path(path))
            except OSError as exc:
                # The audit's other reports still get written; the run is not green.
                sys.stderr.write(f"ERROR: --{dest.replace('_', '-')}: cannot write {path}: {exc}\n")
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

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
        return make_bundle(facts, found, reads)


class _HtmlReport:
    """pytest-html additions: the run's facts and a summary chart before the table,
    subscription/control/reason columns, and per row the verdict, fix and evidence."""

    def __init__(self, reporting: _Reporting) -> None:
        self.reporting = reporting

    def pytest_html_report_title(self, report: Any) -> None:
        run = self.reporting.config.stash[RUN]
        report.title = f"Azure security contacts: CIS Microsoft Azure Foundations {run.cis_version}"

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        run = self.reporting.config.stash[RUN]
        counts = reports.tally(self.reporting.ordered())
        labels = {
            c.key: f"CIS {c.cis_id(run.cis_version)} {c.key}"
            for c in CATALOGUE
            if c.cis_id(run.cis_version)
        }
        if run.error is not None:
            prefix.append(reports.run_error_banner(_did_not_run(run.error)))
        prefix.extend(
            [
                reports.STYLE,
                "<h2>Audit</h2>",
                reports.header_block(self.reporting.run_facts()),
                "<h2>Compliance per control</h2>",
                reports.summary_svg(counts, labels),
                reports.summary_table(counts, labels),
            ]
        )

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
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
        test_id = report.nodeid + ("" if report.when == "call" else f"::{report.when}")
        cells[1] = f'<td class="col-testId">{html.escape(test_id)}</td>'
        finding = getattr(report, "azure_finding", None) or {}
        sub = finding.get("subscription", {})
        control = finding.get("control", {})
        values = (
            ("subscription", sub.get("name", "")),
            ("subscriptionId", sub.get("id", "")),
            ("control", f"CIS {control['cis_id']}" if control else ""),
            ("reason", finding.get("reason", "")),
        )
        cells[2:2] = [f'<td class="col-{k}">{html.escape(redact(v))}</td>' for k, v in values]

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        finding = getattr(report, "azure_finding", None)
        if finding is not None:
            data[:] = [redact(reports.row_html(finding, getattr(report, "azure_raw", [])))]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is None or not run.waivers or run.error is not None:
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
    matching = [w for w in run.waivers if any(w.matches(*case) for case in cases)]
    stale = [w for w in run.waivers if w not in matching]
    expired = [w for w in matching if not w.active_on(today())]
    if stale:
        terminalreporter.write_sep("=", "stale waivers: they match no case of this run")
        for waiver in stale:
            terminalreporter.write_line(waiver.describe())
    if expired:
        terminalreporter.write_sep("=", "expired waivers (ignored)")
        for waiver in expired:
            terminalreporter.write_line(waiver.describe())
