"""Microsoft's verdict beside the suite's (compliance.microsoft), on hand-built models: each
way the two can differ is explained from what the suite read, and Defender's answers are
read as real ARM sends them (testing/data/recorded/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compliance.apiversions import API_2023, shape
from compliance.contacts import Contact, MalformedResponse, RawResponse, SecurityContacts
from compliance.controls import Policy, evaluate_alert_severity, evaluate_owner_notifications
from compliance.emulator.server import DEFENDER_ASSESSMENTS
from compliance.findings import Finding
from compliance.microsoft import (
    ASSESSED,
    ASSESSMENT_KEYS,
    NOT_ASSESSED,
    AssessmentRead,
    CrossCheckRead,
    MicrosoftVerdict,
    assessment_path,
    beside,
    counted,
    metadata_path,
    microsoft_passes,
    parse_assessment,
    policies_of,
    policy_of,
)

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
EMAIL = ASSESSED["contact_email"].assessment
ALERTS = ASSESSED["alert_severity"].assessment
OWNER = ASSESSED["owner_notifications"].assessment
READ_AT = "2026-12-01T08:00:00.000+00:00"
RECORDED = Path(__file__).parent / "data" / "recorded"


def contacts(*found: Contact) -> SecurityContacts:
    answer = RawResponse("/subscriptions/x/...", 200, "r", READ_AT, "{}")
    return SecurityContacts(SUB, API_2023, found, responses=(answer,))


def contact(**settings: Any) -> Contact:
    """A contact that passes every control, changed by `settings`."""
    values: dict[str, Any] = {
        "name": "default",
        "addresses": ("soc@contoso.com",),
        "enabled": True,
        "alert_notifications": True,
        "alert_minimal_severity": "High",
        "notify_roles_enabled": True,
        "notify_roles": ("Owner",),
        "attack_path_minimal_risk": "High",
    }
    values.update(settings)
    return Contact(**values)


def answered(key: str, code: str, **status: str) -> CrossCheckRead:
    body = {
        "id": f"/subscriptions/{SUB}/providers/Microsoft.Security/assessments/{key}",
        "name": key,
        "properties": {
            "resourceDetails": {"Source": "Azure", "Id": f"/subscriptions/{SUB}"},
            "status": {"code": code, **status},
        },
    }
    answer = RawResponse(assessment_path(SUB, key), 200, "r", READ_AT, json.dumps(body))
    return CrossCheckRead((AssessmentRead(key, answer),))


def compare(control: str, ours: bool | None, read: SecurityContacts, code: str, **kw: Any):
    status = {k: v for k, v in kw.items() if k in ("cause", "description", "statusChangeDate")}
    options = {k: v for k, v in kw.items() if k not in status}
    key = ASSESSED[control].assessment
    return beside(control, ours, read, answered(key, code, **status), **options)


# --- agreement and what is not compared -------------------------------------------------------


def test_agreement_needs_no_why() -> None:
    verdict = compare("contact_email", True, contacts(contact()), "Healthy")
    assert (verdict.agrees, verdict.why, verdict.status) == (True, None, "Healthy")
    assert (verdict.assessment, verdict.policy) == (EMAIL, ASSESSED["contact_email"].policy)
    assert compare("contact_email", False, contacts(), "Unhealthy").agrees is True


def test_attack_paths_have_no_microsoft_verdict() -> None:
    verdict = beside("attack_path_notifications", False, contacts(), CrossCheckRead())
    assert verdict == MicrosoftVerdict(None, why=NOT_ASSESSED)
    assert len(ASSESSMENT_KEYS) == 3


@pytest.mark.parametrize(
    ("read", "why"),
    [
        (None, "not read: disabled"),
        (CrossCheckRead(), "not read: disabled"),
        (
            CrossCheckRead((AssessmentRead(EMAIL, None, "could not reach ARM at x"),)),
            "no Microsoft verdict: could not reach ARM at x",
        ),
    ],
)
def test_no_microsoft_verdict_is_never_a_comparison(read: CrossCheckRead | None, why: str) -> None:
    verdict = beside("contact_email", True, contacts(contact()), read, not_compared="disabled")
    assert (verdict.status, verdict.agrees, verdict.why) == (None, None, why)


def test_a_case_the_suite_did_not_verify_is_not_compared() -> None:
    verdict = compare("contact_email", None, contacts(), "Healthy", not_compared="403")
    assert (verdict.status, verdict.agrees, verdict.why) == ("Healthy", None, "not compared: 403")


def test_a_status_azure_added_since_is_shown_not_compared() -> None:
    verdict = compare("contact_email", True, contacts(contact()), "Error\x1b[2J")
    assert verdict.agrees is None
    assert verdict.status == "Error\\x1b[2J"  # shown, never obeyed
    assert "not one this suite knows" in (verdict.why or "")


# --- every disagreement explained -------------------------------------------------------------


def test_an_invalid_address_microsoft_accepts() -> None:
    read = contacts(contact(addresses=("soc_at_contoso",)))
    verdict = compare("contact_email", False, read, "Healthy")
    assert verdict.agrees is False
    assert (verdict.why or "").startswith(
        "Microsoft's policy accepts any non-empty address; 'soc_at_contoso' is not an address ("
    )
    assert verdict.explained


def test_a_severity_level_microsoft_does_not_check() -> None:
    read = contacts(contact())  # alerts from High
    policy = Policy(min_alert_severity="Medium")
    assert not evaluate_alert_severity(read, policy).compliant
    verdict = compare("alert_severity", False, read, "Healthy", min_alert_severity="Medium")
    assert verdict.why == (
        "Microsoft's policy does not check the severity level: alerts start at High, the "
        "organisation's policy asks for Medium or lower"
    )
    unset = contacts(contact(alert_minimal_severity=None))
    assert "no minimal severity" in (compare("alert_severity", False, unset, "Healthy").why or "")


def test_an_assessment_older_than_the_contact() -> None:
    verdict = compare(
        "contact_email", True, contacts(contact()), "Unhealthy",
        statusChangeDate="2026-11-30T06:12:44.2187335Z",
    )  # fmt: skip
    assert verdict.agrees is False
    assert verdict.status_changed == "2026-11-30T06:12:44.2187335Z"
    assert (verdict.why or "").startswith(
        "assessed 2026-11-30, contact changed since: Microsoft's own policy passes the "
        f"contacts as read at {READ_AT}"
    )
    # Healthy on a contact its own rule fails now: the same story the other way round
    gone = contacts(contact(addresses=(), raw={"properties": {"emails": ""}}))
    later = compare("contact_email", False, gone, "Healthy")
    assert (later.why or "").startswith("assessed before the contacts were read, contact changed")


def test_an_assessment_newer_than_the_read_that_contradicts_its_own_rule_is_unexplained() -> None:
    verdict = compare(
        "contact_email", True, contacts(contact()), "Unhealthy",
        statusChangeDate="2026-12-01T09:00:00Z",
    )  # fmt: skip
    assert verdict.agrees is False
    assert (verdict.why or "").startswith("unexplained: Microsoft's status dates from")
    assert not verdict.explained


@pytest.mark.parametrize(
    ("cause", "why"),
    [
        ("Exempt", "NotApplicable: policy exempted"),
        ("OffByPolicy", "NotApplicable: policy disabled"),
    ],
)
def test_not_applicable_says_why(cause: str, why: str) -> None:
    failing = compare("contact_email", False, contacts(), "NotApplicable", cause=cause)
    assert (failing.agrees, failing.why) == (False, why)
    passing = compare("contact_email", True, contacts(contact()), "NotApplicable", cause=cause)
    assert (passing.agrees, passing.why) == (None, why)  # nothing Microsoft shows differs


def test_the_organisations_policy_microsoft_does_not_know() -> None:
    verdict = compare(
        "contact_email", False, contacts(contact()), "Healthy", reason="required: x@contoso.com"
    )
    assert verdict.why == (
        "Microsoft's policy does not know the organisation's policy: required: x@contoso.com"
    )


def test_a_disabled_contact_microsoft_counts() -> None:
    read = contacts(contact(enabled=False))
    for control in ("contact_email", "owner_notifications"):
        verdict = compare(control, False, read, "Healthy")
        assert verdict.why == (
            "Microsoft's policy does not check whether a contact is enabled: security contact "
            "'default' is disabled (isEnabled: false)"
        )
    # its alert rule does ask isEnabled: both fail, both agree
    assert compare("alert_severity", False, read, "Unhealthy").agrees is True


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        (
            {"notify_roles_enabled": False, "alert_minimal_severity": "Medium"},
            "Microsoft's policy fails only when owner mail is Off and alerts start at High; "
            "here alerts start at Medium",
        ),
        (
            {"notify_roles_enabled": False, "alert_minimal_severity": None},
            "Microsoft's policy fails only when owner mail is Off and alerts start at High; "
            "here no alert severity is set",
        ),
        (
            {"notify_roles_enabled": None, "notify_roles": ()},
            "Microsoft's policy fails only when owner mail is Off and alerts start at High; "
            "security contact 'default' sets no role notifications at all",
        ),
        (
            {"notify_roles": ("Contributor",)},
            "Microsoft's policy reads whether role notifications are on, not which roles: "
            "security contact 'default' notifies Contributor, not Owner",
        ),
    ],
)
def test_owner_notifications_microsoft_passes(settings: dict[str, Any], why: str) -> None:
    read = contacts(contact(**settings))
    assert not evaluate_owner_notifications(read).compliant
    assert compare("owner_notifications", False, read, "Healthy").why == why


def test_owner_mail_off_from_high_fails_on_both_sides() -> None:
    read = contacts(contact(notify_roles_enabled=False))
    assert compare("owner_notifications", False, read, "Unhealthy").agrees is True


def test_a_policy_microsoft_moved_to_is_not_explained_by_the_old_ones_rules() -> None:
    verdict = compare(
        "contact_email", False, contacts(contact(addresses=("x",))), "Healthy",
        policies={EMAIL: "11111111-2222-3333-4444-555555555555"},
    )  # fmt: skip
    assert verdict.policy == "11111111-2222-3333-4444-555555555555"
    assert verdict.why == (
        "unexplained: Microsoft's assessment follows policy 11111111-2222-3333-4444-555555555555, "
        f"not {ASSESSED['contact_email'].policy} whose rules this suite knows"
    )
    assert verdict.disagrees and not verdict.explained
    assert beside("contact_email", False, None, answered(EMAIL, "Healthy")).why == (
        "unexplained: the suite holds no contacts to compare"
    )


def test_text_from_azure_in_a_why_is_one_line() -> None:
    read = contacts(contact(addresses=("a\nb",), name="x\u202ey"))
    verdict = compare("contact_email", False, read, "Healthy")
    assert "\n" not in (verdict.why or "") and "\u202e" not in (verdict.why or "")


def test_a_run_counted() -> None:
    agree = MicrosoftVerdict(EMAIL, status="Healthy", agrees=True)
    explained = MicrosoftVerdict(EMAIL, status="Healthy", agrees=False, why="NotApplicable: x")
    unexplained = MicrosoftVerdict(EMAIL, status="Healthy", agrees=False, why="unexplained")
    assert counted([agree, explained, unexplained, MicrosoftVerdict(None), None]) == (
        "Microsoft Defender for Cloud's verdict beside ours: 1 agree, 2 disagree (1 explained), "
        "1 not compared (no verdict on one side)"
    )


# --- Microsoft's rules, twice -----------------------------------------------------------------

CONTACT_SHAPES: list[dict[str, Any]] = [
    {},
    {"emails": "", "isEnabled": True},
    {"emails": "soc@contoso.com", "isEnabled": False},
    {"emails": "x", "isEnabled": True, "notificationsSources": [{"sourceType": "Alert"}]},
    {
        "emails": "soc@contoso.com",
        "isEnabled": True,
        "notificationsByRole": {"state": "Off", "roles": []},
        "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "High"}],
    },
    {
        "isEnabled": True,
        "notificationsByRole": {"state": "Off", "roles": []},
        "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "Low"}],
    },
    {
        "isEnabled": False,
        "notificationsByRole": {"state": "On", "roles": ["Contributor"]},
        "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "High"}],
    },
]


@pytest.mark.parametrize("props", CONTACT_SHAPES)
@pytest.mark.parametrize("control", sorted(ASSESSED))
def test_the_rules_the_suite_explains_with_are_the_emulators(
    props: dict[str, Any], control: str
) -> None:
    """compliance.microsoft reads the policies' rules on the suite's contact model; the
    emulator, playing Defender, on the stored JSON, written apart from the first: they agree
    on every shape."""
    item = {"name": "default", "properties": props}
    parsed = shape(API_2023).parse("default", props, "value[0].properties")
    found = Contact(**{**parsed.__dict__, "raw": item})
    _, _, emulated = DEFENDER_ASSESSMENTS[ASSESSED[control].assessment]
    assert microsoft_passes(control, [found]) == emulated([props])
    assert microsoft_passes(control, []) is False == emulated([])


# --- answers as real ARM sends them -----------------------------------------------------------


def recorded_entries() -> dict[str, str]:
    data = json.loads((RECORDED / "azure-cli-2020-assessments-list-three-keys.json").read_text())
    assert data["kind"] == "assessments" and data["source"]["commit"]
    entries: dict[str, str] = data["answers"][0]["entries"]
    return entries


def test_a_real_answer_is_read_with_its_capitalised_keys() -> None:
    entries = recorded_entries()
    assert set(entries) == set(ASSESSMENT_KEYS)
    for body in entries.values():
        assert '"Source":"Azure","Id":' in body  # as recorded, not as specified
        status = parse_assessment(json.loads(body), "00000000-0000-0000-0000-000000000000")
        assert status.code == "Unhealthy"
        with pytest.raises(MalformedResponse, match="another resource"):
            parse_assessment(json.loads(body), SUB)


def test_the_sdk_drops_the_capitalised_resource_details() -> None:
    """Why the suite reads resourceDetails itself (compliance.arm.assessments): when this
    fails, azure-mgmt-security reads real answers' `Source` and the workaround can go."""
    from azure.mgmt.security import SecurityCenter

    model = SecurityCenter.models("2021-06-01").SecurityAssessmentResponse  # type: ignore[no-untyped-call]
    read = model.deserialize(json.loads(recorded_entries()[EMAIL]))
    assert read.status.code == "Unhealthy"
    assert read.resource_details.source is None


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ([], "expected an object"),
        ({"id": f"/subscriptions/{SUB}/x"}, "no 'properties'"),
        ({"properties": {}}, "no 'status'"),
        ({"properties": {"status": {"code": ["Healthy"]}}}, "code is list"),
        ({"properties": {"status": {}}}, "no 'code'"),
        ({"properties": {"resourceDetails": [], "status": {"code": "Healthy"}}}, "expected an"),
        ({"id": "/subscriptions/other/x", "properties": {}}, "another resource"),
    ],
)
def test_an_answer_of_another_shape_is_refused(body: Any, match: str) -> None:
    with pytest.raises(MalformedResponse, match=match):
        parse_assessment(body, SUB)


