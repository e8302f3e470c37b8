"""What the run's readers get: HTML, JUnit, findings files, and never a token."""

from __future__ import annotations

import csv
import html
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import yaml

from compliance.controls import CATALOGUE
from compliance.emulator import Fault
from compliance.findings import Outcome, compliance_percent
from compliance.fixes import FixCommand, Note, Portal, Register, Request
from compliance.outputs.audit_view import fix_steps, render
from compliance.outputs.html import summary_svg
from compliance.text import markdown_text
from conftest import ROOT, subscription, tenant

VERDICTS = [o.value for o in Outcome]

SUB_A = "aaaaaaaa-0000-4000-8000-000000000001"
SUB_B = "bbbbbbbb-0000-4000-8000-000000000002"
SUB_C = "cccccccc-0000-4000-8000-000000000003"
OUTPUTS = (
    "--html=out/report.html",
    "--self-contained-html",
    "--junitxml=out/junit.xml",
    "--azure-findings=out/findings.json",
    "--azure-findings-csv=out/findings.csv",
    "--azure-audit-html=out/audit.html",
)
JUNIT_TO_VERDICT = {"passed": "compliant", "failure": "not_compliant", "error": "not_verifiable"}


def mixed_tenant(arm) -> None:
    arm.load(
        tenant(
            subscription(SUB_A, "Production"),
            subscription(SUB_B, "Sandbox", securityContacts=[]),
            subscription(SUB_C, "Archive", state="Disabled"),
        )
    )


def junit(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def junit_outcomes(root: ET.Element) -> Counter[str]:
    found: Counter[str] = Counter()
    for case in root.iter("testcase"):
        kinds = [c for c in case if c.tag in ("failure", "error", "skipped")]
        if not kinds:
            found["compliant"] += 1
        elif kinds[0].tag == "skipped":
            waived = (kinds[0].get("type") or "") == "pytest.xfail"
            found["waived" if waived else "skipped"] += 1
        else:
            found[JUNIT_TO_VERDICT[kinds[0].tag]] += 1
    return found


def html_summary(path: Path) -> dict[str, dict[str, str]]:
    """The per-control summary table of the HTML report."""
    table = re.search(r'<table id="azure-summary">(.*?)</table>', path.read_text()).group(1)
    rows = {}
    for key, cells in re.findall(r'<tr data-control="([^"]+)">(.*?)</tr>', table):
        values = re.findall(r'<td class="azure-([\w_]+)">([^<]*)</td>', cells)
        rows[key] = dict(values)
    return rows


def audit_view_data(path: Path) -> dict:
    page = path.read_text()
    return json.loads(re.search(r'id="audit-data">(.*?)</script>', page).group(1))


TITLES = {markdown_text(c.title): c.key for c in CATALOGUE}


def step_summary_counts(text: str) -> dict[str, dict[str, int]]:
    """The per-control table of a Markdown job summary, by control key."""
    lines = text.splitlines()
    header, *rows = [line for line in lines if line.startswith(("| CIS", "| Control"))]
    names = [cell.strip().lower().replace(" ", "_") for cell in header.strip("|").split("|")]
    counts = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) != len(names):
            continue  # a row of the cases' table
        key = TITLES[cells[0].split(" ", 2)[2]]
        counts[key] = {n: int(c) for n, c in zip(names[1:-1], cells[1:-1], strict=True)}
    return counts


