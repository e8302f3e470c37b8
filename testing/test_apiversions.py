"""The api-version table: every lookup refuses a version it does not know, and each version's
module says what its shape means, consistently (read, plan, emulate, capabilities)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
import requests

from compliance import apiversions, controls, remediation
from compliance.apiversions import (
    API_VERSIONS,
    SHAPES,
    Goal,
    UnknownApiVersion,
    contacts_from_page,
    normalize_contact,
    shape,
)
from compliance.arm import ApiVersionGate
from compliance.contacts import SecurityContacts
from compliance.emulator import ArmEmulator
from conftest import subscription, tenant

UNKNOWN = "2099-01-01-preview"
SUB = "20ff7fc3-e762-44dd-bd96-b71116dcdc23"
CONTACTS = f"/subscriptions/{SUB}/providers/Microsoft.Security/securityContacts"


def test_negotiation_order_is_the_table_newest_first() -> None:
    assert set(API_VERSIONS) == set(SHAPES)
    assert list(API_VERSIONS) == sorted(SHAPES, reverse=True)
    assert API_VERSIONS[0] == apiversions.API_2023


@pytest.mark.parametrize("version", sorted(SHAPES))
def test_each_version_is_the_module_named_after_it(version: str) -> None:
    module = importlib.import_module(f"compliance.apiversions.v{version.replace('-', '_')}")
    assert module is SHAPES[version] is shape(version)
    assert module.version == version


# --- an unknown version is refused by every table ----------------------------------------------

TABLES: dict[str, Callable[[str], Any]] = {
    "shape": shape,
    "read: parse one contact": lambda v: normalize_contact({"name": "default"}, v),
    "read: a list page, even an empty one": lambda v: contacts_from_page({"value": []}, v),
    "read: a bare array page": lambda v: contacts_from_page([], v),
    "plan": lambda v: remediation.plan([], v, Goal(emails=("soc@contoso.com",), owner=True)),
    "capability: attack paths in the goal": lambda v: controls.goal(controls.BENCHMARK_ONLY, v),
    "capability: attack paths in the verdict": lambda v: controls.evaluate_attack_path(
        SecurityContacts(SUB, v, ())
    ),
    "negotiation: where a run starts": ApiVersionGate,
}


@pytest.mark.parametrize("lookup", TABLES.values(), ids=TABLES.keys())
def test_every_table_refuses_an_unknown_version(lookup: Callable[[str], Any]) -> None:
    with pytest.raises(UnknownApiVersion, match=f"'{UNKNOWN}'.*knows 2023-12-01-preview"):
        lookup(UNKNOWN)


@pytest.mark.parametrize(
    "version",
    ["", "2023-12-01", "2023-12-01-PREVIEW", " 2023-12-01-preview", "2020-01-01", None, ["x"]],
)
def test_near_misses_are_unknown_too(version: Any) -> None:
    with pytest.raises(UnknownApiVersion) as refused:
        shape(version)
    assert isinstance(refused.value, ValueError)  # callers that refuse bad values catch it


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", CONTACTS, None),  # render, and the list's shape
        ("GET", f"{CONTACTS}/default", None),  # render
        ("PUT", f"{CONTACTS}/default", {"properties": {"emails": "soc@contoso.com"}}),  # store
    ],
    ids=["list", "get", "put"],
)
def test_the_emulator_refuses_to_emulate_an_unknown_version(
    arm: ArmEmulator, method: str, path: str, body: Any
) -> None:
    """A tenant may say its cloud serves a version this suite does not know (a newer cloud
    does), but the emulator cannot show a contact in a shape it does not know."""
    arm.load(tenant(subscription(SUB), servedApiVersions=[UNKNOWN]))
    answer = call(arm, method, path, UNKNOWN, body)
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "EmulatorError"
    with pytest.raises(UnknownApiVersion):
        arm.check()
    arm.clear()


# --- each known version round-trips through the emulator unchanged ---------------------------

BODIES = [
    pytest.param(
        apiversions.API_2023,
        {
            "notificationsSources": [
                {"sourceType": "AttackPath", "minimalRiskLevel": "Critical"},
                {"sourceType": "Alert", "minimalSeverity": "Medium"},
            ],
            "notificationsByRole": {"state": "Off", "roles": ["Contributor"]},
            "emails": "soc@contoso.com;cert@contoso.com",
            "isEnabled": True,
            "phone": "+1-555-0100",
        },
        id="2023",
    ),
    pytest.param(
        apiversions.API_2023,
        {"emails": "soc@contoso.com", "isEnabled": False, "notificationsSources": []},
        id="2023-disabled",
    ),
    pytest.param(
        apiversions.API_2020,
        {
            "emails": "soc@contoso.com;cert@contoso.com",
            "phone": "+1-555-0100",
            "alertNotifications": {"state": "On", "minimalSeverity": "Low"},
            "notificationsByRole": {"state": "On", "roles": ["Owner"]},
        },
        id="2020",
    ),
    pytest.param(
        apiversions.API_2020,
        {
            "emails": "soc@contoso.com",
            "alertNotifications": {"state": "Off", "minimalSeverity": ""},
        },
        id="2020-alerts-off",
    ),
    pytest.param(
        apiversions.API_2017,
        {
            "email": "soc@contoso.com",
            "phone": "+1-555-0100",
            "alertNotifications": "On",
            "alertsToAdmins": "On",
        },
        id="2017",
    ),
    pytest.param(
        apiversions.API_2017,
        {"email": "soc@contoso.com", "alertNotifications": "Off", "alertsToAdmins": "Off"},
        id="2017-off",
    ),
]


def test_every_version_has_a_round_trip_case() -> None:
    assert {p.values[0] for p in BODIES} == set(SHAPES)


@pytest.mark.parametrize(("version", "properties"), BODIES)
def test_store_render_parse_round_trips(version: str, properties: dict[str, Any]) -> None:
    the = shape(version)
    shown = the.render(the.store(properties))
    assert shown == properties
    item = {"name": "default", "properties": properties}
    assert normalize_contact({**item, "properties": shown}, version) == normalize_contact(
        item, version
    )


@pytest.mark.parametrize(("version", "properties"), BODIES)
def test_round_trip_through_the_emulator(
    arm: ArmEmulator, version: str, properties: dict[str, Any]
) -> None:
    arm.load(tenant(subscription(SUB, securityContacts=[])))
    name = "default1" if not shape(version).single_contact else "default"
    assert call(arm, "PUT", f"{CONTACTS}/{name}", version, {"properties": properties}).ok

    got = call(arm, "GET", f"{CONTACTS}/{name}", version).json()
    assert got["properties"] == properties
    listed = call(arm, "GET", CONTACTS, version).json()
    assert isinstance(listed, list) is shape(version).bare_list  # as real ARM answers it
    (contact,), next_link = contacts_from_page(listed, version, SUB)
    assert next_link is None
    assert contact == normalize_contact({"name": name, "properties": properties}, version)


# --- the capability flags say what the version's read and plan do ----------------------------


@pytest.mark.parametrize("version", sorted(SHAPES))
def test_capabilities_match_what_the_module_plans_and_reads(version: str) -> None:
    the = shape(version)
    goal = Goal(
        emails=("soc@contoso.com", "cert@contoso.com"),
        owner=True,
        alert_severity="High",
        attack_path_risk="High",
    )
    writes = the.plan([], goal)
    if the.single_contact:
        assert [w.name for w in writes] == ["default"]
    else:  # one contact per address, named as the portal names them
        assert [w.name for w in writes] == ["default1", "default2"]
    planned = [the.parse(w.name, w.after, "planned") for w in writes]
    assert {a for c in planned for a in c.addresses} == set(goal.emails)
    assert any(c.attack_path_minimal_risk == "High" for c in planned) is the.attack_paths


def call(
    arm: ArmEmulator, method: str, path: str, version: str, body: Any = None
) -> requests.Response:
    return requests.request(
        method,
        arm.url + path,
        params={"api-version": version},
        headers={"Authorization": f"Bearer {arm.token}"},
        json=body,
        verify=arm.ca_path,
        timeout=30,
    )