def test_the_policy_each_assessment_follows_from_its_metadata() -> None:
    body = {"properties": {"policyDefinitionId": "/providers/Microsoft.Authorization/x/ABC"}}
    answers = [
        RawResponse(metadata_path(EMAIL), 200, None, READ_AT, json.dumps(body)),
        RawResponse(metadata_path(ALERTS), 404, None, READ_AT, "{}"),
        RawResponse(metadata_path(OWNER), 200, None, READ_AT, "not json"),
        RawResponse(metadata_path("x"), 200, None, READ_AT, json.dumps({"properties": {}})),
    ]
    assert policies_of(answers) == {EMAIL: "ABC", "x": None}


def test_a_finding_carries_microsofts_verdict_through_its_serializer() -> None:
    from compliance.controls import CONTACT_EMAIL
    from compliance.findings import Outcome
    from compliance.model import Subscription

    microsoft = compare("contact_email", False, contacts(contact(enabled=False)), "Healthy")
    finding = Finding(
        Subscription(SUB, "Prod", "Enabled"), CONTACT_EMAIL, "5.0.0", Outcome.NOT_COMPLIANT, "x",
        microsoft=microsoft,
    )  # fmt: skip
    data = finding.to_dict(raw=True)
    assert data["microsoft"]["agrees"] is False and data["microsoft"]["assessment"] == EMAIL
    assert Finding.from_dict(json.loads(json.dumps(data))) == finding
    plain = Finding(finding.subscription, CONTACT_EMAIL, "5.0.0", Outcome.COMPLIANT, "x")
    assert "microsoft" not in plain.to_dict()  # a run without --azure-cross-check
    assert Finding.from_dict(plain.to_dict()).microsoft is None


