"""Answers that look like evidence and are not: a contact whose id names another subscription,
and bodies with numbers JSON has no words for (NaN, Infinity). Through the emulator, the whole
suite and the fix command; the rules themselves as pure functions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from compliance.__main__ import main
from compliance.apiversions import API_2023, contacts_from_page
from compliance.arm.answers import parse_json
from compliance.contacts import MalformedResponse, NotThisSubscription, check_contact_id
from compliance.emulator import ArmEmulator, Fault
from compliance.fix import differences
from compliance.fixes import requests
from compliance.remediation import Write
from conftest import subscription, tenant

SUB = "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
OTHER = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CONTACTS = "/providers/Microsoft.Security/securityContacts"

# Fails only the owner control (roles Off), so its advice is a whole-contact PUT body that
# keeps every field, the unknown one too.
PROPERTIES = (
    '{"emails": "soc@contoso.com", "isEnabled": true, "x-score": %s, '
    '"notificationsByRole": {"state": "Off", "roles": []}, '
    '"notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "High"}, '
    '{"sourceType": "AttackPath", "minimalRiskLevel": "High"}]}'
)


def page(contact_id: str, score: str = "1") -> str:
    item = f'{{"id": "{contact_id}", "name": "default", "properties": {PROPERTIES % score}}}'
    return f'{{"value": [{item}]}}'


def default_id(sub_id: str) -> str:
    return f"/subscriptions/{sub_id}{CONTACTS}/default"


def serve(arm: ArmEmulator, body: str, other: str | None = None) -> None:
    """SUB's every securityContacts answer is `body` (a 200), verbatim; OTHER's `other`
    (None: a compliant contact)."""
    arm.load(tenant(subscription(SUB, "Answers"), subscription(OTHER, "Other")))
    arm.fail(SUB, Fault(200, body=body))
    if other is not None:
        arm.fail(OTHER, Fault(200, body=other))


def findings(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    data = json.loads((pytester.path / "findings.json").read_text())["findings"]
    return {f["control"]["key"]: f for f in data if f["subscription"]["id"] == SUB}


# --- a contact of another subscription -------------------------------------------------------


def test_a_contact_of_another_subscription_is_no_evidence(
    arm: ArmEmulator, audit: Any, pytester: pytest.Pytester, reading: str
) -> None:
    serve(arm, page(default_id(OTHER)))

    result = audit("--azure-findings=findings.json", "-m", "contact_email")

    result.assert_outcomes(errors=1, passed=1)  # OTHER's own answer is its evidence
    (finding,) = findings(pytester).values()
    assert finding["verdict"] == "not_verifiable"
    assert (
        f"the answer's contact id (value[0].id) names subscription {OTHER}, not {SUB}"
        in finding["reason"]
    )


@pytest.mark.parametrize(
    "contact_id",
    [
        pytest.param(default_id(SUB.upper()), id="upper-case-id"),
        pytest.param(f"/SUBSCRIPTIONS/{SUB}/providers/microsoft.security/securitycontacts/default",
                     id="upper-case-path"),
        pytest.param(f"/subscriptions/{SUB}/providers/Microsoft.Security/securityContact/default",
                     id="2017-singular"),
    ],
)  # fmt: skip
def test_the_subscriptions_own_contact_passes_whatever_the_case(
    arm: ArmEmulator, audit: Any, contact_id: str
) -> None:
    serve(arm, page(contact_id))
    audit("-m", "contact_email").assert_outcomes(passed=2)


def test_a_contact_without_an_id_is_taken_as_the_answers(arm: ArmEmulator, audit: Any) -> None:
    serve(arm, page(default_id(SUB)).replace(f'"id": "{default_id(SUB)}", ', ""))
    audit("-m", "contact_email").assert_outcomes(passed=2)


def test_check_contact_id() -> None:
    check_contact_id({"id": default_id(SUB)}, SUB, "value[0]")
    check_contact_id({"id": default_id(SUB.upper())}, SUB, "value[0]")
    check_contact_id({"id": f"/subscriptions/{SUB}"}, SUB.upper(), "value[0]")
    check_contact_id({}, SUB, "value[0]")
    check_contact_id({"id": None}, SUB, "value[0]")
    with pytest.raises(NotThisSubscription, match=rf"value\[3\]\.id\) names subscription {OTHER}"):
        check_contact_id({"id": default_id(OTHER)}, SUB, "value[3]")
    for no_subscription in ["", "default", f"{CONTACTS}/default", f"https://x/subscriptions/{SUB}"]:
        with pytest.raises(NotThisSubscription, match="names no subscription"):
            check_contact_id({"id": no_subscription}, SUB, "value[0]")
    with pytest.raises(MalformedResponse, match=r"value\[0\]\.id is int, expected str"):
        check_contact_id({"id": 7}, SUB, "value[0]")


def test_a_foreign_id_hides_among_the_subscriptions_own() -> None:
    body = json.loads(page(default_id(SUB)))
    body["value"].append({**body["value"][0], "id": default_id(OTHER), "name": "default2"})
    contacts_from_page(body, API_2023)  # without a subscription to check against: taken
    with pytest.raises(NotThisSubscription, match=r"value\[1\]\.id\) names subscription"):
        contacts_from_page(body, API_2023, SUB)


def test_the_named_subscription_is_shown_as_one_line() -> None:
    forged = f"/subscriptions/{OTHER}\n::error::forged{'x' * 500}/providers"
    with pytest.raises(NotThisSubscription) as refused:
        check_contact_id({"id": forged}, SUB, "value[0]")
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300


# --- numbers that JSON has no words for ------------------------------------------------------


NON_FINITE = [
    pytest.param("NaN", "NaN", id="NaN"),
    pytest.param("Infinity", "Infinity", id="Infinity"),
    pytest.param("-Infinity", "-Infinity", id="minus-Infinity"),
    pytest.param("1e999", "1e999", id="too-large"),
    pytest.param("-1E400", "-1E400", id="too-large-negative"),
]


@pytest.mark.parametrize(("score", "named"), NON_FINITE)
def test_parse_json_refuses_non_finite_numbers(score: str, named: str) -> None:
    with pytest.raises(MalformedResponse, match=f"holds {named},"):
        parse_json(page(default_id(SUB), score))


def test_parse_json_keeps_finite_numbers() -> None:
    body = parse_json('{"a": 1e308, "b": -0.0, "c": 12345678901234567890, "d": "NaN"}')
    assert body == {"a": 1e308, "b": 0.0, "c": 12345678901234567890, "d": "NaN"}


@pytest.mark.parametrize(("score", "named"), NON_FINITE)
def test_a_non_finite_number_makes_the_answer_unverifiable(
    arm: ArmEmulator, audit: Any, pytester: pytest.Pytester, score: str, named: str
) -> None:
    serve(arm, page(default_id(SUB), score), other=page(default_id(OTHER)))

    result = audit("--azure-findings=findings.json", "-rA")

    found = findings(pytester)
    assert {f["verdict"] for f in found.values()} == {"not_verifiable"}
    for finding in found.values():
        assert f"the body holds {named}, which JSON (RFC 8259) does not allow" in finding["reason"]
    text = result.stdout.str() + (pytester.path / "findings.json").read_text()
    assert '"x-score": 1' in text  # OTHER's advice is printed: the check below sees bodies
    for line in text.splitlines():
        if "--body" in line or "PUT " in line:
            assert named not in line and "NaN" not in line and "Infinity" not in line


def test_a_finite_unknown_number_reaches_the_advice_as_json(
    arm: ArmEmulator, audit: Any, pytester: pytest.Pytester
) -> None:
    serve(arm, page(default_id(SUB), "1e308"))

    audit("--azure-findings=findings.json")

    remediation = findings(pytester)["owner_notifications"]["remediation"]
    bodies = [line for line in remediation.splitlines() if "--body" in line]
    assert bodies and all('"x-score": 1e+308' in line for line in bodies)


def test_the_fix_command_refuses_a_non_finite_answer(
    arm: ArmEmulator, fake_az: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arm.load(tenant(subscription(SUB, "Answers", securityContacts=[])))
    arm.fail(SUB, Fault(200, body=page(default_id(SUB), "NaN")))

    code = main(["fix", "--azure-auth", "cli", "--azure-arm-endpoint", arm.url,
                 "--email", "soc@contoso.com"])  # fmt: skip

    out = capsys.readouterr().out
    assert code == 1
    assert "the body holds NaN, which JSON (RFC 8259) does not allow" in out
    assert "Plan:" not in out
    assert [r.method for r in arm.requests if r.method != "GET"] == []


def test_no_printed_body_holds_a_non_finite_number() -> None:
    """What the suite prints as JSON is JSON, even if a non-finite number got past reading."""
    write = Write("default", None, {"emails": "soc@contoso.com", "x-score": math.nan})
    with pytest.raises(ValueError, match="not JSON compliant"):
        requests(SUB, API_2023, [write])
    with pytest.raises(ValueError, match="not JSON compliant"):
        differences({}, {"x-score": math.inf})