def test_html_junit_and_findings_agree_on_every_count(arm, audit, pytester, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "step-summary.md"))
    pytester.makefile(
        ".toml",
        waivers='[[waiver]]\nsubscription = "*"\ncontrol = "attack_path_notifications"\n'
        'reason = "r"\napproved_by = "a"\nexpires = 2099-01-01\n',
    )
    arm.load(
        tenant(
            subscription(SUB_A, "Production"),
            subscription(SUB_B, "Sandbox", securityContacts=[]),
            subscription(SUB_C, "Archive", state="Disabled"),
        )
    )
    arm.fail(SUB_A, Fault(200, body="{}"))  # Production: not verifiable
    result = audit(*OUTPUTS, "--azure-waivers", "waivers.toml")
    out = pytester.path / "out"
    findings = json.loads((out / "findings.json").read_text())
    by_control = {k: Counter({v: n for v, n in s.items() if v in VERDICTS})
                  for k, s in findings["summary"].items()}  # fmt: skip

    # findings: one per control and subscription
    assert len(findings["findings"]) == 3 * 4
    assert findings["schema"] == "azure-security-contacts/findings/v1"
    # JUnit and the terminal say the same
    total = sum(by_control.values(), Counter())
    assert junit_outcomes(junit(out / "junit.xml")) == +total
    result.assert_outcomes(
        passed=total["compliant"],
        failed=total["not_compliant"],
        errors=total["not_verifiable"],
        skipped=total["skipped"],
        xfailed=total["waived"],
    )
    # the HTML summary too
    summary = html_summary(out / "report.html")
    for key, counts in by_control.items():
        assert {v: int(summary[key][v]) for v in VERDICTS} == {v: counts[v] for v in VERDICTS}
    # the CSV has the same rows
    rows = list(csv.DictReader((out / "findings.csv").read_text().splitlines()))
    assert Counter(r["verdict"] for r in rows) == +total
    assert {r["subscription_id"] for r in rows} == {SUB_A, SUB_B, SUB_C}
    # the audit view
    view = audit_view_data(out / "audit.html")
    assert {c["key"]: {v: c["counts"][v] for v in VERDICTS} for c in view["controls"]} == {
        key: {v: counts[v] for v in VERDICTS} for key, counts in by_control.items()
    }
    cases = Counter(c["outcome"] for s in view["subscriptions"] for c in s["cases"].values())
    assert cases == +total
    # and GitHub's job summary
    step = step_summary_counts((pytester.path / "step-summary.md").read_text())
    assert step == {key: {v: counts[v] for v in VERDICTS} for key, counts in by_control.items()}
    assert list(step) == list(findings["summary"])  # in CIS order: 8.1.12 first


def test_the_job_summary_lists_failing_cases_with_reasons_and_caps_them(
    arm, audit, pytester, monkeypatch
):
    arm.load(
        tenant(
            *(
                subscription(
                    f"{i:08x}-0000-4000-8000-{i:012x}", f"team|{i} <b>[x](y)", securityContacts=[]
                )
                for i in range(130)
            )
        )
    )
    result = audit("--azure-step-summary", "summary.md", "--junitxml=out/junit.xml")
    assert result.ret == 1
    text = (pytester.path / "summary.md").read_text()
    assert "### Not compliant or not verifiable: 520 cases of 130 subscriptions" in text
    case_rows = [line for line in text.splitlines() if line.startswith("| not compliant |")]
    # one row a subscription: its four controls fail for one reason
    assert len(case_rows) == 100
    assert "| CIS 8\\.1\\.12, CIS 8\\.1\\.13, CIS 8\\.1\\.14, CIS 8\\.1\\.15 |" in case_rows[0]
    assert "30 more: see out/junit\\.xml." in text  # a path is the user's text: escaped
    assert "no security contact is configured" in case_rows[0]
    # a display name cannot break the table, add markup or a link
    assert "team&#124;0 &lt;b&gt;\\[x\\]\\(y\\)" in text
    assert all(row.count("|") == 5 for row in case_rows)
    # a path given is the run's own; GitHub's step summary is appended to, as GitHub expects
    audit("--azure-step-summary", "summary.md", "-m", "contact_email")
    assert (pytester.path / "summary.md").read_text().count("## Azure security contacts") == 1
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    audit("-m", "contact_email")
    assert (pytester.path / "summary.md").read_text().count("## Azure security contacts") == 2


