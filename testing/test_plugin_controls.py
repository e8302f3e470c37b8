"""The plugin's control options end to end: CIS versions, markers, policy and waivers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter

import pytest

from compliance import cis
from compliance.arm import ApiVersionGate
from compliance.controls import CONTROLS
from compliance.emulator import Fault
from conftest import COMPLIANT, subscription, tenant

SUB_A = "aaaaaaaa-0000-4000-8000-000000000001"
SUB_B = "bbbbbbbb-0000-4000-8000-000000000002"
CHECKS = "test_security_contacts.py"
EMAIL = ("-m", "contact_email")


def with_contact(sub_id: str, **changes: object) -> dict[str, object]:
    return subscription(
        sub_id, securityContacts=[{"name": "default", "properties": {**COMPLIANT, **changes}}]
    )


def run_error(result, pattern: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {pattern}"])


# --- CIS versions and markers -----------------------------------------------------------------


def test_newest_benchmark_numbering_by_default(arm, audit):
    arm.load(tenant(subscription(SUB_A, "Prod")))
    result = audit("--collect-only", "-q")
    assert [line for line in result.outlines if "::" in line] == [
        f"{CHECKS}::test_security_contact_email_configured[CIS 8.1.13: Prod ({SUB_A})]",
        f"{CHECKS}::test_high_severity_alert_notifications[CIS 8.1.14: Prod ({SUB_A})]",
        f"{CHECKS}::test_owner_role_notifications[CIS 8.1.12: Prod ({SUB_A})]",
        f"{CHECKS}::test_attack_path_notifications[CIS 8.1.15: Prod ({SUB_A})]",
    ]


def test_older_benchmark_renumbers_and_deselects_attack_paths(arm, audit):
    arm.load(tenant(with_contact(SUB_A, emails="")))
    result = audit("--cis-version", "1.3.0", "-v")
    result.assert_outcomes(passed=2, failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            f"*email_configured[[]CIS 2.13: sub-aaaa ({SUB_A})[]] FAILED*",
            f"*alert_notifications[[]CIS 2.14: sub-aaaa ({SUB_A})[]] PASSED*",
            f"*role_notifications[[]CIS 2.15: sub-aaaa ({SUB_A})[]] PASSED*",
            "CIS 1.3.0 2.13 Ensure 'Additional email addresses' is configured *",
            "security contact 'default' has no email address",
        ]
    )
    assert "::test_attack_path_notifications" not in result.stdout.str()


def test_benchmark_version_from_ini(arm, audit, pytester):
    arm.load(tenant(subscription(SUB_A)))
    pytester.makeini("[pytest]\ncis_version = 4.0.0\n")
    result = audit("--collect-only", "-q")
    assert any("[CIS 9.1.15: " in line for line in result.outlines)


def test_unknown_benchmark_version_lists_the_known_ones(arm, audit):
    result = audit("--cis-version", "1.2.0")
    run_error(result, "--cis-version: '1.2.0' is not one of 1.1.0, 1.3.0, *, 4.0.0, 5.0.0")
    assert arm.requests == []


def test_a_version_added_to_the_numbering_table_numbers_the_cases(
    arm, audit, monkeypatch, tmp_path
):
    # One table entry, nothing else: the option takes it, the case ids, the markers and the
    # findings show it, and the control it lacks is deselected.
    numbered = {"contact_email": "7.2.3", "alert_severity": "7.2.4", "owner_notifications": "7.2.1"}
    monkeypatch.setitem(cis.NUMBERING, "6.0.0", numbered)
    arm.load(tenant(subscription(SUB_A, "Prod")))
    findings = tmp_path / "findings.json"
    result = audit("--cis-version", "6.0.0", "-v", f"--azure-findings={findings}")
    result.assert_outcomes(passed=3, deselected=1)
    result.stdout.fnmatch_lines(
        [
            f"*::test_security_contact_email_configured[[]CIS 7.2.3: Prod ({SUB_A})[]] PASSED*",
            f"*::test_high_severity_alert_notifications[[]CIS 7.2.4: Prod ({SUB_A})[]] PASSED*",
            f"*::test_owner_role_notifications[[]CIS 7.2.1: Prod ({SUB_A})[]] PASSED*",
        ]
    )
    shown = [f["control"] for f in json.loads(findings.read_text())["findings"]]
    assert {(c["key"], c["cis_version"], c["cis_id"]) for c in shown} == {
        (key, "6.0.0", number) for key, number in numbered.items()
    }
    assert list(shown[0]["cis"])[-2:] == ["5.0.0", "6.0.0"]
    newest = audit("--collect-only", "-q")  # the newest version is the default
    assert f"::test_owner_role_notifications[CIS 7.2.1: Prod ({SUB_A})]" in newest.stdout.str()
    markers = audit("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.owner_notifications: *, 6.0.0 7.2.1)"])


@pytest.mark.parametrize(
    ("marker", "function"),
    [
        ("contact_email", "test_security_contact_email_configured"),
        ("alert_severity", "test_high_severity_alert_notifications"),
        ("owner_notifications", "test_owner_role_notifications"),
        ("attack_path_notifications", "test_attack_path_notifications"),
    ],
)
def test_one_control_selected_by_marker(arm, audit, marker, function):
    arm.load(tenant(subscription(SUB_A), subscription(SUB_B)))
    result = audit("-m", marker, "--strict-markers", "-v")
    result.assert_outcomes(passed=2, deselected=6)
    assert result.stdout.str().count(f"::{function}[") == 2


def test_markers_are_documented(arm, audit):
    result = audit("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.contact_email: Ensure 'Additional email addresses'*(CIS 1.1.0 2.16, *)"]
    )


def test_a_check_outside_the_catalogue_is_refused(arm, audit, pytester):
    arm.load(tenant(subscription(SUB_A)))
    pytester.makepyfile(test_extra="def test_rogue(security_contacts):\n    assert True\n")
    result = audit("test_extra.py")
    run_error(result, "test_extra.py::test_rogue*is not in the control catalogue*")


# --- siblings through the whole stack ---------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "function", "reason"),
    [
        (
            {"notificationsSources": [{"sourceType": "AttackPath", "minimalRiskLevel": "High"}]},
            "test_high_severity_alert_notifications",
            "*has alert notifications turned off*",
        ),
        (
            {"notificationsByRole": {"state": "On", "roles": ["Contributor"]}},
            "test_owner_role_notifications",
            "*notifies roles Contributor, not Owner*",
        ),
        (
            {
                "notificationsSources": [
                    {"sourceType": "AttackPath", "minimalRiskLevel": "Critical"}
                ]
            },
            "test_attack_path_notifications",
            "*only from attack path risk Critical; required: High or lower*",
        ),
    ],
    ids=["alerts-off", "owner-missing", "attack-paths-critical-only"],
)
def test_sibling_failures_say_why(arm, audit, changes, function, reason):
    arm.load(tenant(with_contact(SUB_A, **changes)))
    result = audit(f"{CHECKS}::{function}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([reason, "How to fix:", f"*az rest --method put*{SUB_A}*"])


def test_siblings_on_a_cloud_without_2023_api(arm, audit):
    arm.load(tenant(subscription(SUB_A, rejectApiVersions=["2023-12-01-preview"])))
    result = audit()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*only at api-version 2020-01-01-preview*no attack path*"])


@pytest.mark.parametrize(
    ("served", "outcomes"),
    [
        (["2020-01-01-preview"], {"passed": 30, "failed": 10}),
        (["2017-08-01-preview"], {"passed": 30, "failed": 10}),
    ],
    ids=["2020-only", "2017-only"],
)
def test_a_legacy_cloud_is_judged_with_three_refused_requests_per_run(arm, audit, served, outcomes):
    subs = [subscription(f"{i:08x}-0000-4000-8000-000000000000") for i in range(10)]
    arm.load(tenant(*subs, servedApiVersions=served))
    result = audit()
    result.assert_outcomes(**outcomes)  # attack paths fail: no such setting before 2023
    result.stdout.fnmatch_lines([f"*only at api-version {served[0]}*no attack path*"])
    asked = [r.api_version for r in arm.requests if r.path.endswith("/securityContacts")]
    assert asked.count("2023-12-01-preview") == ApiVersionGate.AGREEING  # then the run moves
    assert asked.count(served[0]) == 10
    assert len(asked) == 10 + ApiVersionGate.AGREEING


def test_an_unknown_value_makes_only_its_control_an_error(arm, audit):
    arm.load(tenant(with_contact(SUB_A, notificationsByRole={"state": "Partial", "roles": []})))
    result = audit()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "Could not be verified: *notificationsByRole.state is 'Partial', a value this "
            "suite does not know*",
        ]
    )


def test_each_verdict_is_judged_once_per_case(arm, audit, monkeypatch):
    calls: Counter[tuple[str, str]] = Counter()
    for name, control in list(CONTROLS.items()):

        def counting(read, policy, planned, evaluate=control.evaluate, key=control.key):
            calls[(key, read.subscription_id)] += 1
            return evaluate(read, policy, planned)

        monkeypatch.setitem(CONTROLS, name, dataclasses.replace(control, evaluate=counting))
    arm.load(tenant(subscription(SUB_A), subscription(SUB_B, securityContacts=[])))
    audit("--azure-findings=findings.json").assert_outcomes(passed=4, failed=4)
    assert calls == {(c.key, s): 1 for c in CONTROLS.values() for s in (SUB_A, SUB_B)}


def test_one_read_serves_every_control(arm, audit):
    arm.load(tenant(subscription(SUB_A)))
    audit().assert_outcomes(passed=4)
    assert [r.path for r in arm.requests].count(
        f"/subscriptions/{SUB_A}/providers/Microsoft.Security/securityContacts"
    ) == 1


# --- organisation policy ----------------------------------------------------------------------


def test_required_contacts_missing(arm, audit):
    arm.load(tenant(with_contact(SUB_A, emails="SOC@contoso.com")))
    result = audit(*EMAIL, "--azure-required-contacts", "soc@contoso.com,cert@contoso.com")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*required security contacts are missing*: cert@contoso.com"])


def test_required_contacts_from_ini_lines(arm, audit, pytester):
    arm.load(tenant(with_contact(SUB_A, emails="soc@contoso.com;cert@contoso.com")))
    pytester.makeini(
        "[pytest]\nazure_required_contacts =\n    soc@contoso.com\n    cert@contoso.com\n"
    )
    audit(*EMAIL).assert_outcomes(passed=1)


def test_allowed_domains(arm, audit):
    arm.load(tenant(with_contact(SUB_A, emails="soc@contoso.com;someone@gmail.com")))
    result = audit(*EMAIL, "--azure-allowed-contact-domains", "contoso.com")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*outside the allowed domains (contoso.com*): someone@gmail.com"])
    # Removing an address is for people to decide: the portal, named, and no command.
    result.stdout.fnmatch_lines(["*remove someone@gmail.com (outside the allowed domains)*"])
    assert "az rest" not in result.stdout.str()


def test_minimal_alert_severity_policy(arm, audit):
    arm.load(tenant(subscription(SUB_A)))  # alerts from High
    selection = "-m", "alert_severity"
    audit(*selection).assert_outcomes(passed=1)
    result = audit(*selection, "--azure-min-alert-severity", "medium")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*only from severity High; required: Medium or lower*"])


def test_minimal_attack_path_risk_policy(arm, audit):
    sources = [{"sourceType": "Alert", "minimalSeverity": "High"},
               {"sourceType": "AttackPath", "minimalRiskLevel": "Critical"}]  # fmt: skip
    arm.load(tenant(with_contact(SUB_A, notificationsSources=sources)))
    selection = "-m", "attack_path_notifications"
    audit(*selection).assert_outcomes(failed=1)
    audit(*selection, "--azure-min-attack-path-risk", "Critical").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--azure-required-contacts", "soc_at_contoso"], "--azure-required-contacts: *"),
        (["--azure-allowed-contact-domains", "not a domain"], "--azure-allowed-contact-domains: *"),
        (["--azure-min-alert-severity", "Critical"], "--azure-min-alert-severity: 'Critical' *"),
        (["--azure-min-attack-path-risk", "Huge"], "--azure-min-attack-path-risk: 'Huge' *"),
        (
            [
                "--azure-required-contacts",
                "soc@gmail.com",
                "--azure-allowed-contact-domains",
                "x.com",
            ],
            "--azure-required-contacts: soc@gmail.com outside --azure-allowed-contact-domains*",
        ),
    ],
)
def test_bad_policy_values_are_usage_errors(arm, audit, args, message):
    run_error(audit(*args), message)


# --- waivers ----------------------------------------------------------------------------------


def waiver(sub: str = SUB_A, control: str = "contact_email", expires: str = "2099-12-31") -> str:
    return (
        f'[[waiver]]\nsubscription = "{sub}"\ncontrol = "{control}"\n'
        f'reason = "Sandbox (RISK-1)"\napproved_by = "Jane Doe, CISO"\nexpires = {expires}\n'
    )


def test_active_waiver_makes_a_failure_xfail(arm, audit, pytester):
    arm.load(tenant(with_contact(SUB_A, emails=""), with_contact(SUB_B, emails="")))
    pytester.makefile(".toml", waivers=waiver())
    result = audit(*EMAIL, "--azure-waivers", "waivers.toml", "-rx")
    result.assert_outcomes(xfailed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["XFAIL *" + SUB_A + "* - waived until 2099-12-31 by Jane Doe, CISO: Sandbox (RISK-1)"]
    )


def test_waiver_for_every_subscription(arm, audit, pytester):
    arm.load(tenant(with_contact(SUB_A, emails=""), with_contact(SUB_B, emails="")))
    pytester.makefile(".toml", waivers=waiver(sub="*"))
    audit(*EMAIL, "--azure-waivers", "waivers.toml").assert_outcomes(xfailed=2)


def test_waived_but_compliant_case_is_xpassed(arm, audit, pytester):
    arm.load(tenant(subscription(SUB_A)))
    pytester.makefile(".toml", waivers=waiver())
    audit(*EMAIL, "--azure-waivers", "waivers.toml").assert_outcomes(xpassed=1)


def test_waiver_does_not_hide_what_could_not_be_verified(arm, audit, pytester):
    arm.load(tenant(subscription(SUB_A)))
    arm.fail(SUB_A, Fault(403, "AuthorizationFailed", "no"))
    pytester.makefile(".toml", waivers=waiver())
    audit(*EMAIL, "--azure-waivers", "waivers.toml").assert_outcomes(errors=1)


def test_expired_waiver_is_ignored_and_said_so(arm, audit, pytester):
    arm.load(tenant(with_contact(SUB_A, emails="")))
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    pytester.makefile(".toml", waivers=waiver(expires=yesterday.isoformat()))
    result = audit(*EMAIL, "--azure-waivers", "waivers.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"A waiver for this case expired and was ignored: waiver 1 *expires {yesterday}*",
            "*expired waivers (ignored)*",
        ]
    )


def test_waiver_that_matches_no_case_is_stale(arm, audit, pytester):
    arm.load(tenant(subscription(SUB_A)))
    pytester.makefile(".toml", waivers=waiver(sub=SUB_B))
    result = audit("--azure-waivers", "waivers.toml")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*stale waivers: they match no case of this run*", f"waiver 1 *{SUB_B}*"]
    )


def test_waivers_file_from_ini_is_relative_to_it(arm, audit, pytester):
    arm.load(tenant(with_contact(SUB_A, emails="")))
    (pytester.path / "policy").mkdir()
    (pytester.path / "policy" / "waivers.toml").write_text(waiver())
    pytester.makeini("[pytest]\nazure_waivers = policy/waivers.toml\n")
    audit(*EMAIL).assert_outcomes(xfailed=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            waiver().replace('approved_by = "Jane Doe, CISO"\n', ""),
            "*waiver 1: 'approved_by' is missing*",
        ),
        (waiver(control="mfa"), "*waiver 1: 'control' 'mfa' is not one of *"),
        (waiver(expires='"next year"'), "*waiver 1: 'expires' must be a date*"),
        ("[[waiver]\n", "*not valid TOML*"),
    ],
    ids=["missing-field", "unknown-control", "bad-date", "not-toml"],
)
def test_malformed_waivers_file_is_a_usage_error(arm, audit, pytester, text, message):
    pytester.makefile(".toml", waivers=text)
    run_error(audit("--azure-waivers", "waivers.toml"), f"--azure-waivers: {message}")
    assert arm.requests == []


def test_missing_waivers_file_is_a_usage_error(arm, audit):
    run_error(audit("--azure-waivers", "nope.toml"), "--azure-waivers: nope.toml: cannot read*")
