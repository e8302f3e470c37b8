"""The plugin end to end: pytester runs of the real checks against the emulator, through
the real SDK, HTTPS and AzureCliCredential (with a fake `az`)."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET

import pytest

import compliance.plugin
from compliance.emulator import Fault
from compliance.outputs import findings_csv
from conftest import ROOT, TENANT_ID, az_calls, subscription, tenant

SUB_A = "aaaaaaaa-0000-4000-8000-000000000001"
SUB_B = "bbbbbbbb-0000-4000-8000-000000000002"
SUB_C = "cccccccc-0000-4000-8000-000000000003"
OTHER_TENANT = "99999999-8888-7777-6666-555555555555"
CHECK = "test_security_contacts.py::test_security_contact_email_configured"
EMAIL = ("-m", "contact_email")  # only the CIS 2.13 check
CONTACTS = "/providers/Microsoft.Security/securityContacts"


def contacts(emails: str, **props: object) -> list[dict[str, object]]:
    return [{"name": "default", "properties": {"emails": emails, **props}}]


def contact_reads(arm, sub_id: str) -> list[str | None]:
    """The api-versions of the securityContacts requests sent for `sub_id`."""
    return [r.api_version for r in arm.requests if r.path == f"/subscriptions/{sub_id}{CONTACTS}"]


# --- verdicts, through the whole stack --------------------------------------------------------


def test_compliant_subscription_passes(arm, audit):
    arm.load(tenant(subscription(SUB_A, "Production")))
    result = audit("-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"*{CHECK}?CIS 8.1.13: Production ({SUB_A})? PASSED*"])
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        pytest.param(
            {"securityContacts": []}, "no security contact is configured*", id="no-contact"
        ),
        pytest.param(
            {"securityContacts": contacts("", isEnabled=True)},
            "*'default' has no email address*",
            id="empty-emails",
        ),
        pytest.param(
            {"securityContacts": [{"name": "default", "properties": {"isEnabled": True}}]},
            "*'default' has no email address*",
            id="missing-emails",
        ),
        pytest.param(
            {"securityContacts": contacts("soc_at_contoso.com; x@localhost", isEnabled=True)},
            "*only invalid email addresses: 'soc_at_contoso.com' (*); 'x@localhost' (*)*",
            id="only-invalid",
        ),
        pytest.param(
            {"securityContacts": contacts("soc@contoso.com", isEnabled=False)},
            "*'default' is disabled (isEnabled: false)*",
            id="disabled",
        ),
        pytest.param(
            {"defenderRegistered": False},
            "*Defender for Cloud has never been set up*MissingSubscriptionRegistration*",
            id="defender-never-set-up",
        ),
    ],
)
def test_non_compliant_subscription_fails_saying_why_and_how_to_fix(arm, audit, entry, reason):
    arm.load(tenant(subscription(SUB_A, "Production", **entry)))
    result = audit(*EMAIL)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            reason,
            "How to fix:",
            f"*Portal: Microsoft Defender for Cloud > Environment settings > subscription {SUB_A}*",
        ]
    )
    # With an address to keep, the PUT that switches the contact on; without one, the fix
    # command, which takes the address.
    command = (
        f"az rest --method put --url '/subscriptions/{SUB_A}/"
        if "disabled" in reason
        else f"python -m compliance fix --subscription {SUB_A} --email"
    )
    assert command in result.stdout.str()
    # The report is the verdict, not a traceback through the assertion.
    result.stdout.no_fnmatch_line("*AssertionError*")
    result.stdout.no_fnmatch_line("*assert False*")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_defender_never_set_up_is_not_registered_by_the_audit(arm, audit):
    arm.load(tenant(subscription(SUB_A, defenderRegistered=False)))
    audit().assert_outcomes(failed=4)
    assert {r.method for r in arm.requests} == {"GET"}
    assert arm.subscription(SUB_A).defender_registered is False


def test_addresses_separated_by_commas_and_semicolons_pass(arm, audit):
    arm.load(tenant(subscription(SUB_A, securityContacts=contacts(" ; bad, soc@contoso.com ;"))))
    audit(*EMAIL).assert_outcomes(passed=1)


def test_older_cloud_falls_back_to_2020_api_version(arm, audit):
    entry = subscription(SUB_A, rejectApiVersions=["2023-12-01-preview"])
    arm.load(tenant(entry))
    audit(*EMAIL).assert_outcomes(passed=1)
    assert contact_reads(arm, SUB_A) == ["2023-12-01-preview", "2020-01-01-preview"]


def test_every_page_of_contacts_is_read(arm, audit):
    arm.contacts_page_size = 1
    disabled = {"name": "a-disabled", "properties": {"emails": "x@contoso.com", "isEnabled": False}}
    valid = {"name": "z-valid", "properties": {"emails": "soc@contoso.com", "isEnabled": True}}
    arm.load(tenant(subscription(SUB_A, securityContacts=[disabled, valid])))
    audit(*EMAIL).assert_outcomes(passed=1)
    assert len(contact_reads(arm, SUB_A)) == 2


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(
            Fault(403, "AuthorizationFailed", "no access"),
            ["*HTTP 403 AuthorizationFailed: no access*Security Reader role*"],
            id="403",
        ),
        pytest.param(
            Fault(401, "InvalidAuthenticationToken", "expired"),
            ["*HTTP 401 InvalidAuthenticationToken*token was refused*"],
            id="401",
        ),
        pytest.param(
            Fault(404, "SubscriptionNotFound", "gone"),
            ["*HTTP 404 SubscriptionNotFound*"],
            id="404",
        ),
        pytest.param(
            Fault(500, "InternalServerError", "boom"),
            ["*HTTP 500 InternalServerError*server error after every retry*"],
            id="500-after-retries",
        ),
        pytest.param(
            Fault(200, body="<html>502 Bad Gateway</html>"),
            ["*not the JSON Azure documents*"],
            id="html-body",
        ),
        pytest.param(
            Fault(200, body=json.dumps({"value": [{"properties": {"emails": ["a@b.com"]}}]})),
            ["*not the JSON Azure documents*emails is list, expected str*"],
            id="emails-not-a-string",
        ),
        pytest.param(
            Fault(200, body=json.dumps({"values": []})),
            ["*not the JSON Azure documents*'value'*"],
            id="no-value-array",
        ),
        pytest.param(
            Fault(400, "BadRequest", "nope"),
            ["*HTTP 400 BadRequest*not one Azure documents*"],
            id="400",
        ),
    ],
)
def test_unverifiable_subscription_is_an_error_never_a_pass(arm, audit, fault, expected):
    arm.load(tenant(subscription(SUB_A), subscription(SUB_B)))
    arm.fail(SUB_A, fault)
    result = audit(*EMAIL)
    # Only the faulty subscription's case errors; the other still gets its verdict.
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"Could not be verified: {pattern}" for pattern in expected])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_transient_server_errors_and_throttling_are_retried(arm, audit):
    arm.load(tenant(subscription(SUB_A), subscription(SUB_B)))
    arm.fail(SUB_A, Fault(503, "ServiceUnavailable", times=1))
    arm.fail(SUB_B, Fault(429, "TooManyRequests", retry_after=0.1, times=2))
    audit().assert_outcomes(passed=8)
    assert len(contact_reads(arm, SUB_A)) == 2
    assert len(contact_reads(arm, SUB_B)) == 3


def test_disabled_and_deleted_subscriptions_are_skipped_unread(arm, audit):
    arm.load(
        tenant(
            subscription(SUB_A, state="Disabled"),
            subscription(SUB_B, state="Deleted"),
            subscription(SUB_C, state="PastDue"),
        )
    )
    result = audit("-rs", *EMAIL)
    result.assert_outcomes(skipped=2, passed=1)
    result.stdout.fnmatch_lines(
        ["*subscription * (*) is Disabled: *", "*subscription * (*) is Deleted: *"]
    )
    assert contact_reads(arm, SUB_A) == contact_reads(arm, SUB_B) == []


def test_warned_and_past_due_subscriptions_are_checked(arm, audit):
    arm.load(tenant(subscription(SUB_A, state="Warned"), subscription(SUB_B, state="PastDue")))
    audit().assert_outcomes(passed=8)


# --- discovery and case ids -------------------------------------------------------------------


def test_one_case_per_subscription_sorted_by_id_across_pages(arm, audit):
    arm.subscriptions_page_size = 2
    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in (5, 3, 1, 4, 2)]
    arm.load(tenant(*(subscription(i, f"Sub {i[7]}") for i in ids)))
    result = audit("--collect-only", "-q", *EMAIL)
    assert [line for line in result.outlines if "::" in line] == [
        f"{CHECK}[CIS 8.1.13: Sub {i[7]} ({i})]" for i in sorted(ids)
    ]
    assert [r.query.get("$skiptoken") for r in arm.requests] == [None, "2", "4"]


def test_case_ids_tell_subscriptions_with_the_same_name_apart(arm, audit):
    arm.load(tenant(subscription(SUB_A, "Pay-As-You-Go"), subscription(SUB_B, "Pay-As-You-Go")))
    result = audit("-v", *EMAIL)
    result.stdout.fnmatch_lines(
        [
            f"*[[]CIS 8.1.13: Pay-As-You-Go ({SUB_A})[]] PASSED*",
            f"*[[]CIS 8.1.13: Pay-As-You-Go ({SUB_B})[]] PASSED*",
        ]
    )


def test_report_header_names_target_and_selection(arm, audit):
    arm.load(tenant(subscription(SUB_A), subscription(SUB_B, state="Disabled")))
    result = audit()
    result.stdout.fnmatch_lines(
        [
            f"azure: cloud AzureCloud, auth cli, ARM {arm.url}",
            "azure: CIS Microsoft Azure Foundations 5.0.0",
            "*",
            "azure: 2 of 2 visible subscriptions selected, 1 disabled or deleted (skipped)",
        ]
    )


# --- selection --------------------------------------------------------------------------------


def three_subscriptions(arm):
    arm.load(
        tenant(
            subscription(SUB_A),
            subscription(SUB_B),
            subscription(SUB_C, tenantId=OTHER_TENANT),
        )
    )


def selected(result) -> list[str]:
    return sorted(s for s in (SUB_A, SUB_B, SUB_C) if any(s in line for line in result.outlines))


def test_select_subscriptions_repeatedly(arm, audit):
    three_subscriptions(arm)
    result = audit(
        "--collect-only", "-q", "--azure-subscription", SUB_C, "--azure-subscription", SUB_A
    )
    assert selected(result) == [SUB_A, SUB_C]


def test_select_subscription_ids_case_insensitively(arm, audit):
    three_subscriptions(arm)
    result = audit("--collect-only", "-q", "--azure-subscription", SUB_B.upper())
    assert selected(result) == [SUB_B]


def test_exclude_subscriptions(arm, audit):
    three_subscriptions(arm)
    result = audit("--collect-only", "-q", "--azure-exclude-subscription", SUB_B)
    assert selected(result) == [SUB_A, SUB_C]


def test_select_tenant(arm, audit):
    three_subscriptions(arm)
    assert selected(audit("--collect-only", "-q", "--azure-tenant", OTHER_TENANT)) == [SUB_C]
    assert selected(audit("--collect-only", "-q", "--azure-tenant", TENANT_ID)) == [SUB_A, SUB_B]


def test_selection_from_ini_and_command_line_wins(arm, audit, pytester):
    three_subscriptions(arm)
    pytester.makeini(
        f"""
        [pytest]
        azure_subscription =
            {SUB_A}
            {SUB_B}
        azure_exclude_subscription = {SUB_B}
        """
    )
    assert selected(audit("--collect-only", "-q")) == [SUB_A]
    assert selected(audit("--collect-only", "-q", "--azure-subscription", SUB_C)) == [SUB_C]


def test_auth_from_ini(arm, audit, pytester, fake_az):
    arm.load(tenant(subscription(SUB_A)))
    pytester.makeini("[pytest]\nazure_auth = environment\n")
    # The ini says environment, the command line (in `audit`) says cli: cli wins.
    audit().assert_outcomes(passed=4)
    assert az_calls(fake_az)


# --- run-level errors: one ERROR: line, exit neither 0 nor 1, no traceback --------------------


def assert_run_error(result, *lines: str) -> None:
    assert result.ret not in (0, 1)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {lines[0]}", *lines[1:]])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_failing_credential_ends_the_run_with_one_error_line(arm, audit, monkeypatch):
    arm.load(tenant(subscription(SUB_A)))
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    result = audit()
    assert_run_error(result, "--azure-auth=cli: could not get a token:*run `az login`*")
    assert arm.requests == []


def test_a_token_in_a_credential_error_never_reaches_the_error_line(arm, audit, monkeypatch):
    arm.load(tenant(subscription(SUB_A)))
    monkeypatch.setenv("FAKE_AZ_OUTPUT", f"not json, but a token: {arm.token}")
    result = audit()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().startswith("ERROR: --azure-auth=cli:")
    assert arm.token not in result.stdout.str() + result.stderr.str()
    assert arm.token.split(".")[2] not in result.stdout.str() + result.stderr.str()


def test_a_run_that_never_started_leaves_reports_that_say_so(arm, audit, monkeypatch, pytester):
    arm.load(tenant(subscription(SUB_A)))
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    result = audit("--junitxml=out/junit.xml", "--html=out/report.html",
                   "--azure-findings=out/findings.json", "--azure-audit-html=out/audit.html",
                   "--azure-step-summary=out/summary.md")  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = pytester.path / "out"
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("errors")) == ("1", "1")
    (case,) = suite.iter("testcase")
    assert (case.get("classname"), case.get("name")) == ("azure", "audit did not run")
    assert "could not get a token" in case.find("error").get("message")
    assert 'id="azure-run-error"' in (out / "report.html").read_text()
    assert '"error":"the audit did not run: --azure-auth=cli' in (out / "audit.html").read_text()
    assert "**the audit did not run" in (out / "summary.md").read_text()
    run = json.loads((out / "findings.json").read_text())["run"]
    assert run["error"].startswith("the audit did not run: --azure-auth=cli: could not get a")


EVERY_REPORT = (
    "--junitxml=out/junit.xml", "--html=out/report.html", "--azure-findings=out/findings.json",
    "--azure-audit-html=out/audit.html", "--azure-step-summary=out/summary.md",
    "--azure-findings-csv=out/f.csv",
)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--cis-version", "2.13"], "--cis-version: '2.13' is not one of"),
        (["--azure-auth", "clli"], "--azure-auth: 'clli' is not one of"),
        (["--azure-waivers", "missing.toml"], "--azure-waivers: "),
        (["-m", "contact-email"], "-m 'contact-email': no marker contact-email"),
        (["-k", "nosuchsub"], "the selection -k 'nosuchsub' leaves none of the 4 cases"),
        (["--azure-demo", "-n", "2", "-m", "nothing"], "-m 'nothing': no marker nothing"),
        ([], "is not what Azure documents: the body is not JSON"),
    ],
)  # fmt: skip
def test_every_run_that_did_not_run_says_so_in_every_report(arm, audit, pytester, args, reason):
    """Exit 4 for whatever reason: every report is written (a stale one replaced) and says
    the audit did not run, and why; none looks like an audit result."""
    arm.load(tenant(subscription(SUB_A)))
    if not args:
        arm.subscriptions_body = "<html>not json</html>"
    out = pytester.path / "out"
    out.mkdir()
    for name in ("junit.xml", "report.html", "findings.json", "audit.html", "f.csv"):
        (out / name).write_text("a stale report of an earlier run")
    result = audit(*args, *EVERY_REPORT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert reason in result.stderr.str()
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    (case,) = suite.iter("testcase")
    assert (case.get("classname"), case.get("name")) == ("azure", "audit did not run")
    assert reason in case.find("error").get("message")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["azure.error"].startswith("the audit did not run: ")
    run = json.loads((out / "findings.json").read_text())["run"]
    assert run["error"].startswith("the audit did not run: ") and reason in run["error"]
    for page in ("report.html", "audit.html", "summary.md"):
        text = html.unescape((out / page).read_text()).replace("\\", "")  # Markdown escapes
        assert "the audit did not run" in text and reason in text, page
    assert (out / "f.csv").read_text().splitlines() == [",".join(findings_csv.COLUMNS)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "contact-email"], "-m 'contact-email': no marker contact-email; the controls' "
                                  "markers are contact_email, alert_severity*"),
        (["-m", "contact_email and nothing"], "-m 'contact_email and nothing': no marker "
                                              "nothing*"),
        (["-k", "no-such-subscription"], "the selection -k 'no-such-subscription' leaves none "
                                         "of the 4 cases collected*"),
    ],
)  # fmt: skip
def test_a_selection_of_nothing_is_a_usage_error(arm, audit, args, message):
    arm.load(tenant(subscription(SUB_A)))
    assert_run_error(audit(*args), message)


def test_credential_without_its_settings_names_them(arm, audit, monkeypatch):
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    result = audit("--azure-auth", "workload-identity")
    assert_run_error(result, "--azure-auth=workload-identity:*AZURE_FEDERATED_TOKEN_FILE*")


def test_environment_credential_without_variables(arm, audit, monkeypatch):
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    result = audit("--azure-auth", "environment")
    assert_run_error(result, "--azure-auth=environment:*AZURE_CLIENT_SECRET*")


def test_identity_that_sees_no_subscription(arm, audit):
    result = audit()
    assert_run_error(result, "the identity sees no subscriptions*Security Reader*")


def test_selecting_an_invisible_subscription_is_an_error(arm, audit):
    arm.load(tenant(subscription(SUB_A)))
    result = audit("--azure-subscription", SUB_B)
    assert_run_error(result, f"--azure-subscription {SUB_B}: not visible to this identity*")


def test_selection_that_leaves_nothing(arm, audit):
    arm.load(tenant(subscription(SUB_A)))
    result = audit("--azure-exclude-subscription", SUB_A)
    assert_run_error(result, "no subscription left to audit*")


def test_untrusted_certificate_is_an_error_not_a_pass(arm, audit, monkeypatch):
    arm.load(tenant(subscription(SUB_A)))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    result = audit()
    assert_run_error(result, f"listing subscriptions: could not reach ARM at {arm.url}:*")


def test_subscription_list_refused(arm, audit, monkeypatch):
    arm.load(tenant(subscription(SUB_A)))
    monkeypatch.setenv("FAKE_AZ_TOKEN", "a-token-the-emulator-does-not-know")
    result = audit()
    assert_run_error(
        result, f"--azure-auth=cli: ARM at {arm.url} refused the token: HTTP 401 *run `az login`*"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--azure-auth", "password"], "--azure-auth: 'password' is not one of default, cli, *"),
        (
            ["--azure-cloud", "AzureGermanCloud"],
            "--azure-cloud: 'AzureGermanCloud' is not one of *",
        ),
        (["--azure-subscription", "prod"], "--azure-subscription: 'prod' is not an ID*"),
        (["--azure-exclude-subscription", "x"], "--azure-exclude-subscription: 'x' is not an ID*"),
        (["--azure-tenant", "contoso.com"], "--azure-tenant: 'contoso.com' is not an ID*"),
        (
            ["--azure-arm-endpoint", "http://127.0.0.1:1"],
            "--azure-arm-endpoint: *not an https:// URL*",
        ),
    ],
)
def test_bad_option_values_are_usage_errors(arm, audit, args, message):
    result = audit(*args)
    assert_run_error(result, message)
    assert arm.requests == []


def test_bad_ini_value_is_a_usage_error(arm, audit, pytester):
    pytester.makeini("[pytest]\nazure_cloud = Mars\n")
    assert_run_error(audit(), "--azure-cloud: 'Mars' is not one of *")


# --- what the audit sends, and when -----------------------------------------------------------


def test_the_audit_only_ever_sends_get(arm, audit):
    arm.load(
        tenant(
            subscription(SUB_A, defenderRegistered=False),
            subscription(SUB_B, securityContacts=[]),
            subscription(SUB_C, rejectApiVersions=["2023-12-01-preview"]),
        )
    )
    audit().assert_outcomes(passed=3, failed=9)
    assert arm.requests
    assert {r.method for r in arm.requests} == {"GET"}


def test_help_and_runs_without_subscription_tests_never_touch_azure(arm, audit, pytester, fake_az):
    arm.load(tenant(subscription(SUB_A)))
    assert audit("--help").ret == pytest.ExitCode.OK
    pytester.makepyfile(test_other="def test_plain():\n    pass\n")
    audit("test_other.py").assert_outcomes(passed=1)
    assert arm.requests == []
    assert az_calls(fake_az) == []


@pytest.mark.parametrize(
    ("cloud", "resource"),
    [
        ("AzureCloud", "https://management.azure.com"),
        ("AzureUSGovernment", "https://management.core.usgovcloudapi.net"),
        ("AzureChinaCloud", "https://management.chinacloudapi.cn"),
    ],
)
def test_token_is_asked_for_the_clouds_audience(arm, audit, fake_az, cloud, resource):
    arm.load(tenant(subscription(SUB_A)))
    audit("--azure-cloud", cloud).assert_outcomes(passed=4)
    assert {tuple(call[call.index("--resource") + 1 :][:1]) for call in az_calls(fake_az)} == {
        (resource,)
    }


def test_tenant_option_asks_az_for_that_tenants_token(arm, audit, fake_az):
    arm.load(tenant(subscription(SUB_A)))
    audit("--azure-tenant", TENANT_ID).assert_outcomes(passed=4)
    assert all(call[call.index("--tenant") + 1] == TENANT_ID for call in az_calls(fake_az))


# --- the demo ---------------------------------------------------------------------------------


def test_demo_covers_every_outcome_and_writes_both_reports(pytester, arm):
    result = pytester.runpytest(
        "--azure-demo", "-p", "no:cacheprovider",
        str(pytester.path / "test_security_contacts.py"),
        "--html=reports/report.html", "--self-contained-html", "--junitxml=reports/junit.xml",
        plugins=[compliance.plugin],
    )  # fmt: skip
    result.assert_outcomes(passed=18, failed=21, errors=8, skipped=8, xfailed=1)
    # the closing line the README shows, in audit words
    closing = next(line for line in result.stdout.lines if line.startswith("azure: 18 compliant"))
    assert closing in (ROOT / "README.md").read_text()
    assert (pytester.path / "reports" / "report.html").stat().st_size > 0
    junit = (pytester.path / "reports" / "junit.xml").read_text()
    assert junit.count("<testcase ") == 14 * 4
    assert arm.requests == []  # the demo runs its own emulator


@pytest.fixture(autouse=True)
def _checks_file(request, pytester):
    # Every run needs the real checks file; `audit` copies it, the demo test needs it too.
    from conftest import CHECKS

    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())


def test_the_terminal_speaks_audit_words_and_names_the_audit_view(arm, audit):
    """The run's last lines count in audit words and name the report for auditors; a skipped
    case names its subscription; a 403's advice is never cut short."""
    arm.load(tenant(subscription(SUB_A, "Forbidden " + "x" * 300),
                    subscription(SUB_B, "Old", state="Disabled")))  # fmt: skip
    arm.fail(SUB_A, Fault(403, "AuthorizationFailed", "denied " + "y" * 200))
    result = audit("--azure-audit-html=out/audit.html", "-rs")
    lines = result.stdout.lines
    forbidden = [line for line in lines if line.startswith("NOT VERIFIABLE  CIS 8.1.13 ")]
    assert len(forbidden) == 1
    assert forbidden[0].endswith(f"on /subscriptions/{SUB_A}")  # the advice, whole
    assert "Security Reader" in forbidden[0]
    result.stdout.fnmatch_lines(
        [
            f"SKIPPED * subscription Old ({SUB_B}) is Disabled: its security contacts are not*",
            "azure: 4 not verifiable, 4 skipped (8 cases of 2 subscriptions)",
            "azure: the audit report for auditors: out/audit.html",
            "*4 skipped, 4 errors*",
        ]
    )
    # the last lines before pytest's own counts
    assert result.stdout.lines[-3].startswith("azure: 4 not verifiable")
    assert result.stdout.lines[-2] == "azure: the audit report for auditors: out/audit.html"