def test_no_secret_reaches_the_job_summary(arm, audit, pytester):
    token = arm.token
    arm.load(tenant(subscription(SUB_A, "Production")))
    arm.fail(SUB_A, Fault(403, "AuthorizationFailed", f"you sent Bearer {token} and client_secret"))
    audit("--azure-step-summary", "summary.md")
    text = (pytester.path / "summary.md").read_text()
    assert "AuthorizationFailed" in text
    assert token.split(".")[2] not in text and token.split(".")[1] not in text


def test_findings_carry_ids_reason_fix_and_evidence(arm, audit, pytester):
    mixed_tenant(arm)
    audit(*OUTPUTS, "-m", "contact_email", "--cis-version", "1.3.0")
    findings = json.loads((pytester.path / "out" / "findings.json").read_text())
    assert findings["run"]["cis_version"] == "1.3.0"
    assert findings["run"]["identity"].startswith("Emulated auditor (auditor@emulator.invalid")
    assert findings["run"]["api_versions"] == "2023-12-01-preview"
    by_sub = {f["subscription"]["id"]: f for f in findings["findings"]}
    sandbox = by_sub[SUB_B]
    assert sandbox["verdict"] == "not_compliant"
    assert sandbox["control"]["cis_id"] == "2.13"
    assert sandbox["control"]["cis"]["5.0.0"] == "8.1.13"
    assert sandbox["control"]["rationale"].startswith("Defender for Cloud emails")
    assert "no security contact is configured" in sandbox["reason"]
    assert f"python -m compliance fix --subscription {SUB_B}" in sandbox["remediation"]
    assert sandbox["evidence"]["responses"][0]["status"] == 200
    assert sandbox["evidence"]["responses"][0]["request_id"]
    assert by_sub[SUB_A]["evidence"]["contacts"][0]["addresses"] == ["soc@contoso.com"]
    assert by_sub[SUB_C]["verdict"] == "skipped"
    assert findings["summary"]["contact_email"]["compliance_percent"] == 50.0


def test_junit_failure_message_is_one_line_and_body_has_the_fix(arm, audit, pytester):
    mixed_tenant(arm)
    arm.fail(SUB_A, Fault(403, "AuthorizationFailed", "denied"))
    audit(*OUTPUTS, "-m", "contact_email")
    root = junit(pytester.path / "out" / "junit.xml")
    failure = next(root.iter("failure"))
    assert failure.get("message") == (
        "CIS 5.0.0 8.1.13: not compliant: no security contact is configured: Defender for Cloud "
        "notifies nobody"
    )
    assert "How to fix:" in failure.text
    assert f"python -m compliance fix --subscription {SUB_B}" in failure.text
    error = next(root.iter("error"))
    assert "\n" not in error.get("message")
    assert error.get("message").startswith(  # the verdict first, as every message
        "CIS 5.0.0 8.1.13: not verifiable: could not read"
    )
    assert "HTTP 403 AuthorizationFailed" in error.get("message")


def test_junit_has_run_facts_and_the_shape_azure_devops_reads(arm, audit, pytester):
    mixed_tenant(arm)
    audit(*OUTPUTS)
    root = junit(pytester.path / "out" / "junit.xml")
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    for attribute in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp"):
        assert suite.get(attribute) is not None, attribute
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["azure.cis_version"] == "5.0.0"
    assert properties["azure.tenant"] == "11111111-2222-3333-4444-555555555555"
    assert properties["azure.api_versions"] == "2023-12-01-preview"
    assert "auditor@emulator.invalid" in properties["azure.identity"]
    cases = list(suite.iter("testcase"))
    assert int(suite.get("tests")) == len(cases) == 12
    for case in cases:
        assert case.get("classname") and case.get("name") and case.get("time")
        assert case.find("properties") is None  # xunit2 has no per-case properties
    # A class per control (a tests tab groups by it), a name per subscription
    assert {c.get("classname") for c in cases} == {
        f"CIS {c.cis_id('5.0.0')} {c.title}" for c in CATALOGUE
    }
    assert sum(c.get("name") == f"Production ({SUB_A})" for c in cases) == 4


