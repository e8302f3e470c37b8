"""Unit tests for compliance.controls: the four verdicts, the policy, remediation, catalogue.

Contacts are built the way the audit builds them: raw securityContacts JSON of each
api-version through normalize_contact, so every control is seen on every API shape.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from compliance import fixes
from compliance.apiversions import API_2017, API_2020, API_2023, normalize_contact
from compliance.contacts import RISK_LEVELS, SEVERITIES, Contact, SecurityContacts
from compliance.controls import (
    ALERT_SEVERITY,
    ATTACK_PATH,
    BENCHMARK_ONLY,
    CATALOGUE,
    CONTACT_EMAIL,
    CONTROLS,
    OWNER_NOTIFICATIONS,
    Control,
    Policy,
    Verdict,
    evaluate_alert_severity,
    evaluate_attack_path,
    evaluate_email,
    evaluate_owner_notifications,
    validate_catalogue,
)
from compliance.fixes import Note

SUB = "20ff7fc3-e762-44dd-bd96-b71116dcdc23"
PHONE = "+1 425 555 0100"
CHECKS = Path(__file__).resolve().parent.parent / "tests" / "test_security_contacts.py"
APIS = (API_2017, API_2020, API_2023)
REGISTER = f"az provider register --namespace Microsoft.Security --subscription {SUB}"
STRICT = Policy(
    required_contacts=("ciso@contoso.com",),
    allowed_contact_domains=("contoso.com",),
    min_alert_severity="Low",
    min_attack_path_risk="Medium",
)

ALERT_HIGH = {"sourceType": "Alert", "minimalSeverity": "High"}
ATTACK_HIGH = {"sourceType": "AttackPath", "minimalRiskLevel": "High"}
# One `default` contact per api-version that passes every control that version has.
GOOD: dict[str, dict[str, Any]] = {
    API_2017: {
        "email": "soc@contoso.com",
        "phone": PHONE,
        "alertNotifications": "On",
        "alertsToAdmins": "On",
    },
    API_2020: {
        "emails": "soc@contoso.com",
        "phone": PHONE,
        "alertNotifications": {"state": "On", "minimalSeverity": "High"},
        "notificationsByRole": {"state": "On", "roles": ["Owner"]},
    },
    API_2023: {
        "emails": "soc@contoso.com",
        "phone": PHONE,
        "isEnabled": True,
        "notificationsByRole": {"state": "On", "roles": ["Owner"]},
        "notificationsSources": [ALERT_HIGH, ATTACK_HIGH],
    },
}
EMAILS = {API_2017: "email", API_2020: "emails", API_2023: "emails"}
# Every setting off, and one address outside contoso.com.
BAD: dict[str, dict[str, Any]] = {
    API_2017: {"email": "ops@fabrikam.com", "alertNotifications": "Off", "alertsToAdmins": "Off"},
    API_2020: {
        "emails": "soc@contoso.com;ops@fabrikam.com",
        "alertNotifications": {"state": "Off"},
        "notificationsByRole": {"state": "Off", "roles": []},
    },
    API_2023: {"emails": "soc@contoso.com;ops@fabrikam.com", "isEnabled": False},
}
GOOD_CONTACT = Contact(
    "default",
    ("soc@contoso.com",),
    enabled=True,
    alert_notifications=True,
    alert_minimal_severity="High",
    notify_roles_enabled=True,
    notify_roles=("Owner",),
    attack_path_minimal_risk="High",
)


def contact(api: str, props: dict[str, Any]) -> Contact:
    return normalize_contact({"name": "default", "properties": props}, api)


def read(*contacts: Contact, api: str = API_2023, registered: bool = True) -> SecurityContacts:
    return SecurityContacts(SUB, api, contacts, defender_registered=registered)


def shaped(api: str, **changes: Any) -> SecurityContacts:
    """A read of GOOD[api] with `changes` applied (a None value removes the key)."""
    props = {k: v for k, v in {**GOOD[api], **changes}.items() if v is not None}
    return read(contact(api, props), api=api)


FIX_COMMAND = f'python -m compliance fix --subscription {SUB} --email "$SECURITY_CONTACT"'


def assert_says_how_to_fix(
    verdict: Verdict, api_version: str = API_2023, *, command: str = "az"
) -> None:
    """The failure says how to fix it: the portal, and the `az rest` PUT of the default contact
    at the api-version it was read at, or (command="fix") the fix command, or (command="")
    no command at all."""
    assert not verdict.compliant
    message = verdict.message
    assert message.startswith(f"{verdict.reason}\nHow to fix:\n")
    assert SUB in message
    assert "Environment settings" in message
    url = f"/subscriptions/{SUB}/providers/Microsoft.Security/securityContacts/default"
    assert (f"az rest --method put --url '{url}?api-version={api_version}'" in message) is (
        command == "az"
    )
    assert (FIX_COMMAND in message) is (command == "fix")


# --- each control on each API shape -------------------------------------------------------


def case(control: Control, api: str, changes: dict[str, Any], reason: str, name: str) -> Any:
    return pytest.param(control, api, changes, reason, id=f"{control.key}-{api[:4]}-{name}")


PASSES = [
    *[case(CONTACT_EMAIL, api, {}, "'default' sends to soc@contoso.com", "on") for api in APIS],
    *[case(ALERT_SEVERITY, api, {}, "alerts from severity High up", "on") for api in APIS],
    *[case(OWNER_NOTIFICATIONS, api, {}, "'default' notifies roles Owner", "on") for api in APIS],
    case(ATTACK_PATH, API_2023, {}, "attack paths from risk High up", "on"),
]

ROLES_OFF = {"notificationsByRole": {"state": "Off", "roles": ["Owner"]}}
NOT_OWNER = {"notificationsByRole": {"state": "On", "roles": ["Contributor", "ServiceAdmin"]}}
NO_ROLES = {"notificationsByRole": {"state": "On", "roles": []}}
FAILS = [
    *[
        case(CONTACT_EMAIL, api, {EMAILS[api]: value}, "'default' has no email address", name)
        for api in APIS
        for value, name in [("", "empty"), (" ; ", "separators-only"), (None, "missing")]
    ],
    *[
        case(
            CONTACT_EMAIL,
            api,
            {EMAILS[api]: "admin@localhost"},
            "'default' has only invalid email addresses: 'admin@localhost' (",
            "only-invalid",
        )
        for api in APIS
    ],
    case(ALERT_SEVERITY, API_2017, {"alertNotifications": "Off"}, "turned off", "off"),
    case(ALERT_SEVERITY, API_2017, {"alertNotifications": None}, "turned off", "missing"),
    case(
        ALERT_SEVERITY,
        API_2020,
        {"alertNotifications": {"state": "Off", "minimalSeverity": "High"}},
        "'default' has alert notifications turned off",
        "off",
    ),
    case(ALERT_SEVERITY, API_2020, {"alertNotifications": None}, "turned off", "missing"),
    case(
        ALERT_SEVERITY,
        API_2020,
        {"alertNotifications": {"state": "On"}},
        "'default' has alert notifications on but no minimal severity",
        "no-severity",
    ),
    case(
        ALERT_SEVERITY,
        API_2023,
        {"notificationsSources": [ATTACK_HIGH]},
        "'default' has alert notifications turned off",
        "no-alert-source",
    ),
    case(ALERT_SEVERITY, API_2023, {"notificationsSources": None}, "turned off", "no-sources"),
    case(
        ALERT_SEVERITY,
        API_2023,
        {"notificationsSources": [{"sourceType": "Alert"}]},
        "on but no minimal severity",
        "no-severity",
    ),
    *[
        case(OWNER_NOTIFICATIONS, API_2017, {"alertsToAdmins": value}, "does not notify by role", n)
        for value, n in [("Off", "off"), (None, "missing")]
    ],
    *[
        case(OWNER_NOTIFICATIONS, api, changes, reason, name)
        for api in (API_2020, API_2023)
        for changes, reason, name in [
            (ROLES_OFF, "notificationsByRole.state is not On", "off"),
            ({"notificationsByRole": None}, "does not notify by role", "missing"),
            (
                NOT_OWNER,
                "'default' notifies roles Contributor, ServiceAdmin, not Owner",
                "no-owner",
            ),
            (NO_ROLES, "'default' notifies roles none, not Owner", "no-roles"),
        ]
    ],
    case(
        ATTACK_PATH,
        API_2023,
        {"notificationsSources": [ALERT_HIGH]},
        "'default' has no attack path notifications",
        "no-attack-path-source",
    ),
    case(
        ATTACK_PATH,
        API_2023,
        {"notificationsSources": [ALERT_HIGH, {"sourceType": "AttackPath"}]},
        "'default' has no attack path notifications",
        "no-risk-level",
    ),
    case(
        ATTACK_PATH,
        API_2023,
        {"notificationsSources": [{"sourceType": "AttackPath", "minimalRiskLevel": "Critical"}]},
        "'default' is notified only from attack path risk Critical; required: High or lower",
        "critical-only",
    ),
]


@pytest.mark.parametrize(("control", "api", "changes", "reason"), PASSES)
def test_control_passes(control: Control, api: str, changes: dict[str, Any], reason: str) -> None:
    verdict = control.evaluate(shaped(api, **changes), BENCHMARK_ONLY)
    assert verdict.compliant, verdict.reason
    assert reason in verdict.reason
    assert verdict.fix == ()
    assert verdict.message == verdict.reason


@pytest.mark.parametrize(("control", "api", "changes", "reason"), FAILS)
def test_control_fails_saying_why_and_how_to_fix(
    control: Control, api: str, changes: dict[str, Any], reason: str
) -> None:
    contacts = shaped(api, **changes)
    verdict = control.evaluate(contacts, BENCHMARK_ONLY)
    assert reason in verdict.reason
    # An address only people can choose: the fix command takes it and keeps everything else.
    assert_says_how_to_fix(verdict, api, command="fix" if control is CONTACT_EMAIL else "az")
    assert REGISTER not in verdict.message


@pytest.mark.parametrize("api", [API_2017, API_2020])
def test_attack_path_fails_on_api_versions_without_attack_paths(api: str) -> None:
    verdict = evaluate_attack_path(shaped(api))
    assert not verdict.compliant
    assert f"only at api-version {api}, which has no attack path notifications" in verdict.reason
    assert "How to fix" in verdict.message
    assert "api-version 2023-12-01-preview" in fixes.text(verdict.fix)
    assert "waiver" in fixes.text(verdict.fix)
    assert shaped(api).subscription_id in fixes.text(verdict.fix)


@pytest.mark.parametrize("control", CATALOGUE, ids=lambda c: c.key)
def test_disabled_contact_notifies_nobody(control: Control) -> None:
    verdict = control.evaluate(shaped(API_2023, isEnabled=False), BENCHMARK_ONLY)
    assert "security contact 'default' is disabled (isEnabled: false)" in verdict.reason
    assert_says_how_to_fix(verdict)
    assert '"isEnabled": true' in fixes.text(verdict.fix)


@pytest.mark.parametrize("control", CATALOGUE, ids=lambda c: c.key)
def test_the_contact_that_is_not_disabled_is_the_one_that_counts(control: Control) -> None:
    old = dataclasses.replace(GOOD_CONTACT, name="old", addresses=("old@contoso.com",))
    verdict = control.evaluate(
        read(dataclasses.replace(old, enabled=False), GOOD_CONTACT), BENCHMARK_ONLY
    )
    assert verdict.compliant
    assert verdict.reason.startswith("security contact 'default' ")
    assert "old" not in verdict.reason


# --- values this suite does not know (extensible enums) --------------------------------

# Per control, a 2023 change that leaves only that control's verdict on an unknown value.
UNKNOWN_FOR = {
    ALERT_SEVERITY.key: {"notificationsSources": [
        {"sourceType": "Alert", "minimalSeverity": "Informational"}, ATTACK_HIGH]},
    OWNER_NOTIFICATIONS.key: {"notificationsByRole": {"state": "Partial", "roles": ["Owner"]}},
    ATTACK_PATH.key: {"notificationsSources": [
        ALERT_HIGH, {"sourceType": "AttackPath", "minimalRiskLevel": "Severe"}]},
}  # fmt: skip


@pytest.mark.parametrize("key", UNKNOWN_FOR)
def test_an_unknown_value_makes_only_the_control_that_reads_it_not_verifiable(key: str) -> None:
    contacts = shaped(API_2023, **UNKNOWN_FOR[key])
    for control in CATALOGUE:
        verdict = control.evaluate(contacts, BENCHMARK_ONLY)
        if control.key == key:
            assert not verdict.verifiable
            assert not verdict.compliant  # asserting it can never pass
            assert "a value this suite does not know" in verdict.reason
            assert "the verdict depends on it" in verdict.reason
            assert "Email notifications" in fixes.text(verdict.fix)
        else:
            assert verdict.verifiable and verdict.compliant, (control.key, verdict.reason)


def test_an_unknown_source_type_leaves_alerts_and_attack_paths_undecided() -> None:
    contacts = shaped(API_2023, notificationsSources=[{"sourceType": "Recommendation"}])
    assert not evaluate_alert_severity(contacts).verifiable
    assert not evaluate_attack_path(contacts).verifiable
    assert "notificationsSources[0].sourceType is 'Recommendation'" in (
        evaluate_attack_path(contacts).reason
    )
    assert evaluate_email(contacts).compliant
    assert evaluate_owner_notifications(contacts).compliant


def test_an_unknown_value_does_not_matter_where_another_contact_passes() -> None:
    odd = contact(API_2023, {**GOOD[API_2023], "notificationsByRole": {"state": "Partial"}})
    verdict = evaluate_owner_notifications(read(dataclasses.replace(odd, name="odd"), GOOD_CONTACT))
    assert verdict.verifiable and verdict.compliant


def test_an_unknown_value_does_not_matter_on_a_disabled_contact() -> None:
    props = {**GOOD[API_2023], "isEnabled": False, "notificationsByRole": {"state": "Partial"}}
    verdict = evaluate_owner_notifications(read(contact(API_2023, props)))
    assert verdict.verifiable and not verdict.compliant
    assert "is disabled" in verdict.reason


@pytest.mark.parametrize(
    ("api", "alerts"),
    [(API_2020, {"state": "Off", "minimalSeverity": ""}),
     (API_2020, {"state": "On", "minimalSeverity": ""})],
    ids=["off", "on-without-severity"],
)  # fmt: skip
def test_empty_severity_fails_saying_so(api: str, alerts: dict[str, str]) -> None:
    verdict = evaluate_alert_severity(shaped(api, alertNotifications=alerts))
    assert verdict.verifiable and not verdict.compliant
    expected = "turned off" if alerts["state"] == "Off" else "on but no minimal severity"
    assert expected in verdict.reason


def test_every_failing_contact_is_listed() -> None:
    verdict = evaluate_owner_notifications(
        read(
            dataclasses.replace(GOOD_CONTACT, name="a", enabled=False),
            dataclasses.replace(GOOD_CONTACT, name="b", notify_roles=("Contributor",)),
        )
    )
    assert verdict.reason == (
        "security contact 'a' is disabled (isEnabled: false); "
        "security contact 'b' notifies roles Contributor, not Owner"
    )


def test_email_names_only_valid_addresses_and_lists_every_invalid_one() -> None:
    mixed = evaluate_email(read(contact(API_2023, {"emails": "admin@localhost;soc@contoso.com"})))
    assert mixed.compliant
    assert mixed.reason == "security contact 'default' sends to soc@contoso.com"
    invalid = evaluate_email(read(contact(API_2023, {"emails": "admin@localhost,a@@contoso.com"})))
    assert "'admin@localhost' (" in invalid.reason
    assert "'a@@contoso.com' (" in invalid.reason


@pytest.mark.parametrize("control", CATALOGUE, ids=lambda c: c.key)
@pytest.mark.parametrize(
    ("registered", "reason"),
    [
        pytest.param(True, "no security contact is configured", id="no-contacts"),
        pytest.param(False, "409 MissingSubscriptionRegistration", id="defender-not-set-up"),
    ],
)
def test_nobody_to_notify_fails_every_control(
    control: Control, registered: bool, reason: str
) -> None:
    verdict = control.evaluate(read(registered=registered), BENCHMARK_ONLY)
    assert reason in verdict.reason
    assert_says_how_to_fix(verdict, command="fix" if control is CONTACT_EMAIL else "az")
    assert (REGISTER in fixes.text(verdict.fix)) is not registered


def test_verdict_message_adds_how_to_fix_only_to_a_failure_with_a_remediation() -> None:
    assert Verdict(True, "fine", (Note("ignored"),)).message == "fine"
    assert Verdict(False, "broken").message == "broken"
    assert Verdict(False, "broken", (Note("do this"),)).message == "broken\nHow to fix:\n  do this"


# --- thresholds -----------------------------------------------------------------------------

# Notified from a level up covers a threshold when the level is that threshold or lower.
COVERS_ALERT = {"Low": {"Low"}, "Medium": {"Low", "Medium"}, "High": {"Low", "Medium", "High"}}
COVERS_RISK = {
    "Low": {"Low"},
    "Medium": {"Low", "Medium"},
    "High": {"Low", "Medium", "High"},
    "Critical": {"Low", "Medium", "High", "Critical"},
}


def levels(names: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(level, minimum, id=f"from-{level}-policy-{minimum}")
        for level in names
        for minimum in names
    ]


def alert_read(api: str, severity: str) -> SecurityContacts:
    if api == API_2020:
        return shaped(api, alertNotifications={"state": "On", "minimalSeverity": severity})
    return shaped(api, notificationsSources=[{"sourceType": "Alert", "minimalSeverity": severity}])


@pytest.mark.parametrize("api", [API_2020, API_2023])
@pytest.mark.parametrize(("severity", "minimum"), levels(SEVERITIES))
def test_alert_severity_threshold(api: str, severity: str, minimum: str) -> None:
    verdict = evaluate_alert_severity(alert_read(api, severity), Policy(min_alert_severity=minimum))
    assert verdict.compliant is (severity in COVERS_ALERT[minimum])
    if not verdict.compliant:
        assert f"only from severity {severity}; required: {minimum} or lower" in verdict.reason


@pytest.mark.parametrize("minimum", SEVERITIES)
def test_2017_alert_notifications_on_means_high(minimum: str) -> None:
    verdict = evaluate_alert_severity(shaped(API_2017), Policy(min_alert_severity=minimum))
    assert verdict.compliant is (minimum == "High")
    if not verdict.compliant:
        assert f"only from severity High; required: {minimum} or lower" in verdict.reason


@pytest.mark.parametrize(("risk", "minimum"), levels(RISK_LEVELS))
def test_attack_path_risk_threshold(risk: str, minimum: str) -> None:
    sources = [ALERT_HIGH, {"sourceType": "AttackPath", "minimalRiskLevel": risk}]
    verdict = evaluate_attack_path(
        shaped(API_2023, notificationsSources=sources), Policy(min_attack_path_risk=minimum)
    )
    assert verdict.compliant is (risk in COVERS_RISK[minimum])
    if not verdict.compliant:
        assert f"only from attack path risk {risk}; required: {minimum} or lower" in verdict.reason


def test_default_thresholds_are_high() -> None:
    assert BENCHMARK_ONLY.min_alert_severity == "High"
    assert BENCHMARK_ONLY.min_attack_path_risk == "High"
    assert BENCHMARK_ONLY.required_contacts == BENCHMARK_ONLY.allowed_contact_domains == ()


# --- organisation policy --------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_required_contacts_missing_are_named(api: str) -> None:
    policy = Policy(required_contacts=("soc@contoso.com", "ciso@contoso.com", "cert@contoso.com"))
    verdict = evaluate_email(shaped(api), policy)
    assert verdict.reason == (
        "required security contacts are missing (organisation policy): "
        "ciso@contoso.com, cert@contoso.com"
    )
    added = after_commands(shaped(api), fixes.text(verdict.fix))
    assert evaluate_email(added, policy).compliant
    if api == API_2017:  # a contact per address, beside the one that is there
        assert [c.name for c in added.contacts] == ["default", "default1", "default2"]
    else:
        assert_says_how_to_fix(verdict, api)
        assert "soc@contoso.com;ciso@contoso.com;cert@contoso.com" in fixes.text(verdict.fix)


@pytest.mark.parametrize(
    ("configured", "required"),
    [
        pytest.param("soc@contoso.com;ciso@contoso.com", "CISO@Contoso.com", id="required-upper"),
        pytest.param("SOC@CONTOSO.COM, ciso@contoso.com", "soc@contoso.com", id="configured-upper"),
    ],
)
def test_required_contacts_match_case_insensitively(configured: str, required: str) -> None:
    verdict = evaluate_email(
        shaped(API_2023, emails=configured), Policy(required_contacts=(required,))
    )
    assert verdict.compliant, verdict.reason


def test_required_contact_on_a_disabled_contact_is_missing() -> None:
    contacts = read(
        dataclasses.replace(
            GOOD_CONTACT, name="old", addresses=("ciso@contoso.com",), enabled=False
        ),
        GOOD_CONTACT,
    )
    verdict = evaluate_email(contacts, Policy(required_contacts=("ciso@contoso.com",)))
    assert verdict.reason.endswith("missing (organisation policy): ciso@contoso.com")


@pytest.mark.parametrize("api", APIS)
def test_addresses_outside_allowed_domains_are_named(api: str) -> None:
    contacts = shaped(api, **{EMAILS[api]: "soc@contoso.com;ops@fabrikam.com;x@mail.contoso.com"})
    verdict = evaluate_email(contacts, Policy(allowed_contact_domains=("contoso.com", "ms.com")))
    assert verdict.reason == (
        "addresses outside the allowed domains (contoso.com, ms.com; organisation policy): "
        "ops@fabrikam.com, x@mail.contoso.com"
    )
    # Removing addresses is a choice for people: the portal, named, and no command.
    assert_says_how_to_fix(verdict, api, command="")
    assert "remove ops@fabrikam.com, x@mail.contoso.com (outside the allowed domains)" in (
        fixes.text(verdict.fix)
    )


def test_allowed_domains_ignore_case() -> None:
    contacts = shaped(API_2023, emails="SOC@CONTOSO.COM;ciso@contoso.com")
    assert evaluate_email(contacts, Policy(allowed_contact_domains=("Contoso.com",))).compliant


def test_allowed_domains_ignore_disabled_contacts() -> None:
    old = dataclasses.replace(GOOD_CONTACT, name="old", addresses=("a@x.com",), enabled=False)
    policy = Policy(allowed_contact_domains=("contoso.com",))
    assert evaluate_email(read(old, GOOD_CONTACT), policy).compliant


def test_both_policy_problems_are_reported() -> None:
    verdict = evaluate_email(shaped(API_2023, emails="ops@fabrikam.com"), STRICT)
    assert "required security contacts are missing (organisation policy): ciso" in verdict.reason
    assert "outside the allowed domains (contoso.com; organisation policy): ops@" in verdict.reason


@pytest.mark.parametrize(
    ("contacts", "reason"),
    [
        pytest.param(shaped(API_2023, emails=""), "has no email address", id="no-address"),
        pytest.param(shaped(API_2023, isEnabled=False), "is disabled", id="disabled"),
        pytest.param(read(), "no security contact is configured", id="no-contacts"),
    ],
)
def test_policy_is_checked_only_once_the_benchmark_rule_passes(
    contacts: SecurityContacts, reason: str
) -> None:
    verdict = evaluate_email(contacts, STRICT)
    assert reason in verdict.reason
    assert "organisation policy" not in verdict.reason


@pytest.mark.parametrize(
    "control", [ALERT_SEVERITY, OWNER_NOTIFICATIONS, ATTACK_PATH], ids=lambda c: c.key
)
def test_contact_policy_concerns_only_the_email_control(control: Control) -> None:
    contacts = shaped(API_2023, emails="ops@fabrikam.com")
    policy = Policy(required_contacts=("ciso@contoso.com",), allowed_contact_domains=("x.com",))
    assert control.evaluate(contacts, policy).compliant


# --- remediation: the planner's PUT, quoted for a shell --------------------------------


def planned_contacts(remediation: str, api: str) -> list[Contact]:
    """The contacts the remediation's `az rest` commands would PUT (parsed the way a POSIX
    shell parses them)."""
    found = []
    for line in remediation.splitlines():
        if "az rest --method put" in line:
            words = shlex.split(line.split("CLI: ", 1)[1])
            name = words[words.index("--url") + 1].split("?")[0].rsplit("/", 1)[1]
            body = json.loads(words[words.index("--body") + 1])
            found.append(normalize_contact({"name": name, **body}, api))
    return found


def after_commands(contacts: SecurityContacts, remediation: str) -> SecurityContacts:
    planned = {c.name: c for c in planned_contacts(remediation, contacts.api_version)}
    kept = [c for c in contacts.contacts if c.name not in planned]
    return dataclasses.replace(contacts, contacts=(*kept, *planned.values()))


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("policy", [BENCHMARK_ONLY, STRICT], ids=["benchmark", "strict"])
def test_the_printed_commands_make_every_other_control_pass(api: str, policy: Policy) -> None:
    # BAD has contoso.com and fabrikam.com addresses: the strict policy's domain rule fails
    # until a person removes one, so only the email control may still fail afterwards.
    before = read(contact(api, BAD[api]), api=api)
    verdict = evaluate_owner_notifications(before, policy)
    after = after_commands(before, fixes.text(verdict.fix))
    failing = {c.key for c in CATALOGUE if not c.evaluate(after, policy).compliant}
    expected = set() if api == API_2023 else {ATTACK_PATH.key}  # no such setting before 2023
    if policy is STRICT:
        expected.add(CONTACT_EMAIL.key)  # ops@fabrikam.com stays until a person removes it
        if api == API_2017:
            expected.add(ALERT_SEVERITY.key)  # 2017 knows only High; the policy asks Low
    assert failing == expected


@pytest.mark.parametrize("api", [API_2020, API_2023])
def test_the_printed_commands_never_loosen_or_drop(api: str) -> None:
    """Medium alerts and attack paths stay Medium (the default policy asks High); every
    address, invalid ones too, and every role stays."""
    props = {
        **GOOD[api],
        EMAILS[api]: "soc@contoso.com;not-an-address",
        "notificationsByRole": {"state": "Off", "roles": ["Contributor"]},
    }
    if api == API_2023:
        props["notificationsSources"] = [
            {"sourceType": "Alert", "minimalSeverity": "Medium"},
            {"sourceType": "AttackPath", "minimalRiskLevel": "Medium"},
        ]
    else:
        props["alertNotifications"] = {"state": "On", "minimalSeverity": "Medium"}
    verdict = evaluate_owner_notifications(read(contact(api, props), api=api))
    (planned,) = planned_contacts(fixes.text(verdict.fix), api)
    assert planned.addresses == ("soc@contoso.com", "not-an-address")
    assert planned.notify_roles == ("Contributor", "Owner")
    assert planned.alert_minimal_severity == "Medium"
    assert planned.attack_path_minimal_risk == ("Medium" if api == API_2023 else None)
    assert planned.phone == PHONE
    assert "every address, role and phone kept; no threshold raised" in fixes.text(verdict.fix)


def test_the_printed_commands_leave_unknown_values_alone() -> None:
    """An alert severity this suite does not know is not overwritten by the owner control's
    advice: no threshold raised, even one it cannot rank."""
    contacts = shaped(API_2023, notificationsByRole=None, notificationsSources=[
        {"sourceType": "Alert", "minimalSeverity": "Informational"}, ATTACK_HIGH])  # fmt: skip
    verdict = evaluate_owner_notifications(contacts)
    (planned,) = planned_contacts(fixes.text(verdict.fix), API_2023)
    assert planned.raw["properties"]["notificationsSources"][0] == {
        "sourceType": "Alert",
        "minimalSeverity": "Informational",
    }
    assert planned.notify_roles == ("Owner",)


def test_a_2017_contact_name_that_is_not_plain_is_never_in_a_command() -> None:
    hostile = "c1\n  CLI: az rest --method delete --url /subscriptions/x"
    odd = normalize_contact(
        {"name": hostile, "properties": {"email": "soc@contoso.com", "alertsToAdmins": "Off"}},
        API_2017,
    )
    verdict = evaluate_owner_notifications(read(odd, api=API_2017))
    assert not verdict.compliant
    assert "--method delete" not in fixes.text(verdict.fix)
    assert "c1\n" not in fixes.text(verdict.fix)


def test_hostile_values_are_quoted_for_the_shell() -> None:
    phone = "+1 555 0100'$(touch PWNED)'"
    contacts = shaped(API_2023, emails="o'brien@contoso.com", phone=phone,
                      notificationsByRole=None)  # fmt: skip
    verdict = evaluate_owner_notifications(contacts)
    (planned,) = planned_contacts(fixes.text(verdict.fix), API_2023)
    assert planned.phone == phone  # one word for the shell, exactly the value
    assert planned.addresses == ("o'brien@contoso.com",)


def test_remediation_for_each_control_names_its_portal_setting() -> None:
    for control in CATALOGUE:
        verdict = control.evaluate(read(), BENCHMARK_ONLY)
        assert f"Email notifications: {control.portal}, then Save." in fixes.text(verdict.fix)


# --- catalogue ------------------------------------------------------------------------------


def test_catalogue_wiring() -> None:
    assert CATALOGUE == (CONTACT_EMAIL, ALERT_SEVERITY, OWNER_NOTIFICATIONS, ATTACK_PATH)
    assert CONTROLS == validate_catalogue(CATALOGUE) == {c.test_name: c for c in CATALOGUE}
    assert [c.key for c in CATALOGUE] == [
        "contact_email",
        "alert_severity",
        "owner_notifications",
        "attack_path_notifications",
    ]
    assert [c.evaluate for c in CATALOGUE] == [
        evaluate_email,
        evaluate_alert_severity,
        evaluate_owner_notifications,
        evaluate_attack_path,
    ]


@pytest.mark.parametrize(
    ("controls", "error"),
    [
        pytest.param(
            [CONTACT_EMAIL, dataclasses.replace(ALERT_SEVERITY, key="contact_email")],
            "duplicate key",
            id="duplicate-key",
        ),
        pytest.param(
            [CONTACT_EMAIL, dataclasses.replace(ALERT_SEVERITY, test_name=CONTACT_EMAIL.test_name)],
            "duplicate test_name",
            id="duplicate-test-name",
        ),
        pytest.param(
            [dataclasses.replace(c, key=f"renamed_{c.key}") for c in CATALOGUE],
            "CIS 1.1.0 numbers unknown controls ['alert_severity', 'contact_email', 'owner",
            id="numbering-of-another-catalogue",
        ),
    ],
)
def test_validate_catalogue_rejects_contradictions(controls: list[Control], error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        validate_catalogue(controls)


def checks_in_tests_dir() -> dict[str, tuple[set[str], list[str], str]]:
    """Each test function in tests/test_security_contacts.py: its markers, its arguments and
    its body (without the docstring)."""
    found = {}
    for node in ast.parse(CHECKS.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            markers = {
                d.attr
                for d in node.decorator_list
                if isinstance(d, ast.Attribute) and ast.unparse(d.value) == "pytest.mark"
            }
            body = "\n".join(ast.unparse(n) for n in node.body[1:])
            found[node.name] = (markers, [a.arg for a in node.args.args], body)
    return found


def test_every_control_has_its_check_function() -> None:
    checks = checks_in_tests_dir()
    assert set(checks) == set(CONTROLS)
    for control in CATALOGUE:
        markers, arguments, body = checks[control.test_name]
        assert not markers, "the catalogue gives each check its marker"
        assert arguments == ["verdict"], control.test_name
        assert body == "assert verdict.compliant, verdict.message", control.test_name
