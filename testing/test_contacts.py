"""Unit tests for compliance.contacts: address parsing and normalizing every API shape."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from compliance.apiversions import (
    API_2017,
    API_2020,
    API_2023,
    contacts_from_page,
    normalize_contact,
)
from compliance.contacts import (
    RESERVED_DOMAINS,
    Contact,
    MalformedResponse,
    UnknownValue,
    address_problem,
    split_addresses,
)

EXAMPLES = Path(__file__).parent / "data" / "azure-rest-examples"
PHONE = "(214)275-4038"


# --- split_addresses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("a@x.com", ("a@x.com",), id="single"),
        pytest.param("a@x.com;b@x.com", ("a@x.com", "b@x.com"), id="semicolon"),
        pytest.param("a@x.com,b@x.com", ("a@x.com", "b@x.com"), id="comma"),
        pytest.param("a@x.com;b@x.com,c@x.com", ("a@x.com", "b@x.com", "c@x.com"), id="mixed"),
        pytest.param("  a@x.com ;\tb@x.com  ", ("a@x.com", "b@x.com"), id="trimmed"),
        pytest.param(";a@x.com;; ,b@x.com;", ("a@x.com", "b@x.com"), id="empty-parts-dropped"),
        pytest.param(" ; , ", (), id="only-separators"),
        pytest.param("", (), id="empty-string"),
    ],
)
def test_split_addresses(raw: str, expected: tuple[str, ...]) -> None:
    assert split_addresses(raw) == expected


# --- address_problem -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["john@contoso.com", "Jane@contoso.com", "first.last+tag@mail.fabrikam.com", "soc@x.io"],
)
def test_address_problem_accepts_valid_addresses(address: str) -> None:
    assert address_problem(address) is None


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("admin.contoso.com", id="no-at"),
        pytest.param("admin@mailhost", id="no-dot-in-domain"),
        pytest.param("admin@@contoso.com", id="double-at"),
        pytest.param("a@b@contoso.com", id="two-ats"),
        pytest.param("@contoso.com", id="no-local-part"),
        pytest.param("admin@", id="no-domain"),
        pytest.param("ad min@contoso.com", id="space"),
    ],
)
def test_address_problem_explains_invalid_addresses(address: str) -> None:
    why = address_problem(address)
    assert isinstance(why, str)
    assert why.strip()


@pytest.mark.parametrize(
    ("address", "shown", "rfc"),
    [
        pytest.param("soc@contoso.example", ".example", "RFC 2606", id="example-tld"),
        pytest.param("soc@contoso.test", ".test", "RFC 2606", id="test-tld"),
        pytest.param("soc@mail.invalid", ".invalid", "RFC 2606", id="invalid-tld"),
        pytest.param("soc@host.localhost", ".localhost", "RFC 2606", id="localhost-tld"),
        pytest.param("soc@localhost", ".localhost", "RFC 2606", id="localhost-alone"),
        pytest.param("soc@printer.local", ".local", "RFC 6762", id="local-tld"),
        pytest.param("soc@example.com", "example.com", "RFC 2606", id="example-com"),
        pytest.param("soc@example.net", "example.net", "RFC 2606", id="example-net"),
        pytest.param("soc@mail.sub.example.org", "example.org", "RFC 2606", id="below-example-org"),
        pytest.param("Soc@EXAMPLE.Com", "example.com", "RFC 2606", id="any-case"),
        pytest.param("soc@contoso.TEST", ".test", "RFC 2606", id="tld-any-case"),
        # full-width letters: IDNA maps them onto example.com
        pytest.param("soc@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "example.com",
                     "RFC 2606", id="look-alike"),
    ],
)  # fmt: skip
def test_reserved_domains_are_never_delivered(address: str, shown: str, rfc: str) -> None:
    assert address_problem(address) == f"reserved domain {shown} ({rfc}): never delivered"


@pytest.mark.parametrize(
    "address",
    ["soc@example.co", "soc@notexample.com", "soc@example.com.au", "soc@example-mail.org",
     "soc@test.contoso.com", "soc@contoso.testing"],
)  # fmt: skip
def test_names_that_only_look_reserved_are_valid(address: str) -> None:
    assert address_problem(address) is None


def test_every_reserved_domain_is_refused_with_its_rfc() -> None:
    for domain, rfc in RESERVED_DOMAINS.items():
        assert rfc in str(address_problem(f"soc@mail.{domain}")), domain


# --- the public REST examples, every api-version ---------------------------------------

EXPECTED_EXAMPLES: dict[tuple[str, str], Contact] = {
    (API_2017, "GetSecurityContactsSubscription_full_example.json"): Contact(
        name="default1",
        addresses=("john@contoso.com",),
        phone=PHONE,
        alert_notifications=True,
        alert_minimal_severity="High",  # 2017's "On" meant high severity
        notify_roles_enabled=True,
        notify_roles=("Owner",),
    ),
    (API_2017, "GetSecurityContactsSubscription_min_example.json"): Contact(
        name="default2",
        addresses=("chen@contoso.com",),
        alert_notifications=True,
        alert_minimal_severity="High",  # 2017's "On" meant high severity
        notify_roles_enabled=True,
        notify_roles=("Owner",),
    ),
    (API_2017, "GetSecurityContact_full_example.json"): Contact(
        name="default1",
        addresses=("default1@contoso.com",),
        phone=PHONE,
        alert_notifications=True,
        alert_minimal_severity="High",  # 2017's "On" meant high severity
        notify_roles_enabled=True,
        notify_roles=("Owner",),
    ),
    (API_2017, "GetSecurityContact_min_example.json"): Contact(
        name="default2",
        addresses=("chen@contoso.com",),
        alert_notifications=True,
        alert_minimal_severity="High",  # 2017's "On" meant high severity
        notify_roles_enabled=True,
        notify_roles=("Owner",),
    ),
    (API_2020, "GetSecurityContactsSubscription_example.json"): Contact(
        name="default",
        addresses=("john@contoso.com", "Jane@contoso.com"),
        phone=PHONE,
        alert_notifications=True,
        alert_minimal_severity="Low",
        notify_roles_enabled=True,
        notify_roles=("Owner", "Admin"),
    ),
    (API_2020, "GetSecurityContact_example.json"): Contact(
        name="default",
        addresses=("john@contoso.com", "jane@contoso.com"),
        phone=PHONE,
        alert_notifications=True,
        alert_minimal_severity="Low",
        notify_roles_enabled=True,
        notify_roles=("Owner",),
    ),
    (API_2023, "GetSecurityContactsSubscription_example.json"): Contact(
        name="default",
        addresses=("john@contoso.com", "Jane@contoso.com"),
        phone=PHONE,
        enabled=True,
        alert_notifications=True,
        alert_minimal_severity="Medium",
        notify_roles_enabled=True,
        notify_roles=("Owner", "Admin"),
        attack_path_minimal_risk="Critical",
    ),
    (API_2023, "GetSecurityContact_example.json"): Contact(
        name="default",
        addresses=("john@contoso.com", "jane@contoso.com"),
        phone=PHONE,
        enabled=True,
        alert_notifications=True,
        alert_minimal_severity="Medium",
        notify_roles_enabled=True,
        notify_roles=("Owner",),
        attack_path_minimal_risk="Critical",
    ),
}


def example_body(api_version: str, filename: str) -> Any:
    path = EXAMPLES / api_version / "SecurityContacts" / filename
    return json.loads(path.read_text())["responses"]["200"]["body"]


def test_every_get_example_has_an_expectation() -> None:
    on_disk = {
        (p.parent.parent.name, p.name)
        for p in EXAMPLES.glob("*/SecurityContacts/GetSecurityContact*_example.json")
    }
    assert on_disk == set(EXPECTED_EXAMPLES)


@pytest.mark.parametrize(
    ("api_version", "filename", "expected"),
    [
        pytest.param(api, name, contact, id=f"{api}/{name.removesuffix('_example.json')}")
        for (api, name), contact in EXPECTED_EXAMPLES.items()
    ],
)
def test_rest_example_normalizes(api_version: str, filename: str, expected: Contact) -> None:
    body = example_body(api_version, filename)
    if filename.startswith("GetSecurityContactsSubscription"):
        contacts, next_link = contacts_from_page(body, api_version)
        assert contacts == [expected]
        assert next_link is None
    else:
        assert normalize_contact(body, api_version) == expected


# --- nextLink ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"value": [], "nextLink": "https://next/page2"}, "https://next/page2",
                     id="present"),
        pytest.param({"value": []}, None, id="absent"),
        pytest.param({"value": [], "nextLink": None}, None, id="null"),
        pytest.param({"value": [], "nextLink": ""}, None, id="empty"),
    ],
)  # fmt: skip
def test_contacts_from_page_next_link(body: dict[str, Any], expected: str | None) -> None:
    contacts, next_link = contacts_from_page(body, API_2023)
    assert contacts == []
    assert next_link == expected


# --- MalformedResponse ------------------------------------------------------------------


def page(properties: Any) -> dict[str, Any]:
    return {"value": [{"name": "default", "properties": properties}]}


@pytest.mark.parametrize(
    ("body", "api_version", "where"),
    [
        pytest.param("[]", API_2023, "response body", id="body-a-string"),
        pytest.param(None, API_2020, "response body", id="body-null"),
        pytest.param([1], API_2020, "value[0]", id="bare-array-of-numbers"),
        pytest.param({}, API_2023, "'value'", id="value-missing"),
        pytest.param({"value": {"name": "default"}}, API_2023, "'value'", id="value-not-list"),
        pytest.param({"value": ["default"]}, API_2023, "value[0]", id="element-not-dict"),
        pytest.param(page(["emails"]), API_2023, "value[0].properties", id="properties-not-dict"),
        pytest.param(
            page({"emails": ["john@contoso.com", "jane@contoso.com"]}),
            API_2020,
            "value[0].properties.emails",
            id="emails-array-2020",
        ),
        pytest.param(
            page({"emails": ["john@contoso.com"]}),
            API_2023,
            "value[0].properties.emails",
            id="emails-array-2023",
        ),
        pytest.param(
            page({"emails": "a@x.com", "isEnabled": "true"}),
            API_2023,
            "value[0].properties.isEnabled",
            id="isEnabled-string",
        ),
        pytest.param(
            page({"emails": "a@x.com", "notificationsSources": {"sourceType": "Alert"}}),
            API_2023,
            "value[0].properties.notificationsSources",
            id="sources-not-list",
        ),
        pytest.param(
            page({"emails": "a@x.com", "notificationsSources": [{"minimalSeverity": "High"}]}),
            API_2023,
            "value[0].properties.notificationsSources[0].sourceType",
            id="source-without-sourceType",
        ),
        pytest.param(
            page({"emails": "a@x.com", "notificationsByRole": {"state": "On", "roles": "Owner"}}),
            API_2023,
            "value[0].properties.notificationsByRole.roles",
            id="roles-not-list",
        ),
        pytest.param(
            page({"emails": "a@x.com", "notificationsByRole": {"state": "On", "roles": "Owner"}}),
            API_2020,
            "value[0].properties.notificationsByRole.roles",
            id="roles-not-list-2020",
        ),
        pytest.param(
            page({"email": "a@x.com", "alertsToAdmins": True}),
            API_2017,
            "value[0].properties.alertsToAdmins",
            id="on-off-not-a-string-2017",
        ),
        pytest.param(
            page({"emails": "a@x.com", "alertNotifications": {"minimalSeverity": 3}}),
            API_2020,
            "value[0].properties.alertNotifications.minimalSeverity",
            id="severity-not-a-string-2020",
        ),
    ],
)
def test_malformed_page_names_the_problem(body: Any, api_version: str, where: str) -> None:
    with pytest.raises(MalformedResponse, match=re.escape(where)):
        contacts_from_page(body, api_version)


def test_malformed_single_contact_names_the_field() -> None:
    item = {"name": "default", "properties": {"emails": ["john@contoso.com"]}}
    with pytest.raises(MalformedResponse, match=r"contact\.properties\.emails is list"):
        normalize_contact(item, API_2020)


# --- what real ARM sends beyond the specification ---------------------------------------


@pytest.mark.parametrize("api_version", [API_2017, API_2020, API_2023])
def test_a_bare_array_is_one_whole_page(api_version: str) -> None:
    item = {"name": "default", "properties": {"email": "a@x.com", "emails": "a@x.com"}}
    contacts, next_link = contacts_from_page([item, item], api_version)
    assert [c.addresses for c in contacts] == [("a@x.com",), ("a@x.com",)]
    assert next_link is None


def test_empty_minimal_severity_at_2020_is_not_set() -> None:
    (contact,), _ = contacts_from_page(
        [{"name": "default", "properties": {"emails": "a@x.com",
          "alertNotifications": {"state": "Off", "minimalSeverity": ""}}}],
        API_2020,
    )  # fmt: skip
    assert contact.alert_notifications is False
    assert contact.alert_minimal_severity is None
    assert contact.unknown == ()


@pytest.mark.parametrize(
    ("api_version", "properties", "setting", "where", "value"),
    [
        pytest.param(API_2017, {"email": "a@x.com", "alertsToAdmins": "Yes"},
                     "notify_roles_enabled", "alertsToAdmins", "Yes", id="2017-alertsToAdmins"),
        pytest.param(API_2017, {"email": "a@x.com", "alertNotifications": "Enabled"},
                     "alert_notifications", "alertNotifications", "Enabled",
                     id="2017-alertNotifications"),
        pytest.param(API_2020, {"emails": "a@x.com", "alertNotifications": {"state": "on"}},
                     "alert_notifications", "alertNotifications.state", "on", id="2020-state"),
        pytest.param(API_2020, {"emails": "a@x.com",
                                "alertNotifications": {"state": "On", "minimalSeverity": "Info"}},
                     "alert_minimal_severity", "alertNotifications.minimalSeverity", "Info",
                     id="2020-severity"),
        pytest.param(API_2023, {"emails": "a@x.com",
                                "notificationsByRole": {"state": "Partial", "roles": ["Owner"]}},
                     "notify_roles_enabled", "notificationsByRole.state", "Partial",
                     id="2023-roles-state"),
        pytest.param(API_2023, {"emails": "a@x.com", "notificationsSources": [
                         {"sourceType": "Alert", "minimalSeverity": "Informational"}]},
                     "alert_minimal_severity", "notificationsSources[0].minimalSeverity",
                     "Informational", id="2023-severity"),
        pytest.param(API_2023, {"emails": "a@x.com", "notificationsSources": [
                         {"sourceType": "AttackPath", "minimalRiskLevel": "Severe"}]},
                     "attack_path_minimal_risk", "notificationsSources[0].minimalRiskLevel",
                     "Severe", id="2023-risk"),
        pytest.param(API_2023, {"emails": "a@x.com", "notificationsSources": [
                         {"sourceType": "Recommendation"}]},
                     "notifications_sources", "notificationsSources[0].sourceType",
                     "Recommendation", id="2023-source-type"),
    ],
)  # fmt: skip
def test_an_unknown_enum_value_is_kept_not_refused(
    api_version: str, properties: dict[str, Any], setting: str, where: str, value: str
) -> None:
    (contact,), _ = contacts_from_page(page(properties), api_version)
    assert contact.unknown == (UnknownValue(setting, f"value[0].properties.{where}", value),)
    assert contact.unknown_for(setting) == contact.unknown[0]
    assert contact.unknown_for("no_such_setting") is None
    assert contact.addresses == ("a@x.com",)  # the rest of the contact is read as usual


def test_unknown_roles_are_kept_as_roles() -> None:
    (contact,), _ = contacts_from_page(
        page({"emails": "a@x.com",
              "notificationsByRole": {"state": "On", "roles": ["Owner", "SecurityOfficer"]}}),
        API_2023,
    )  # fmt: skip
    assert contact.notify_roles == ("Owner", "SecurityOfficer")
    assert contact.unknown == ()


# --- Contact properties -----------------------------------------------------------------


def test_valid_and_invalid_addresses() -> None:
    contact = Contact(
        name="default", addresses=("soc@contoso.com", "admin@localhost", "a@@contoso.com")
    )
    assert contact.valid_addresses == ("soc@contoso.com",)
    invalid = contact.invalid_addresses
    assert [bad.address for bad in invalid] == ["admin@localhost", "a@@contoso.com"]
    assert all(bad.why.strip() for bad in invalid)


def test_no_addresses() -> None:
    contact = Contact(name="default")
    assert contact.valid_addresses == ()
    assert contact.invalid_addresses == ()


@pytest.mark.parametrize(
    ("enabled", "disabled"),
    [
        pytest.param(True, False, id="enabled"),
        pytest.param(None, False, id="no-isEnabled-setting"),
        pytest.param(False, True, id="isEnabled-false"),
    ],
)
def test_disabled_only_when_isEnabled_is_false(enabled: bool | None, disabled: bool) -> None:
    assert Contact(name="default", enabled=enabled).disabled is disabled