# --- what no rule explains, and answers no reader should have let through ---------------------


@pytest.mark.parametrize(
    ("control", "ours", "read", "code"),
    [
        ("contact_email", True, contacts(), "Unhealthy"),  # Microsoft and its rule fail it
        ("alert_severity", False, contacts(contact()), "Healthy"),
        ("owner_notifications", False, contacts(contact()), "Healthy"),
    ],
)
def test_a_difference_no_rule_explains_says_so(
    control: str, ours: bool, read: SecurityContacts, code: str
) -> None:
    """Verdicts no real read gives (the suite's own rules pass these contacts), so that the
    explanation has nothing to lean on: it says so rather than guess."""
    verdict = compare(control, ours, read, code)
    assert (verdict.agrees, verdict.why) == (False, "unexplained")
    assert not verdict.explained


def test_an_answer_that_is_not_json_is_no_verdict_even_unflagged() -> None:
    answer = RawResponse(assessment_path(SUB, EMAIL), 200, "r", READ_AT, "<html>")
    verdict = beside(
        "contact_email", True, contacts(), CrossCheckRead((AssessmentRead(EMAIL, answer),))
    )
    assert (verdict.status, verdict.agrees) == (None, None)
    assert (verdict.why or "").startswith("no Microsoft verdict: ")


def test_odd_shapes_are_refused_or_unknown() -> None:
    with pytest.raises(MalformedResponse, match="expected an object"):
        policy_of([])
    body = {"properties": {"resourceDetails": {"Id": "/subscriptions/other"}, "status": {}}}
    with pytest.raises(MalformedResponse, match=r"resourceDetails\.id names another"):
        parse_assessment(body, SUB)
    with pytest.raises(KeyError):
        microsoft_passes("attack_path_notifications", [])


def test_the_sdk_reading_otherwise_and_an_unexpected_failure_are_no_verdict() -> None:
    from types import SimpleNamespace

    from compliance.arm.assessments import _problem, _sdk_disagrees
    from compliance.microsoft import DefenderStatus

    model = SimpleNamespace(status=SimpleNamespace(code="Unhealthy", cause=None, description=None))
    assert _sdk_disagrees(model, DefenderStatus("Unhealthy")) is None
    assert "reads status.code otherwise" in (_sdk_disagrees(model, DefenderStatus("Healthy")) or "")
    assert _problem(RuntimeError("boom\nmore")) == "reading it failed: RuntimeError: boom"