def test_junit_messages_stay_one_line_under_xdist(arm, fake_az, pytester, monkeypatch):
    from conftest import CHECKS

    mixed_tenant(arm)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    pytester.runpytest_subprocess(
        "-p", "compliance.plugin", "--azure-auth", "cli", "--azure-arm-endpoint", arm.url,
        "-n", "2", *OUTPUTS,
    )  # fmt: skip
    root = junit(pytester.path / "out" / "junit.xml")
    messages = [f.get("message") for f in root.iter("failure")]
    assert messages
    assert all("\n" not in m and m.startswith("CIS 5.0.0 ") for m in messages)
    findings = json.loads((pytester.path / "out" / "findings.json").read_text())
    assert len(findings["findings"]) == 12


def html_rows(path: Path) -> dict[str, dict[str, object]]:
    """Each case's row as the report's data holds it: its cells and its expansion."""
    blob = re.search(r'data-jsonblob="([^"]*)"', path.read_text()).group(1)
    tests = json.loads(html.unescape(blob))["tests"]
    return {nodeid: entries[-1] for nodeid, entries in tests.items()}


def test_html_rows_have_columns_and_expand_to_fix_and_evidence(arm, audit, pytester):
    mixed_tenant(arm)
    audit(*OUTPUTS, "-m", "contact_email")
    report = pytester.path / "out" / "report.html"
    page = report.read_text()
    for header in ("Subscription", "Subscription ID", "Control", "Verdict reason"):
        assert f">{header}</th>" in page
    rows = html_rows(report)
    sandbox = next(row for nodeid, row in rows.items() if SUB_B in nodeid)
    cells = "".join(sandbox["resultsTableRow"])
    assert '<td class="col-subscription">Sandbox</td>' in cells
    assert f'<td class="col-subscriptionId">{SUB_B}</td>' in cells
    assert '<td class="col-control">CIS 8.1.13</td>' in cells
    assert "no security contact is configured" in cells
    assert "<h4>How to fix</h4>" in sandbox["log"]
    assert "Why it matters: Defender for Cloud emails its security alerts" in sandbox["log"]
    assert f"python -m compliance fix --subscription {SUB_B}" in sandbox["log"]
    assert "Raw response" in sandbox["log"]
    production = next(row for nodeid, row in rows.items() if SUB_A in nodeid)
    assert "soc@contoso.com" in production["log"]  # the contacts, as evidence
    assert "<svg" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no external assets


def test_a_name_that_says_links_or_duration_keeps_its_row_whole(arm, audit, pytester):
    arm.load(tenant(subscription(SUB_A, 'Partner Links data-column-type="duration" col-links')))
    result = audit(*OUTPUTS, "-m", "contact_email")
    assert result.ret == 0
    (row,) = html_rows(pytester.path / "out" / "report.html").values()
    cells = row["resultsTableRow"]
    assert len(cells) == 6  # result, test, subscription, its id, control, reason
    assert "Partner Links" in cells[1] and "Partner Links" in cells[2]


def test_no_output_ever_contains_the_token(arm, audit, pytester):
    mixed_tenant(arm)
    arm.fail(SUB_A, Fault(401, "InvalidAuthenticationToken", f"token {arm.token} refused"))
    result = audit(*OUTPUTS, "-rA", "--log-file=out/run.log", "--log-file-level=DEBUG", "-v")
    secret = arm.token.split(".")[2]
    texts = [result.stdout.str(), result.stderr.str()]
    texts += [p.read_text() for p in (pytester.path / "out").iterdir()]
    assert len(texts) == 2 + 6
    for text in texts:
        assert secret not in text
        assert arm.token not in text


def test_compliance_percent_counts_waived_against_and_skipped_aside():
    assert compliance_percent(Counter(compliant=3, not_compliant=1, skipped=5)) == 75
    assert compliance_percent(Counter(compliant=1, waived=1)) == 50
    assert compliance_percent(Counter(skipped=2)) is None


