"""--azure-cross-check end to end: Microsoft's verdict beside every case, through the real
SDK and HTTPS against the emulator playing Defender for Cloud, in every output and in the
evidence a replay reads offline; never a write, never a changed verdict."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from ocsf.v1_7_0.events import ComplianceFinding
from test_ocsf import not_in_schema

import compliance.plugin
from compliance.emulator import ArmEmulator, load_tenant
from compliance.evidence import EvidenceError, load_bundle
from compliance.microsoft import ASSESSED, ASSESSMENT_KEYS
from conftest import CHECKS, subscription, tenant

DEMO_OUTCOMES = {"failed": 21, "passed": 18, "skipped": 8, "xfailed": 1, "errors": 8}
OUTPUTS = (
    "--azure-findings=findings.json",
    "--azure-findings-csv=findings.csv",
    "--azure-findings-ocsf=events.jsonl",
    "--azure-step-summary=summary.md",
    "--azure-evidence=evidence.json",
    "--junitxml=junit.xml",
    "--html=report.html",
)
SUB_A = "aaaaaaaa-0000-4000-8000-000000000001"
SUB_B = "bbbbbbbb-0000-4000-8000-000000000002"
RECORDED_SUB = "00000000-0000-0000-0000-000000000000"
RECORDED = Path(__file__).parent / "data" / "recorded"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    return pytester.runpytest("-p", "no:cacheprovider", *args, plugins=[compliance.plugin])


def findings(path: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(path.read_text())["findings"]
    return found


def microsoft(path: Path, *, timeless: bool = False) -> dict[tuple[str, str], Any]:
    """Each case's `microsoft` object (`timeless`: less the time the contacts were read,
    which differs between two live runs)."""
    found = {}
    for f in findings(path):
        m = f.get("microsoft")
        if timeless and m and m["why"]:
            m = {**m, "why": re.sub(r"read at \S+", "read at T", m["why"])}
        found[f["subscription"]["id"], f["control"]["key"]] = m
    return found


def assessment_requests(arm: ArmEmulator) -> list[str]:
    return [
        r.path for r in arm.requests if "/assessments" in r.path or "/assessmentMetadata" in r.path
    ]


# --- the demo ---------------------------------------------------------------------------------


def test_the_demo_cross_checked_shows_microsofts_verdict_on_every_case(pytester, arm, fake_az):
    result = run(pytester, "--azure-demo", "--azure-cross-check", *OUTPUTS)
    result.assert_outcomes(**DEMO_OUTCOMES)  # the cross-check never changes a verdict
    found = findings(pytester.path / "findings.json")
    assert len(found) == 56 and all(f["microsoft"] is not None for f in found)
    for f in found:
        m = f["microsoft"]
        if f["control"]["key"] == "attack_path_notifications":
            assert (m["assessment"], m["status"], m["agrees"]) == (None, None, None)
        else:
            assert m["assessment"] == ASSESSED[f["control"]["key"]].assessment
    whys = {f["microsoft"]["why"] for f in found if f["microsoft"]["agrees"] is False}
    assert whys and not any(w.startswith("unexplained") for w in whys)
    for kind in (
        "Microsoft's policy accepts any non-empty address; 'soc_at_fabrikam.com' is not an address",
        "Microsoft's policy does not know the organisation's policy: addresses outside",
        "Microsoft's policy does not check whether a contact is enabled",
        "Microsoft's policy fails only when owner mail is Off and alerts start at High",
        "assessed 2026-11-30, contact changed since",
        "NotApplicable: policy exempted",
    ):
        assert any(w.startswith(kind) for w in whys), kind
    assert any(f["microsoft"]["agrees"] is True for f in found)
    research = [f["microsoft"] for f in found if f["subscription"]["name"] == "Northwind Research"]
    assert {m["status"] for m in research} == {None}  # Defender never set up: no verdict
    assert all(
        "409 MissingSubscriptionRegistration" in m["why"] for m in research if m["assessment"]
    )
    # the count, in the run's facts and on the terminal
    run_facts = json.loads((pytester.path / "findings.json").read_text())["run"]
    line = "Microsoft Defender for Cloud's verdict beside ours: 19 agree, 8 disagree (8 explained)"
    assert run_facts["cross_check"].startswith(line)
    result.stdout.fnmatch_lines([f"azure: {line}*"])
    outputs_show_it(pytester.path)


def outputs_show_it(out: Path) -> None:
    with (out / "findings.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert {r["microsoft_agrees"] for r in rows} == {"true", "false", ""}
    assert any(r["microsoft_why"].startswith("NotApplicable") for r in rows)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert all("microsoft" in e["unmapped"] for e in events)
    for data in events:  # still OCSF 1.7.0 Compliance Findings
        assert not_in_schema(ComplianceFinding.model_validate(data)) == []
    root = ET.parse(out / "junit.xml").getroot()
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["azure.cross_check"].startswith("Microsoft Defender for Cloud's verdict")
    texts = [e.text or "" for e in root.iter() if e.tag in ("failure", "error")]
    assert sum("Microsoft Defender for Cloud: Healthy" in t and "disagrees:" in t for t in texts)
    assert (
        "**Microsoft's verdict**: Microsoft Defender for Cloud's verdict beside ours"
        in (out / "summary.md").read_text()
    )
    assert "azure-microsoft" in (out / "report.html").read_text()  # pytest-html's rows
    bundle = load_bundle(out / "evidence.json")
    assert len(bundle["microsoft"]["metadata"]) == 3
    assert len(bundle["microsoft"]["assessments"]) == 12  # every subscription read


def test_a_stricter_policy_shows_the_severity_level_microsoft_does_not_check(
    pytester, arm, fake_az
):
    result = run(
        pytester, "--azure-demo", "--azure-cross-check", "--azure-min-alert-severity=Low",
        "--azure-findings=findings.json", "-m", "alert_severity",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    whys = [m and m["why"] for m in microsoft(pytester.path / "findings.json").values()]
    assert (
        "Microsoft's policy does not check the severity level: alerts start at High, the "
        "organisation's policy asks for Low or lower"
    ) in whys


# --- what it asks Azure -----------------------------------------------------------------------


def test_three_gets_per_subscription_and_three_per_run_and_nothing_else(pytester, arm, audit):
    arm.load(load_tenant("demo"))
    audit("--azure-cross-check")
    assert {r.method for r in arm.requests} == {"GET"}
    asked = assessment_requests(arm)
    assert sum("/assessmentMetadata/" in p for p in asked) == 3  # once per run
    per_subscription = [p for p in asked if p.startswith("/subscriptions/")]
    assert len(per_subscription) == 3 * 12  # every subscription read; none skipped or hidden
    assert {p.rsplit("/", 1)[1] for p in per_subscription} == set(ASSESSMENT_KEYS)
    assert all(r.query.get("api-version") == "2021-06-01" for r in arm.requests if r.path in asked)


def test_without_the_option_no_assessment_is_asked_for(pytester, arm, audit):
    arm.load(load_tenant("demo"))
    result = audit("--azure-findings=findings.json")
    assert assessment_requests(arm) == []
    assert all("microsoft" not in f for f in findings(pytester.path / "findings.json"))
    assert "Defender for Cloud's verdict" not in result.stdout.str()


def test_the_ini_file_turns_it_on(pytester, arm, audit):
    arm.load(tenant(subscription(SUB_A)))
    pytester.makeini("[pytest]\nazure_cross_check = true\n")
    audit("--azure-findings=findings.json")
    assert len(assessment_requests(arm)) == 6


def test_read_by_a_child_process_too(pytester, arm, audit, reading):
    arm.load(tenant(subscription(SUB_A), subscription(SUB_B, securityContacts=[])))
    audit("--azure-cross-check", "--azure-findings=findings.json")
    found = microsoft(pytester.path / "findings.json")
    assert found[SUB_A, "contact_email"]["agrees"] is True
    assert found[SUB_B, "contact_email"]["status"] == "Unhealthy"
    assert found[SUB_B, "owner_notifications"]["agrees"] is True


# --- no Microsoft verdict is never an error of ours -------------------------------------------


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ({"status": 404, "code": "NotFound", "message": "nope"}, "HTTP 404 NotFound: nope"),
        ({"status": 200, "body": "<html>sign in</html>"}, "not the assessment JSON"),
        ({"status": 200, "body": '{"properties": {"status": {"code": 1}}}'}, "code is int"),
        (
            {
                "status": 200,
                "body": json.dumps({"id": f"/subscriptions/{SUB_B}/x", "properties": {}}),
            },
            "names another resource",
        ),
    ],
)
def test_an_answer_that_is_no_verdict_changes_no_outcome(pytester, arm, audit, fault, why):
    arm.load(tenant(subscription(SUB_A, defenderAssessmentsFault=fault)))
    result = audit("--azure-cross-check", "--azure-findings=findings.json")
    result.assert_outcomes(passed=4)
    for key, m in microsoft(pytester.path / "findings.json").items():
        assert m["status"] is None and m["agrees"] is None, key
        if m["assessment"]:
            assert why in m["why"]


def test_a_cloud_without_the_api_version_gives_no_verdict(pytester, arm, audit):
    """Any non-200 is no verdict: here ARM's refusal of the assessments' api-version."""
    refusal = {"status": 400, "code": "NoRegisteredProviderFound", "message": "no 2021-06-01"}
    arm.load(tenant(subscription(SUB_A, defenderAssessmentsFault=refusal)))
    audit("--azure-cross-check", "--azure-findings=findings.json").assert_outcomes(passed=4)
    m = microsoft(pytester.path / "findings.json")[SUB_A, "contact_email"]
    assert m["why"] == "no Microsoft verdict: HTTP 400 NoRegisteredProviderFound: no 2021-06-01"


def test_real_answers_recorded_by_azure_cli(pytester, arm, audit):
    """The recorded entries (capitalised `Source`, `Id`) served as the GET answers of the
    subscription they were recorded for, which has no contact: Unhealthy, as the suite."""
    recording = json.loads(
        (RECORDED / "azure-cli-2020-assessments-list-three-keys.json").read_text()
    )
    entries = recording["answers"][0]["entries"]
    arm.load(tenant(subscription(RECORDED_SUB, securityContacts=[], recordedAssessments=entries)))
    audit("--azure-cross-check", "--azure-findings=findings.json")
    for (_, control), m in microsoft(pytester.path / "findings.json").items():
        if control != "attack_path_notifications":
            assert (m["status"], m["agrees"]) == ("Unhealthy", True), control


# --- evidence and replay ----------------------------------------------------------------------


@pytest.mark.parametrize("workers", [(), ("-n", "2")])
def test_a_replay_gives_the_same_microsoft_objects_offline(
    pytester, arm, fake_az, monkeypatch, workers
):
    live = run(
        pytester, "--azure-demo", "--azure-cross-check", "--azure-evidence=ev.json",
        "--azure-findings=live.json", *workers,
    )  # fmt: skip
    live.assert_outcomes(**DEMO_OUTCOMES)
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    replay = run(
        pytester, "--azure-replay=ev.json", "--azure-auth=cli", f"--azure-arm-endpoint={arm.url}",
        "--azure-findings=replay.json", *workers,
    )  # fmt: skip
    replay.assert_outcomes(**DEMO_OUTCOMES)
    assert arm.requests == []
    assert microsoft(pytester.path / "replay.json") == microsoft(pytester.path / "live.json")


def test_under_xdist_every_case_gets_the_serial_runs_microsoft_object(pytester, arm, fake_az):
    run(pytester, "--azure-demo", "--azure-cross-check", "--azure-findings=serial.json")
    run(pytester, "--azure-demo", "--azure-cross-check", "--azure-findings=n2.json", "-n", "2")
    serial = microsoft(pytester.path / "serial.json", timeless=True)
    assert microsoft(pytester.path / "n2.json", timeless=True) == serial


def test_an_edited_microsoft_answer_breaks_the_bundles_digest(pytester, arm, audit):
    arm.load(tenant(subscription(SUB_A)))
    audit("--azure-cross-check", "--azure-evidence=ev.json")
    path = pytester.path / "ev.json"
    bundle = json.loads(path.read_text())
    answer = bundle["microsoft"]["assessments"][SUB_A]["responses"][0]
    answer["body"] = answer["body"].replace("Healthy", "Unhealthy")
    path.write_text(json.dumps(bundle))
    with pytest.raises(EvidenceError, match="edited"):
        load_bundle(path)


def test_a_replay_lacking_an_answer_says_why_it_has_no_verdict(pytester, arm, audit):
    arm.load(tenant(subscription(SUB_A)))
    audit("--azure-cross-check", "--azure-evidence=ev.json")
    bundle = json.loads((pytester.path / "ev.json").read_text())
    bundle["microsoft"]["assessments"][SUB_A]["responses"] = []
    bundle["microsoft"]["metadata"] = []  # no metadata: the documented policy is assumed
    from compliance.evidence import seal

    (pytester.path / "ev.json").write_text(json.dumps(seal(bundle)))
    result = run(pytester, "--azure-replay=ev.json", "--azure-findings=replay.json")
    result.assert_outcomes(passed=4)
    m = microsoft(pytester.path / "replay.json")[SUB_A, "contact_email"]
    assert m["status"] is None
    assert m["why"].startswith("no Microsoft verdict: the evidence bundle holds no answer to GET")
    assert m["policy"] == ASSESSED["contact_email"].policy


# --- the reader -------------------------------------------------------------------------------


@pytest.fixture
def reader(arm: ArmEmulator):
    from compliance.arm import CLOUDS, ArmReader

    made = ArmReader(
        arm.credential(), CLOUDS["AzureCloud"], arm.url, arm.ca_path, cross_check=ASSESSMENT_KEYS
    )
    yield made
    made.close()


@pytest.mark.parametrize("bad_id", ["x/../" + SUB_A, "#x", ""])
def test_an_id_that_is_not_a_guid_is_never_cross_checked(arm, reader, bad_id):
    from compliance.contacts import Unverifiable

    arm.load(tenant(subscription(SUB_A)))
    with pytest.raises(Unverifiable, match="not a subscription ID"):
        reader.contacts.read_cross_checked(bad_id)
    read = reader.contacts.assessments.pop(bad_id.lower())
    assert [r.answer for r in read.reads] == [None, None, None]
    assert all((r.problem or "").startswith("not read: ") for r in read.reads)
    assert arm.requests == []


def test_the_reader_reads_beside_the_contacts_and_the_metadata_once(arm, reader):
    arm.load(tenant(subscription(SUB_A)))
    contacts = reader.contacts.read_cross_checked(SUB_A)
    assert contacts.contacts  # what the audit judges, as without the cross-check
    read = reader.contacts.assessments.pop(SUB_A.lower())
    assert [r.key for r in read.reads] == list(ASSESSMENT_KEYS)
    assert all(r.problem is None and r.answer and r.answer.status == 200 for r in read.reads)
    metadata = reader.contacts.read_metadata()
    assert [a.status for a in metadata] == [200, 200, 200]
    assert all(r.method == "GET" for r in arm.requests)


def test_the_audit_view_shows_microsofts_verdict_beside_ours(pytester, browser):
    """A disagreeing case is marked in its cell and can be filtered to; a subscription's
    details say Microsoft's verdict and why; the printed record holds every disagreement."""
    from test_audit_record import printed, squeezed

    result = run(pytester, "--azure-demo", "--azure-cross-check", "--azure-audit-html=a.html",
                 "--azure-findings=f.json")  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    disagreeing = [f for f in findings(pytester.path / "f.json")
                   if f["microsoft"] and f["microsoft"]["agrees"] is False]  # fmt: skip
    assert disagreeing
    page = browser.new_page()
    page.goto((pytester.path / "a.html").as_uri())
    marks = page.locator("#cases td .differs")
    assert marks.count() == len(disagreeing)
    page.locator("#disagrees-filter").check()
    shown = {page.locator("#cases tr.sub").nth(n).get_attribute("data-subscription")
             for n in range(page.locator("#cases tr.sub").count())}  # fmt: skip
    assert shown == {f["subscription"]["id"] for f in disagreeing}
    first = disagreeing[0]
    page.locator(f'tr.sub[data-subscription="{first["subscription"]["id"]}"]').click()
    said = page.locator(f'.case[data-control="{first["control"]["key"]}"] p.microsoft')
    assert "disagrees: " + first["microsoft"]["why"] in said.inner_text()
    page.close()
    record = squeezed("".join(printed(browser, pytester.path / "a.html")))
    for f in disagreeing:
        assert squeezed(f["microsoft"]["why"]) in record
