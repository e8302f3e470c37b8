"""Unit tests for compliance.controls: the email verdict on hand-built SecurityContacts."""

from __future__ import annotations

import re

import pytest

from compliance.contacts import API_2020, API_2023, Contact, SecurityContacts
from compliance.controls import CIS_VERSIONS, SECURITY_CONTACT_EMAIL, evaluate_email

SUB = "20ff7fc3-e762-44dd-bd96-b71116dcdc23"


def read(*contacts: Contact, api: str = API_2023, registered: bool = True) -> SecurityContacts:
    return SecurityContacts(SUB, api, contacts, defender_registered=registered)


# --- passing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contacts", "named"),
    [
        pytest.param(
            [Contact("default", ("soc@contoso.com",), enabled=True)],
            ["soc@contoso.com"],
            id="enabled-valid",
        ),
        pytest.param(
            [Contact("default", ("soc@contoso.com", "ciso@contoso.com"))],
            ["soc@contoso.com", "ciso@contoso.com"],
            id="2020-style-no-isEnabled",
        ),
        pytest.param(
            [
                Contact("old", ("old@contoso.com",), enabled=False),
                Contact("default", ("soc@contoso.com",), enabled=True),
            ],
            ["soc@contoso.com"],
            id="one-disabled-one-enabled",
        ),
        pytest.param(
            [Contact("default", ("admin@localhost", "soc@contoso.com"), enabled=True)],
            ["soc@contoso.com"],
            id="mixed-valid-and-invalid",
        ),
    ],
)
def test_email_passes(contacts: list[Contact], named: list[str]) -> None:
    verdict = evaluate_email(read(*contacts))
    assert verdict.compliant
    assert verdict.remediation == ""
    assert verdict.message == verdict.reason
    for address in named:
        assert address in verdict.message


def test_passing_message_names_only_the_valid_addresses() -> None:
    verdict = evaluate_email(read(Contact("default", ("admin@localhost", "soc@contoso.com"))))
    assert "soc@contoso.com" in verdict.message
    assert "admin@localhost" not in verdict.message


def test_disabled_contact_is_not_the_one_named() -> None:
    verdict = evaluate_email(
        read(
            Contact("old", ("old@contoso.com",), enabled=False),
            Contact("default", ("soc@contoso.com",), enabled=True),
        )
    )
    assert "old@contoso.com" not in verdict.message


def test_2020_api_version_contact_passes() -> None:
    assert evaluate_email(read(Contact("default", ("soc@contoso.com",)), api=API_2020)).compliant


# --- failing ----------------------------------------------------------------------------

FAILURES = [
    pytest.param(read(), ["no security contact"], id="no-contacts"),
    pytest.param(
        read(Contact("default", (), enabled=True)), ["'default'", "no email address"],
        id="empty-addresses",
    ),
    pytest.param(
        read(Contact("default", ("admin@localhost", "a@@contoso.com"), enabled=True)),
        ["only invalid", "'admin@localhost'", "'a@@contoso.com'"],
        id="only-invalid",
    ),
    pytest.param(
        read(
            Contact("default", ("soc@contoso.com",), enabled=False),
            Contact("second", ("ciso@contoso.com",), enabled=False),
        ),
        ["'default' is disabled", "'second' is disabled", "isEnabled: false"],
        id="all-disabled",
    ),
    pytest.param(
        read(registered=False), ["MissingSubscriptionRegistration"], id="not-registered"
    ),
]  # fmt: skip


@pytest.mark.parametrize(("contacts", "causes"), FAILURES)
def test_email_fails_naming_the_cause(contacts: SecurityContacts, causes: list[str]) -> None:
    verdict = evaluate_email(contacts)
    assert not verdict.compliant
    for cause in causes:
        assert cause in verdict.reason


@pytest.mark.parametrize(("contacts", "causes"), FAILURES)
def test_failing_message_says_how_to_fix(contacts: SecurityContacts, causes: list[str]) -> None:
    message = evaluate_email(contacts).message
    assert message.startswith(evaluate_email(contacts).reason)
    assert "How to fix" in message
    assert SUB in message
    assert "Environment settings" in message
    assert re.search(rf"\baz [^\n]*{SUB}", message), message


def test_not_registered_remediation_registers_the_provider() -> None:
    verdict = evaluate_email(read(registered=False))
    assert (
        f"az provider register --namespace Microsoft.Security --subscription {SUB}"
        in verdict.remediation
    )


@pytest.mark.parametrize(
    "contacts",
    [
        pytest.param(read(), id="no-contacts"),
        pytest.param(read(Contact("default", ())), id="empty-addresses"),
        pytest.param(read(Contact("default", ("admin@localhost",))), id="only-invalid"),
    ],
)
def test_remediation_creates_a_contact_for_the_subscription(contacts: SecurityContacts) -> None:
    remediation = evaluate_email(contacts).remediation
    assert f"az security contact create --subscription {SUB}" in remediation
    assert "az provider register" not in remediation


def test_disabled_remediation_turns_the_contact_on() -> None:
    verdict = evaluate_email(read(Contact("default", ("soc@contoso.com",), enabled=False)))
    assert '"isEnabled": true' in verdict.remediation
    assert f"/subscriptions/{SUB}/providers/Microsoft.Security/securityContacts/default" in (
        verdict.remediation
    )


# --- catalogue ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cis_version", "cis_id"),
    [
        ("1.1.0", "2.16"),
        ("1.3.0", "2.13"),
        ("1.4.0", "2.13"),
        ("1.5.0", "2.3.2"),
        ("2.0.0", "2.1.19"),
        ("2.1.0", "2.1.18"),
        ("3.0.0", "3.1.13"),
        ("4.0.0", "9.1.13"),
        ("5.0.0", "8.1.13"),
    ],
)
def test_email_cis_ids_match_design_table(cis_version: str, cis_id: str) -> None:
    assert SECURITY_CONTACT_EMAIL.cis_ids[cis_version] == cis_id


def test_email_cis_ids_cover_every_cis_version() -> None:
    assert set(SECURITY_CONTACT_EMAIL.cis_ids) == set(CIS_VERSIONS)