def test_summary_chart_is_inline_svg():
    svg = summary_svg({"contact_email": Counter(compliant=2, not_compliant=1)}, {})
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "href" not in svg


# --- pipeline examples ------------------------------------------------------------------------


def test_azure_pipelines_example_publishes_the_default_reports():
    pipeline = yaml.safe_load((ROOT / "examples" / "azure-pipelines.yml").read_text())
    tasks = {step.get("task"): step for step in pipeline["steps"] if "task" in step}
    assert tasks["AzureCLI@2"]["inputs"]["inlineScript"].startswith("pytest --azure-auth cli")
    published = tasks["PublishTestResults@2"]["inputs"]
    assert published["testResultsFormat"] == "JUnit"
    assert published["testResultsFiles"] == default_report("junitxml")
    kept = tasks["PublishPipelineArtifact@1"]
    assert kept["inputs"]["targetPath"] == "reports"
    assert audit_view_path() in kept["displayName"]  # the report to hand an auditor
    # the run's facts reach the run's page: the summary the audit writes is attached to it
    script = tasks["AzureCLI@2"]["inputs"]["inlineScript"]
    summary = re.search(r"--azure-step-summary (\S+)", script).group(1)
    uploads = [s["script"] for s in pipeline["steps"] if "uploadsummary" in s.get("script", "")]
    assert uploads == [
        f'echo "##vso[task.uploadsummary]$(System.DefaultWorkingDirectory)/{summary}"'
    ]
    assert default_report("html").startswith("reports/")


def test_github_actions_example_uploads_the_default_reports():
    workflow = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    assert workflow["permissions"]["id-token"] == "write"
    steps = workflow["jobs"]["audit"]["steps"]
    assert any(step.get("uses", "").startswith("azure/login@") for step in steps)
    assert any("pytest --azure-auth cli" in step.get("run", "") for step in steps)
    uploaded = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    paths = uploaded["with"]["path"].split()
    assert paths[0] == audit_view_path()  # the report to hand an auditor, first
    assert default_report("html") in paths
    assert default_report("junitxml") in paths
    # GitHub shows the verdicts: a maintained JUnit action makes them a check with annotations
    shown = next(s for s in steps if s.get("uses", "").startswith("mikepenz/action-junit-report@"))
    assert shown["with"]["report_paths"] == default_report("junitxml")
    assert shown["if"] == "always()"
    assert workflow["permissions"]["checks"] == "write"


def audit_view_path() -> str:
    """Where pytest.ini puts the audit view."""
    ini = (ROOT / "pytest.ini").read_text()
    return re.search(r"^azure_audit_html = (\S+)", ini, re.M).group(1)


def default_report(flag: str) -> str:
    """The report path pytest.ini's addopts gives `--flag=`."""
    ini = (ROOT / "pytest.ini").read_text()
    return re.search(rf"--{flag}=(\S+)", ini).group(1)


@pytest.fixture(autouse=True)
def _checks_file(pytester):
    from conftest import CHECKS

    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())


def test_a_fix_reads_as_prose_commands_and_requests():
    fix = (
        Register("S"),
        Portal("S", "do this"),
        Note("The commands below update 'default'."),
        Request("PUT", "/x", '{"properties": {}}'),
        Request("PUT", "/y", "{}"),
        FixCommand("S"),
    )
    assert fix_steps(fix) == [
        ["cli", "register Defender for Cloud first",
         "az provider register --namespace Microsoft.Security --subscription S"],
        ["prose", "", "Portal: Microsoft Defender for Cloud > Environment settings > "
         "subscription S > Email notifications: do this, then Save."],
        ["prose", "", "The commands below update 'default'."],
        ["cli", "", "az rest --method put --url /x --body '{\"properties\": {}}'"],
        ["cli", "", "az rest --method put --url /y --body '{}'"],
        ["rest", "", 'PUT /x\n{"properties": {}}'],
        ["rest", "", "PUT /y\n{}"],
        ["cli", FixCommand.note,
         'python -m compliance fix --subscription S --email "$SECURITY_CONTACT"'],
    ]  # fmt: skip


