"""JUnit XML (pytest's xunit2 layout), what Azure DevOps' PublishTestResults@2 and GitHub's
JUnit reporters read: one testcase per control and subscription, its class the control
(`CIS 8.1.13 Ensure ...`, so a tests tab groups by control) and its name the subscription.

A failure's message is its verdict and one-line reason and its text the whole story with the
fix; a case not verifiable is an error; a waived or known case, and a skipped one, is
skipped. The run's facts are the testsuite's `azure.*` properties, and a run that did not
run or did not finish holds one more errored case saying so: a pipeline publishes JUnit
always(), and it must never look green.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from pathlib import Path
from xml.sax.saxutils import escape as _escape
from xml.sax.saxutils import quoteattr

from compliance.arm.secrets import redact
from compliance.findings import Baseline, Finding, Outcome
from compliance.outputs.report import OtherCase, Report
from compliance.outputs.words import microsoft_line, story
from compliance.text import one_line
from compliance.writing import replaced

# XML 1.0 allows these characters only; anything else (a noncharacter such as U+FFFF that
# the text escapes keep) is shown as an escape, never written.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _attr(value: str) -> str:
    return quoteattr(_xml_safe(value))


def _text(value: str) -> str:
    return _escape(_xml_safe(value))


def case_class(finding: Finding) -> str:
    return one_line(f"CIS {finding.cis_id} {finding.control.title}")


def case_name(finding: Finding) -> str:
    return one_line(f"{finding.subscription.display_name} ({finding.subscription.id})")


def _case(finding: Finding) -> tuple[str, str]:
    """The testcase's kind (passed, failure, error, skipped) and its element's inner XML."""
    outcome = finding.outcome
    if outcome is Outcome.COMPLIANT:
        return "passed", ""
    if outcome is Outcome.SKIPPED:
        return "skipped", f'<skipped type="pytest.skip" message={_attr(finding.reason)}/>'
    if outcome is Outcome.WAIVED and finding.waiver is not None:
        waiver = finding.waiver
        why = one_line(f"waived until {waiver.expires} by {waiver.approved_by}: {waiver.reason}")
        return "skipped", f'<skipped type="pytest.xfail" message={_attr(why)}/>'
    text, line = story(finding)
    if finding.baseline is Baseline.KNOWN:  # reported, failing nothing
        return "skipped", f'<skipped type="pytest.xfail" message={_attr(f"known: {line}")}/>'
    kind = "error" if outcome is Outcome.NOT_VERIFIABLE else "failure"
    microsoft = microsoft_line(finding)  # xunit2 has no properties per case: in its text
    if microsoft is not None:
        text += f"\n{microsoft}"
    return kind, f"<{kind} message={_attr(line)}>{_text(text)}</{kind}>"


def _other(case: OtherCase) -> tuple[str, str, str, str]:
    """A test that checks no control: its class and name the way pytest makes them."""
    path, _, rest = case.nodeid.partition("::")
    names = [path.removesuffix(".py").replace("/", "."), *rest.split("::")]
    classname, name = ".".join(names[:-1]), names[-1]
    if case.outcome == "passed":
        return classname, name, "passed", ""
    tag = {"failed": "failure", "error": "error", "skipped": "skipped"}[case.outcome]
    inner = f"<{tag} message={_attr(case.message)}>{_text(case.text)}</{tag}>"
    return classname, name, tag, inner


def _testcase(classname: str, name: str, inner: str) -> str:
    # Each verdict is judged at once from answers read beforehand: no time of its own.
    attrs = f'classname={_attr(classname)} name={_attr(name)} time="0.000"'
    return f"<testcase {attrs}>{inner}</testcase>" if inner else f"<testcase {attrs}/>"


def render(report: Report) -> str:
    counts = {"failure": 0, "error": 0, "skipped": 0, "passed": 0}
    cases = []
    for finding in report.findings:
        kind, inner = _case(finding)
        counts[kind] += 1
        cases.append(_testcase(case_class(finding), case_name(finding), inner))
    for other in report.others:
        classname, name, kind, inner = _other(other)
        counts[kind] += 1
        cases.append(_testcase(classname, name, inner))
    facts = report.facts
    if facts.error is not None:
        name = (
            "audit interrupted"
            if facts.interrupted
            else "audit incomplete"
            if facts.incomplete
            else "audit did not run"
        )
        counts["error"] += 1
        line = one_line(facts.error)
        cases.append(
            _testcase("azure", name, f"<error message={_attr(line)}>{_text(line)}</error>")
        )
    named = {
        **facts.properties(),
        **({"audit_view": report.audit_view} if report.audit_view else {}),
    }
    properties = "".join(
        f"<property name={_attr(f'azure.{key}')} value={_attr(one_line(value))}/>"
        for key, value in named.items()
    )
    suite = (
        f'<testsuite name={_attr(report.suite_name)} errors="{counts["error"]}" '
        f'failures="{counts["failure"]}" skipped="{counts["skipped"]}" '
        f'tests="{len(cases)}" time="{facts.duration_s:.3f}" '
        f"timestamp={_attr(facts.started or dt.datetime.now(dt.UTC).isoformat())} "
        f"hostname={_attr(socket.gethostname())}>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="pytest tests">'
        f"{suite}<properties>{properties}</properties>{''.join(cases)}</testsuite></testsuites>\n"
    )


def write(path: Path, report: Report) -> None:
    with replaced(path) as out:
        out.write(redact(render(report)))
