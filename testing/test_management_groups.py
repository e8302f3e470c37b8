"""Management-group scope: exactly the subtree, nested groups included, each subscription with
its path from the root; a bounded number of requests; clear errors; replayable."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from test_plugin import assert_run_error

import compliance.plugin
from compliance.arm.groups import read_group
from compliance.arm.reader import subscriptions_from_page
from compliance.contacts import RawResponse
from conftest import CHECKS, subscription, tenant

RECORDED = Path(__file__).parent / "data" / "recorded"
GROUPS = "/providers/Microsoft.Management/managementGroups"
PAYROLL = "d7f8a9b0-c1d2-4e3f-8a4b-5c6d7e8f9a03"  # the demo's subscription the auditor cannot see
LANDING_ZONES = {  # the demo's subscriptions below Landing Zones (Corp and Online)
    "Contoso Production", "Contoso Legacy", "Northwind Staging", "Contoso Payroll",
    "Contoso Marketing", "Fabrikam Analytics", "Fabrikam Marketing",
}  # fmt: skip


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    return pytester.runpytest("-p", "no:cacheprovider", *args, plugins=[compliance.plugin])


def path(finding: dict[str, Any]) -> str:
    return " > ".join(g["name"] for g in finding["subscription"]["management_groups"])


def findings(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    return json.loads((pytester.path / "out" / "findings.json").read_text())["findings"]


def test_a_demo_group_is_audited_exactly_with_every_path(pytester: pytest.Pytester) -> None:
    result = run(
        pytester, "--azure-demo", "--azure-management-group", "landing-zones",
        "--azure-findings=out/findings.json", "--azure-findings-csv=out/findings.csv",
        "--junitxml=out/junit.xml", "--azure-audit-html=out/audit.html",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    found = findings(pytester)
    assert {f["subscription"]["name"] for f in found} == LANDING_ZONES
    assert len(found) == 4 * len(LANDING_ZONES)
    paths = {f["subscription"]["name"]: path(f) for f in found}
    assert paths["Contoso Production"] == "Tenant Root Group > Contoso > Landing Zones > Corp"
    assert paths["Fabrikam Marketing"] == "Tenant Root Group > Contoso > Landing Zones > Online"
    # Below the group but not visible to the identity: reported, never left out or passed
    payroll = [f for f in found if f["subscription"]["id"] == PAYROLL]
    assert {f["verdict"] for f in payroll} == {"not_verifiable"}
    assert "Security Reader" in payroll[0]["reason"]
    # The path reaches every report
    text = (pytester.path / "out" / "findings.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert {r["management_group_path"] for r in rows} == {
        "Tenant Root Group > Contoso > Landing Zones > Corp",
        "Tenant Root Group > Contoso > Landing Zones > Online",
    }
    junit = ET.parse(pytester.path / "out" / "junit.xml").getroot()
    failure = next(junit.iter("failure"))
    assert "Management groups: Tenant Root Group > Contoso > Landing Zones >" in failure.text
    props = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert props["azure.management_groups"] == "landing-zones"
    view = (pytester.path / "out" / "audit.html").read_text()
    assert '"groups":[{"group":"Corp"' in view and '"group":"Online"' in view


def test_the_hierarchy_costs_a_request_per_level_not_per_subscription(
    arm: Any, audit: Any, pytester: pytest.Pytester
) -> None:
    groups = [{"name": "org", "displayName": "Org"}] + [
        {"name": f"bu-{b}", "displayName": f"BU {b}", "parent": "org"} for b in range(5)
    ] + [
        {"name": f"team-{b}-{t}", "displayName": f"Team {b}.{t}", "parent": f"bu-{b}"}
        for b in range(5) for t in range(4)
    ]  # fmt: skip
    subs = [
        subscription(f"{i:08x}-0000-4000-8000-{i:012x}", f"app-{i}",
                     managementGroup=f"team-{i % 5}-{i % 4}")
        for i in range(300)
    ]  # fmt: skip
    arm.load(tenant(*subs, managementGroups=groups))
    result = audit("--azure-management-group", "bu-2", "--collect-only", "-q")
    assert result.ret == 0
    asked = [r for r in arm.requests if r.path.startswith(GROUPS)]
    # the subtree at once, then Org and the root above it: 3 requests for 60 subscriptions
    assert [r.path.rsplit("/", 1)[1] for r in asked] == ["bu-2", "org", arm.tenant_id]
    assert sum(1 for line in result.outlines if "::test_" in line) == 60 * 4
    assert {r.method for r in arm.requests} == {"GET"}


def test_selection_options_combine_with_a_group(arm: Any, audit: Any) -> None:
    inside = "aaaaaaaa-0000-4000-8000-000000000001"
    also_inside = "aaaaaaaa-0000-4000-8000-000000000002"
    outside = "bbbbbbbb-0000-4000-8000-000000000003"
    arm.load(tenant(
        subscription(inside, "In", managementGroup="corp"),
        subscription(also_inside, "Also in", managementGroup="corp"),
        subscription(outside, "Out"),
        managementGroups=[{"name": "corp", "displayName": "Corp"}],
    ))  # fmt: skip

    def selected(*args: str) -> set[str]:
        result = audit("--azure-management-group", "corp", "--collect-only", "-q", *args)
        return {line.split("(")[-1].split(")")[0] for line in result.outlines if "::" in line}

    assert selected() == {inside, also_inside}
    assert selected("--azure-subscription", inside) == {inside}
    assert selected("--azure-exclude-subscription", inside) == {also_inside}
    assert selected("-k", "Also") == {also_inside}
    result = audit("--azure-management-group", "corp", "--azure-subscription", outside)
    assert_run_error(result, f"--azure-subscription {outside}: not visible to this identity or not "
                             "below --azure-management-group corp*")  # fmt: skip


@pytest.mark.parametrize(
    ("group", "line"),
    [
        ("secret", "--azure-management-group secret: cannot read it (HTTP 403 AuthorizationFailed"
                   "*); assign the identity the Management Group Reader role on this group*"),
        ("nope", "--azure-management-group nope: cannot read it (HTTP 404 NotFound*); no such "
                 "group is visible: give the group's ID (its name), not its display name"),
        ("corp/../x", "--azure-management-group: 'corp/../x' is not a management group ID*"),
    ],
)  # fmt: skip
def test_a_group_that_cannot_be_read_is_one_error_line(
    arm: Any, audit: Any, group: str, line: str
) -> None:
    arm.load(tenant(
        subscription("aaaaaaaa-0000-4000-8000-000000000001", managementGroup="secret"),
        managementGroups=[{"name": "secret", "displayName": "Secret", "forbidden": True}],
    ))  # fmt: skip
    assert_run_error(audit("--azure-management-group", group), line)


def test_a_path_starts_where_the_identity_may_read(arm: Any, audit: Any, pytester: Any) -> None:
    arm.load(tenant(
        subscription("aaaaaaaa-0000-4000-8000-000000000001", "App", managementGroup="team"),
        managementGroups=[
            {"name": "org", "displayName": "Org", "forbidden": True},
            {"name": "team", "displayName": "Team", "parent": "org"},
        ],
    ))  # fmt: skip
    audit("--azure-management-group", "team", "--azure-findings=out/findings.json")
    (found, *_) = findings(pytester)
    # Org is named by Team's own answer; above it nothing could be read
    assert [g["name"] for g in found["subscription"]["management_groups"]] == ["Org", "Team"]


def test_a_replay_reads_the_group_from_the_bundle(
    pytester: pytest.Pytester, arm: Any, fake_az: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scope = ("--azure-management-group", "landing-zones")
    live = run(pytester, "--azure-demo", *scope, "--azure-evidence=ev.json",
               "--azure-findings=out/findings.json")  # fmt: skip
    assert live.ret == pytest.ExitCode.TESTS_FAILED
    recorded = {(f["subscription"]["id"], f["control"]["key"]): f for f in findings(pytester)}
    bundle = json.loads((pytester.path / "ev.json").read_text())
    assert [a["status"] for a in bundle["management_groups"]["landing-zones"]] == [200, 200, 200]
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    offline = ("--azure-auth=cli", f"--azure-arm-endpoint={arm.url}")
    replay = run(pytester, "--azure-replay=ev.json", *scope, *offline,
                 "--azure-findings=out/findings.json")  # fmt: skip
    assert replay.ret == pytest.ExitCode.TESTS_FAILED
    replayed = {(f["subscription"]["id"], f["control"]["key"]): f for f in findings(pytester)}
    assert {k: f["verdict"] for k, f in replayed.items()} == {
        k: f["verdict"] for k, f in recorded.items()
    }
    assert {k: f["subscription"] for k, f in replayed.items()} == {
        k: f["subscription"] for k, f in recorded.items()
    }
    assert arm.requests == []
    # without the option too: a replay audits what its run audited
    same = run(pytester, "--azure-replay=ev.json", *offline, "--azure-findings=out/findings.json")
    assert {(f["subscription"]["id"], f["control"]["key"]) for f in findings(pytester)} == set(
        recorded
    )
    assert same.ret == pytest.ExitCode.TESTS_FAILED
    other = run(pytester, "--azure-replay=ev.json", "--azure-management-group", "corp")
    assert_run_error(other, "--azure-management-group corp: the evidence bundle holds no answer*")


def test_real_recorded_answers_are_read_as_a_tree() -> None:
    recording = json.loads(
        (RECORDED / "azure-cli-management-group-expand-recurse.json").read_text()
    )
    answers = {a["path"]: a for a in recording["answers"]}

    def get(url: str, log: list[RawResponse]) -> RawResponse:
        path = url.removeprefix("https://arm").split("?")[0]
        if path not in answers:  # the cassette holds no answer above testcligetgroup1
            return RawResponse(path, 403, None, "", '{"error": {"code": "AuthorizationFailed"}}')
        answer = answers[path]
        raw = RawResponse(path, answer["status"], None, "", answer["body"])
        log.append(raw)
        return raw

    found, log = read_group(get, "https://arm", "testcligetgroup2")
    assert found == []  # groups only: the recording's tenant had no subscription below them
    assert [a.path for a in log] == [f"{GROUPS}/testcligetgroup2"]
    # the nested subtree is walked: a subscription two groups down has the whole path
    tree = json.loads(answers[f"{GROUPS}/testcligetgroup2"]["body"])
    leaf = tree["properties"]["children"][0]["children"][0]
    leaf["children"] = [{"id": "/subscriptions/x", "type": "/subscriptions", "name": "x",
                         "displayName": "Leaf app"}]  # fmt: skip
    answers[f"{GROUPS}/testcligetgroup2"]["body"] = json.dumps(tree)
    (app,), _ = read_group(get, "https://arm", "testcligetgroup2")
    assert (
        app.display_name == "Leaf app" and app.tenant_id == "c7a87cda-9a66-4920-b0f8-869baa04efe0"
    )
    assert app.management_group_path == (
        "testcligetgroup1 > testcligetgroup2 > testcligetgroup3 > testcligetgroup4"
    )


def test_lighthouse_delegations_are_read_from_a_real_list() -> None:
    recording = json.loads(
        (RECORDED / "azure-sdk-for-python-subscriptions-2019-11-01.json").read_text()
    )
    subs, _ = subscriptions_from_page(json.loads(recording["answers"][0]["body"]))
    delegated = [s for s in subs if s.managed_by_tenants]
    assert delegated and all(s.tenant_id for s in delegated)


def test_the_demo_shows_a_delegated_subscription_with_its_home_tenant(
    pytester: pytest.Pytester,
) -> None:
    run(pytester, "--azure-demo", "-m", "contact_email", "--azure-findings=out/findings.json")
    (woodgrove,) = [
        f for f in findings(pytester) if f["subscription"]["name"] == "Woodgrove Billing"
    ]
    assert woodgrove["subscription"]["tenant_id"] == "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    assert woodgrove["subscription"]["managed_by_tenants"] == [
        "5f1e5b2c-7a3e-4d0b-9c61-2f0d7e8a4b10"
    ]