def test_the_audit_view_keeps_data_as_data():
    page = render({"title": "t", "subscriptions": [{"name": "</script><script>alert(1)</script>"}]})
    body = page.split('id="audit-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in body and json.loads(body)["subscriptions"][0]["name"].startswith("</script>")
    policy = re.search(r'Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy


def test_junit_lists_a_test_of_your_own_beside_the_checks(arm, audit, pytester):
    """JUnit is written from the findings; a test that checks no control is still listed,
    under its module, with its own outcome."""
    arm.load(tenant(subscription(SUB_A, "Production")))
    pytester.makepyfile(
        test_own="""
        import pytest

        def test_passes():
            pass

        def test_fails():
            assert 1 == 2, "one is not two"

        @pytest.fixture
        def broken():
            raise RuntimeError("no fixture")

        def test_errors(broken):
            pass

        def test_skips():
            pytest.skip("not today")
        """
    )
    audit("--junitxml=out/junit.xml")
    suite = junit(pytester.path / "out" / "junit.xml").find("testsuite")
    own = {c.get("name"): c for c in suite.iter("testcase") if c.get("classname") == "test_own"}
    assert sorted(own) == ["test_errors", "test_fails", "test_passes", "test_skips"]
    assert list(own["test_passes"]) == []
    assert "one is not two" in own["test_fails"].find("failure").get("message")
    assert "no fixture" in own["test_errors"].find("error").text
    assert own["test_skips"].find("skipped").get("message") == "not today"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("8", "1", "1")


def test_pytest_htmls_facts_are_the_other_reports_facts(arm, audit, pytester):
    """One Report for every output: pytest-html's Audit block names the evidence bundle and
    its digest as the findings do."""
    mixed_tenant(arm)
    audit(*OUTPUTS, "--azure-evidence=out/ev.json")
    run = json.loads((pytester.path / "out" / "findings.json").read_text())["run"]
    page = html.unescape((pytester.path / "out" / "report.html").read_text())
    assert run["evidence_digest"].startswith("sha256:")
    assert f"ev.json (digest {run['evidence_digest']})" in page
    assert f"<td>{run['duration_s']:g} s</td>" in page


def test_a_third_party_junit_reader_sees_one_class_per_control(arm, audit, pytester):
    """junitparser, as CI test reporters read JUnit: the cases grouped by class are the
    controls, each holding every subscription, with the outcomes the findings say."""
    from junitparser import Error, Failure, JUnitXml, Skipped

    mixed_tenant(arm)
    arm.fail(SUB_A, Fault(403, "AuthorizationFailed", "denied"))
    audit(*OUTPUTS)
    suite = next(iter(JUnitXml.fromfile(str(pytester.path / "out" / "junit.xml"))))
    by_class: dict[str, list] = {}
    for case in suite:
        by_class.setdefault(case.classname, []).append(case)
    assert sorted(by_class) == sorted(f"CIS {c.cis_id('5.0.0')} {c.title}" for c in CATALOGUE)
    for cases in by_class.values():
        assert sorted(c.name for c in cases) == sorted(
            [f"Production ({SUB_A})", f"Sandbox ({SUB_B})", f"Archive ({SUB_C})"]
        )
        kinds = {c.name.split(" ")[0]: type(c.result[0]) if c.result else None for c in cases}
        assert kinds == {"Production": Error, "Sandbox": Failure, "Archive": Skipped}


def test_the_job_summary_names_the_audit_view_first(arm, audit, pytester):
    mixed_tenant(arm)
    audit("--azure-step-summary", "summary.md", *OUTPUTS)
    text = (pytester.path / "summary.md").read_text()
    assert "How to fix each: out/audit\\.html, out/report\\.html, out/junit\\.xml." in text
