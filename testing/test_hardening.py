"""Inputs and answers that must not crash the run, lose a report, or leak the token."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.core.rest import HttpRequest

from compliance import values
from compliance.arm import CLOUDS, ArmReader
from compliance.emulator import Fault
from compliance.evidence import _digest
from conftest import az_calls, subscription, tenant

SUB_A = "aaaaaaaa-0000-4000-8000-000000000001"
SUB_B = "bbbbbbbb-0000-4000-8000-000000000002"


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=ascii", "application/json; charset=no-such-charset"],
)
def test_an_undecodable_answer_is_only_its_subscriptions_error(arm, audit, content_type):
    arm.load(tenant(subscription(SUB_A), subscription(SUB_B)))
    body = json.dumps({"value": [{"name": "default", "properties": {"emails": "é@x.com"}}]})
    arm.fail(SUB_A, Fault(200, body=body, content_type=content_type))
    arm.fail(SUB_B, Fault(403, body="refusé", content_type=f"text/plain; {content_type[18:]}"))
    result = audit("-m", "contact_email")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert sum(outcomes.get(k, 0) for k in ("passed", "failed", "errors")) == 2
    assert outcomes.get("errors") >= 1
    assert "INTERNALERROR" not in result.stdout.str()


def test_the_token_never_leaves_the_endpoint(arm):
    reader = ArmReader(arm.credential(), CLOUDS["AzureCloud"], arm.url, arm.ca_path)
    try:
        elsewhere = arm.url.replace("127.0.0.1", "localhost") + "/subscriptions"
        with pytest.raises(ServiceRequestError, match="refused to send the token"):
            reader._pipeline.send_request(HttpRequest("GET", elsewhere))
    finally:
        reader.close()
    assert arm.requests == []


def test_a_check_that_breaks_is_not_verifiable_and_keeps_its_traceback(arm, audit, pytester):
    arm.load(tenant(subscription(SUB_A)))
    pytester.makepyfile(
        test_security_contacts="def test_security_contact_email_configured(security_contacts):\n"
        "    raise KeyError('a bug')\n"
    )
    result = audit("--azure-findings=f.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*KeyError*a bug*"])
    finding = json.loads((pytester.path / "f.json").read_text())["findings"][0]
    assert finding["verdict"] == "not_verifiable"
    assert "the check failed: KeyError" in finding["reason"]


@pytest.mark.parametrize("dest", ["--azure-findings", "--azure-findings-csv", "--azure-evidence"])
def test_an_output_path_that_cannot_be_written_is_refused_before_the_audit(
    arm, audit, pytester, dest
):
    arm.load(tenant(subscription(SUB_A)))
    (pytester.path / "adir").mkdir()
    (pytester.path / "afile").write_text("")
    for path, message in (("adir", "is a directory"), ("afile/x.json", "cannot create")):
        result = audit(f"{dest}={path}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {dest}: *{message}*"])
    assert arm.requests == []


def test_a_sealed_bundle_of_the_wrong_layout_is_refused(arm, audit, pytester):
    bundle = {"schema": "azure-security-contacts/evidence/v1", "run": [], "contacts": {}}
    bundle["digest"] = _digest(bundle)
    (pytester.path / "ev.json").write_text(json.dumps(bundle))
    result = audit("--azure-replay=ev.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --azure-replay: *not laid out as*"])


def test_waivers_alone_never_make_the_run_ask_azure(arm, audit, pytester, fake_az):
    arm.load(tenant(subscription(SUB_A)))
    pytester.makefile(
        ".toml",
        waivers='[[waiver]]\nsubscription = "*"\ncontrol = "contact_email"\n'
        'reason = "r"\napproved_by = "a"\nexpires = 2099-01-01\n',
    )
    pytester.makepyfile(test_other="def test_plain():\n    pass\n")
    audit("test_other.py", "--azure-waivers=waivers.toml").assert_outcomes(passed=1)
    assert arm.requests == []
    assert az_calls(fake_az) == []


@pytest.mark.parametrize(
    "url", ["https://exa mple", "https://[::1", "http://127.0.0.1:1", "https://x:port", "https://"]
)
def test_urls_without_a_usable_https_host_are_refused(url):
    with pytest.raises(ValueError, match="is not an https:// URL"):
        values.https_url(url)


@pytest.mark.parametrize("value", ["²", "0", "257", "-1", "3.5", ""])
def test_concurrency_must_be_a_plain_number_in_range(value):
    with pytest.raises(ValueError, match="is not a number from 1 to 256"):
        values.concurrency(value)
