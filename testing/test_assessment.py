"""One assessment, every output: each fix step reaches each output that shows a fix, commands
as commands (a line of their own in text, a `cli` step with its Copy button in the audit
view), and no output reads another's wording."""

from __future__ import annotations

import csv
import html
import json
import xml.etree.ElementTree as ET

import pytest

from compliance import fixes
from compliance.apiversions import API_2023
from compliance.assessment import Answered, Assessment, Evidence, assess
from compliance.contacts import Contact, RawResponse, SecurityContacts, Unverifiable
from compliance.controls import BENCHMARK_ONLY, CATALOGUE, CONTACT_EMAIL
from compliance.facts import RunFacts
from compliance.findings import Baseline, Finding, Outcome
from compliance.fixes import FixCommand, Note, Portal, Register, Request
from compliance.model import Subscription
from compliance.outputs import (
    Report,
    audit_view,
    findings_csv,
    findings_json,
    junit,
    ocsf,
    step_summary,
)
from compliance.outputs import html as html_fragments
from compliance.outputs.words import evidence_lines, story

SUB = "7f1b2c3d-4e5f-4a6b-87d8-e9f0a1b2c3d6"
SUBSCRIPTION = Subscription(SUB, "Never Set Up", "Enabled", "t-1")
# Defender for Cloud never set up: every control fails, and between them their fixes hold
# every kind of step (the email control's the fix command, the others' planned requests).
REFUSED = RawResponse(
    f"/subscriptions/{SUB}/providers/Microsoft.Security/securityContacts?api-version={API_2023}",
    409,
    "req-1",
    "2026-12-01T00:00:00+00:00",
    '{"error": {"code": "MissingSubscriptionRegistration"}}',
)
READ = SecurityContacts(SUB, API_2023, (), defender_registered=False, responses=(REFUSED,))


@pytest.fixture(scope="module")
def assessment() -> Assessment:
    return assess(SUB, READ, BENCHMARK_ONLY, CATALOGUE)


@pytest.fixture(scope="module")
def findings(assessment: Assessment) -> list[Finding]:
    return [
        Finding(
            SUBSCRIPTION,
            control,
            "5.0.0",
            Outcome.NOT_COMPLIANT,
            assessment.verdicts[control.key].reason,
            assessment.verdicts[control.key].fix,
            evidence=assessment.evidence,
            checked_at="2026-12-01T00:00:01+00:00",
            baseline=Baseline.NEW,
            raw_answers=assessment.raw_answers,
        )
        for control in CATALOGUE
    ]


FACTS = RunFacts(
    target="x", arm_endpoint="https://127.0.0.1", tenant="t", identity="i", auth="cli",
    api_versions=(API_2023,), cis_version="5.0.0", suite_version="1", started="now",
    duration_s=1.0, subscriptions=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def report(findings: list[Finding]) -> Report:
    return Report(FACTS, findings, reports_at=("audit.html",))


def steps(findings: list[Finding]) -> list[tuple[Finding, fixes.Step]]:
    return [(f, step) for f in findings for step in f.fix]


def test_the_fixes_hold_every_kind_of_step(findings):
    kinds = {type(step) for _, step in steps(findings)}
    assert kinds == set(fixes.KINDS.values())
    email = next(f for f in findings if f.control is CONTACT_EMAIL)
    assert [type(s) for s in email.fix] == [Register, Portal, FixCommand]
    for f in findings:
        if f.control is not CONTACT_EMAIL:
            assert [type(s) for s in f.fix] == [Register, Portal, Note, Request]


def commands(step: fixes.Step) -> list[str]:
    """What a text output must print as a command of its own, and the request it sends."""
    if isinstance(step, Request):
        return [step.command, f"{step.method} {step.path}", step.body]
    if isinstance(step, Register | FixCommand):
        return [step.command]
    return [step.text]


def assert_every_step_in_text(text: str, fix: fixes.Fix) -> None:
    """Each step in `text`, each command the end of a line of its own (a shell can take it
    from there), never run into the prose."""
    lines = [line.strip() for line in text.splitlines()]
    for step in fix:
        for shown in commands(step):
            assert any(line.endswith(shown) for line in lines), (shown, text)


def test_the_terminal_and_junit_show_every_step(findings, report, tmp_path):
    for f in findings:
        text, line = story(f)
        assert text.splitlines()[0].startswith("CIS 5.0.0 ")
        assert "How to fix:" in text
        assert_every_step_in_text(text, f.fix)
        assert line == f"CIS 5.0.0 {f.cis_id}: not compliant: {f.reason}"
    junit.write(tmp_path / "junit.xml", report)
    cases = list(ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    for f, case in zip(findings, cases, strict=True):
        failure = case.find("failure")
        assert failure is not None and failure.get("message") == story(f)[1]
        assert_every_step_in_text(failure.text or "", f.fix)


def test_pytest_html_shows_every_step(findings):
    for f in findings:
        row = html_fragments.row_html(f)
        fix = row.split('<pre class="azure-remediation">', 1)[1].split("</pre>", 1)[0]
        assert_every_step_in_text(html.unescape(fix), f.fix)


def test_the_findings_files_show_every_step(findings, report, tmp_path):
    findings_json.write(tmp_path / "f.json", report)
    document = json.loads((tmp_path / "f.json").read_text())
    findings_csv.write(tmp_path / "f.csv", report)
    with (tmp_path / "f.csv").open(newline="") as rows:
        table = list(csv.DictReader(rows))
    ocsf.write(tmp_path / "f.ocsf", report)
    events = [json.loads(line) for line in (tmp_path / "f.ocsf").read_text().splitlines()]
    for n, f in enumerate(findings):
        assert set(document["findings"][n]) >= {"remediation", "evidence", "baseline"}
        assert document["findings"][n]["fix"] == fixes.to_data(f.fix)  # typed, for a merge
        assert document["findings"][n]["baseline"] == "new"
        for text in (
            document["findings"][n]["remediation"],
            table[n]["remediation"],
            events[n]["remediation"]["desc"],  # type: ignore[index]
        ):
            assert_every_step_in_text(text, f.fix)


def test_the_audit_view_has_commands_as_commands(findings):
    data = audit_view.view_data("t", FACTS, audit_view.judged(findings))
    (sub,) = data["subscriptions"]
    for f in findings:
        shown = sub["cases"][f.control.key]["fix"]
        cli = [text for kind, _, text in shown if kind == "cli"]
        rest = [text for kind, _, text in shown if kind == "rest"]
        prose = [text for kind, _, text in shown if kind == "prose"]
        for step in f.fix:
            if isinstance(step, Request):
                assert step.command in cli and f"PUT {step.path}\n{step.body}" in rest
            elif isinstance(step, Register | FixCommand):
                assert [step.note, step.command] in [s[1:] for s in shown if s[0] == "cli"]
            else:
                assert step.text in prose
        assert not any(p.startswith(("CLI", "REST", "az ", "python -m")) for p in prose)
    assert sub["evidence"] == evidence_lines(findings[0].evidence)


def test_the_audit_view_gives_each_command_its_copy_button(browser, findings, report, tmp_path):
    path = tmp_path / "audit.html"
    audit_view.write(path, report)
    page = browser.new_page()
    page.goto(path.as_uri())
    page.locator("tr.sub").click()
    for f in findings:
        case = page.locator(f'.case[data-control="{f.control.key}"]')
        wanted = [s.command for s in f.fix if isinstance(s, Register | FixCommand | Request)]
        assert case.locator(".fix code").all_inner_texts() == wanted
        assert case.locator(".fix button", has_text="Copy command").count() == len(wanted)
        for step in f.fix:
            if isinstance(step, Request):
                assert f"PUT {step.path}\n{step.body}" in case.locator(".fix pre").all_inner_texts()
    page.close()


def test_a_finding_crosses_from_a_worker_whole(findings):
    for f in findings:
        data = json.loads(json.dumps(f.to_dict(raw=True)))
        assert Finding.from_dict(data) == f
        assert data["fix"][0] == {"kind": "register", "subscription_id": SUB}


def test_the_step_summary_shows_each_reason_and_where_the_fixes_are(findings, report):
    summary = step_summary.render(report)
    # one row: the subscription's controls fail for one reason
    assert summary.count("Defender for Cloud has never been set up") == 1
    assert ", ".join(f"CIS {f.cis_id}" for f in findings).replace(".", "\\.") in summary
    assert "How to fix each: audit\\.html." in summary


def test_the_evidence_is_one_object_with_one_serializer(assessment):
    evidence = assessment.evidence
    assert evidence.responses == (
        Answered(REFUSED.path, 409, "req-1", "2026-12-01T00:00:00+00:00"),
    )
    data = evidence.to_dict()
    assert list(data) == ["responses", "api_version", "defender_registered", "contacts"]
    assert Evidence.from_dict(json.loads(json.dumps(data))) == evidence
    assert assessment.raw_answers == (REFUSED.body,)


def test_an_unreadable_subscription_is_assessed_as_such():
    error = Unverifiable("HTTP 403", (REFUSED,), 403)
    assessment = assess(SUB, error, BENCHMARK_ONLY, CATALOGUE)
    assert assessment.error is error and assessment.verdicts == {}
    assert assessment.evidence.to_dict() == {
        "responses": [
            {k: getattr(REFUSED, k) for k in ("path", "status", "request_id", "received_at")}
        ]
    }
    assert not assessment.evidence.judged and assessment.raw_answers == (REFUSED.body,)


def test_a_passing_subscription_keeps_no_raw_answers():
    read = SecurityContacts(
        SUB,
        API_2023,
        (Contact("default", ("soc@contoso.com",), enabled=True, alert_notifications=True,
                 alert_minimal_severity="High", notify_roles_enabled=True,
                 notify_roles=("Owner",), attack_path_minimal_risk="High"),),
        responses=(REFUSED,),
    )  # fmt: skip
    assessment = assess(SUB, read, BENCHMARK_ONLY, CATALOGUE)
    assert all(v.compliant and v.fix == () for v in assessment.verdicts.values())
    assert assessment.raw_answers == ()
