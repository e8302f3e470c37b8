"""The ARM emulator as a component: raw HTTPS against it, compared with the REST spec examples."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from compliance.apiversions import API_2017, API_2020, API_2023, API_VERSIONS
from compliance.emulator import ArmEmulator, Fault, load_tenant
from conftest import TENANT_ID, subscription, tenant

EXAMPLES = Path(__file__).parent / "data" / "azure-rest-examples"
SUB = "20ff7fc3-e762-44dd-bd96-b71116dcdc23"
CONTACTS = f"/subscriptions/{SUB}/providers/Microsoft.Security/securityContacts"


def example(api_version: str, name: str) -> dict[str, Any]:
    path = EXAMPLES / api_version / "SecurityContacts" / name
    return json.loads(path.read_text(encoding="utf-8"))


def example_2023_properties() -> dict[str, Any]:
    """The stored (2023) properties of the 2023 GetSecurityContact example."""
    body = example(API_2023, "GetSecurityContact_example.json")["responses"]["200"]["body"]
    return body["properties"]


def call(
    arm: ArmEmulator,
    method: str,
    path: str,
    api_version: str | None = API_2023,
    token: str | None = "",
    **kwargs: Any,
) -> requests.Response:
    """One request; `token` "" means the emulator's own, None means no Authorization header."""
    headers = {} if token is None else {"Authorization": f"Bearer {token or arm.token}"}
    params = {} if api_version is None else {"api-version": api_version}
    url = path if path.startswith("https://") else arm.url + path
    return requests.request(
        method, url, params=params, headers=headers, verify=arm.ca_path, timeout=30, **kwargs
    )


def error_code(response: requests.Response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def one_sub(arm: ArmEmulator) -> ArmEmulator:
    """The emulator with one subscription holding the 2023 example contact as "default"."""
    arm.load(
        tenant(
            subscription(
                SUB,
                securityContacts=[{"name": "default", "properties": example_2023_properties()}],
            )
        )
    )
    return arm


# --- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["no-token", "wrong-token"])
@pytest.mark.parametrize("path", ["/subscriptions", CONTACTS])
def test_bad_bearer_token_is_401(one_sub: ArmEmulator, token: str | None, path: str) -> None:
    response = call(one_sub, "GET", path, token=token)
    assert response.status_code == 401
    assert error_code(response) == "InvalidAuthenticationToken"


# --- subscriptions -----------------------------------------------------------------------


def test_subscriptions_list_shape(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB, "Production", state="Disabled")))
    response = call(arm, "GET", "/subscriptions", "2022-12-01")
    assert response.status_code == 200
    (item,) = response.json()["value"]
    assert item["subscriptionId"] == SUB
    assert item["id"] == f"/subscriptions/{SUB}"
    assert item["displayName"] == "Production"
    assert item["state"] == "Disabled"
    assert item["tenantId"] == TENANT_ID
    assert "nextLink" not in response.json()


def test_subscriptions_list_pages(arm: ArmEmulator) -> None:
    ids = [f"{i}0000000-0000-0000-0000-000000000000" for i in range(5)]
    arm.load(tenant(*(subscription(i) for i in ids)))
    arm.subscriptions_page_size = 2
    seen: list[str] = []
    body = call(arm, "GET", "/subscriptions", "2016-06-01").json()
    pages = 1
    while "nextLink" in body:
        assert len(body["value"]) == 2
        seen += [s["subscriptionId"] for s in body["value"]]
        body = call(arm, "GET", body["nextLink"], api_version=None).json()
        pages += 1
    seen += [s["subscriptionId"] for s in body["value"]]
    assert pages == 3
    assert sorted(seen) == ids


def test_subscriptions_unknown_api_version_is_400(arm: ArmEmulator) -> None:
    response = call(arm, "GET", "/subscriptions", "1999-01-01")
    assert response.status_code == 400
    assert error_code(response) == "InvalidApiVersionParameter"


def test_unknown_subscription_is_404(arm: ArmEmulator) -> None:
    response = call(arm, "GET", CONTACTS)
    assert response.status_code == 404
    assert error_code(response) == "SubscriptionNotFound"


def test_load_demo_tenant() -> None:
    demo = load_tenant("demo")
    ids = [s.id.lower() for s in demo.subscriptions if not s.hidden]
    assert len(ids) == len(set(ids)) == 14  # the subscriptions list; one more is hidden
    assert [s.display_name for s in demo.subscriptions if s.hidden] == ["Contoso Payroll"]


# --- securityContacts: shapes per api-version --------------------------------------------


def test_get_2020_shape(one_sub: ArmEmulator) -> None:
    response = call(one_sub, "GET", f"{CONTACTS}/default", API_2020)
    assert response.status_code == 200
    props = response.json()["properties"]
    assert props["emails"] == "john@contoso.com;jane@contoso.com"
    assert props["alertNotifications"] == {"state": "On", "minimalSeverity": "Medium"}
    assert props["notificationsByRole"] == {"state": "On", "roles": ["Owner"]}
    assert "isEnabled" not in props
    assert "notificationsSources" not in props


def test_get_2017_shape(one_sub: ArmEmulator) -> None:
    response = call(one_sub, "GET", f"{CONTACTS}/default", API_2017)
    assert response.status_code == 200
    props = response.json()["properties"]
    assert props["email"] == "john@contoso.com;jane@contoso.com"
    assert props["alertNotifications"] == "On"
    assert props["alertsToAdmins"] == "On"
    assert "emails" not in props


def test_2017_shows_off_when_no_alert_source_and_no_owner(arm: ArmEmulator) -> None:
    props = {"emails": "soc@contoso.com", "isEnabled": True}
    arm.load(tenant(subscription(SUB, securityContacts=[{"name": "c", "properties": props}])))
    shown = call(arm, "GET", f"{CONTACTS}/c", API_2017).json()["properties"]
    assert shown["alertNotifications"] == "Off"
    assert shown["alertsToAdmins"] == "Off"


def test_list_2023_has_the_example_keys(one_sub: ArmEmulator) -> None:
    spec = example(API_2023, "GetSecurityContactsSubscription_example.json")
    expected = spec["responses"]["200"]["body"]
    response = call(one_sub, "GET", CONTACTS, API_2023)
    assert response.status_code == 200
    body = response.json()
    assert body.keys() == expected.keys()
    (contact,) = body["value"]
    assert contact.keys() == expected["value"][0].keys()
    assert contact["properties"].keys() == expected["value"][0]["properties"].keys()
    assert contact["type"] == "Microsoft.Security/securityContacts"
    assert contact["id"] == f"{CONTACTS}/default"


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_list_and_get_agree(one_sub: ArmEmulator, api_version: str) -> None:
    listed = call(one_sub, "GET", CONTACTS, api_version).json()
    if api_version != API_2020:  # real ARM answers a bare array at 2020-01-01-preview
        listed = listed["value"]
    got = call(one_sub, "GET", f"{CONTACTS}/default", api_version).json()
    assert listed == [got]


def test_get_missing_contact_is_404(one_sub: ArmEmulator) -> None:
    response = call(one_sub, "GET", f"{CONTACTS}/nobody")
    assert response.status_code == 404
    assert error_code(response) == "NotFound"


# --- securityContacts: PUT and DELETE with the spec's example request bodies -------------


CREATE_EXAMPLES = [
    pytest.param(API_2023, "CreateSecurityContact_example.json", id="2023"),
    pytest.param(API_2020, "CreateSecurityContact_example.json", id="2020"),
    pytest.param(API_2017, "CreateSecurityContact_full_example.json", id="2017-full"),
    pytest.param(API_2017, "CreateSecurityContact_min_example.json", id="2017-min"),
]


@pytest.mark.parametrize(("api_version", "file"), CREATE_EXAMPLES)
def test_put_get_delete(arm: ArmEmulator, api_version: str, file: str) -> None:
    params = example(api_version, file)["parameters"]
    body, name = params["securityContact"], params["securityContactName"]
    arm.load(tenant(subscription(SUB, securityContacts=[])))
    url = f"{CONTACTS}/{name}"

    assert call(arm, "PUT", url, api_version, json=body).status_code == 201
    assert call(arm, "PUT", url, api_version, json=body).status_code == 200

    got = call(arm, "GET", url, api_version)
    assert got.status_code == 200
    shown, sent = got.json()["properties"], body["properties"]
    address_key = "email" if api_version == API_2017 else "emails"
    assert shown[address_key] == sent[address_key]
    assert shown == sent  # the example round-trips losslessly at its own api-version

    assert call(arm, "DELETE", url, api_version).status_code == 200
    assert call(arm, "GET", url, api_version).status_code == 404
    assert call(arm, "DELETE", url, api_version).status_code == 204


def test_put_without_properties_is_400(one_sub: ArmEmulator) -> None:
    response = call(one_sub, "PUT", f"{CONTACTS}/x", json={"emails": "a@b.com"})
    assert response.status_code == 400
    assert error_code(response) == "InvalidRequestContent"


# --- securityContacts: paging ------------------------------------------------------------


@pytest.mark.parametrize("api_version", [API_2017, API_2023])
def test_contacts_paging(arm: ArmEmulator, api_version: str) -> None:
    contacts = [{"name": n, "properties": {"emails": f"{n}@contoso.com"}} for n in ("a", "b")]
    arm.load(tenant(subscription(SUB, securityContacts=contacts)))
    arm.contacts_page_size = 1

    first = call(arm, "GET", CONTACTS, api_version).json()
    assert [c["name"] for c in first["value"]] == ["a"]
    assert first["nextLink"].startswith(arm.url + CONTACTS)
    assert "$skipToken=" in first["nextLink"]
    assert f"api-version={api_version}" in first["nextLink"]

    second = call(arm, "GET", first["nextLink"], api_version=None).json()
    assert [c["name"] for c in second["value"]] == ["b"]
    assert "nextLink" not in second


def test_contacts_at_2020_are_a_bare_array_whatever_the_page_size(arm: ArmEmulator) -> None:
    contacts = [{"name": n, "properties": {"emails": f"{n}@contoso.com"}} for n in ("a", "b")]
    arm.load(tenant(subscription(SUB, securityContacts=contacts)))
    arm.contacts_page_size = 1
    body = call(arm, "GET", CONTACTS, API_2020).json()
    assert [c["name"] for c in body] == ["a", "b"]


def test_2020_alert_emails_off_have_an_empty_severity(arm: ArmEmulator) -> None:
    off = {"emails": "a@contoso.com", "isEnabled": True}
    arm.load(tenant(subscription(SUB, securityContacts=[{"name": "default", "properties": off}])))
    (contact,) = call(arm, "GET", CONTACTS, API_2020).json()
    assert contact["properties"]["alertNotifications"] == {"state": "Off", "minimalSeverity": ""}


@pytest.mark.parametrize(("api_version", "has_tenant"), [("2016-06-01", False),
                                                         ("2020-01-01", True),
                                                         ("2022-12-01", True)])  # fmt: skip
def test_subscriptions_tenant_id_only_from_2020(
    arm: ArmEmulator, api_version: str, has_tenant: bool
) -> None:
    arm.load(tenant(subscription(SUB)))
    (item,) = call(arm, "GET", "/subscriptions", api_version).json()["value"]
    assert ("tenantId" in item) is has_tenant


# --- faults ------------------------------------------------------------------------------


def test_fault_times_then_normal(one_sub: ArmEmulator) -> None:
    one_sub.fail(SUB, Fault(status=503, code="ServiceUnavailable", times=2))
    statuses = [call(one_sub, "GET", CONTACTS).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]


def test_faults_queue_in_order(one_sub: ArmEmulator) -> None:
    one_sub.fail(SUB, Fault(status=429, code="TooManyRequests", times=1))
    one_sub.fail(SUB, Fault(status=403, code="AuthorizationFailed", times=1))
    answers = [call(one_sub, "GET", CONTACTS) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 403, 200]
    assert error_code(answers[0]) == "TooManyRequests"
    assert error_code(answers[1]) == "AuthorizationFailed"


def test_fault_retry_after_header(one_sub: ArmEmulator) -> None:
    one_sub.fail(SUB, Fault(status=429, code="TooManyRequests", retry_after=7, times=1))
    response = call(one_sub, "GET", CONTACTS)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert "Retry-After" not in call(one_sub, "GET", CONTACTS).headers


def test_fault_body_is_verbatim(one_sub: ArmEmulator) -> None:
    one_sub.fail(SUB, Fault(status=200, body='{"value": [ not json', times=1))
    response = call(one_sub, "GET", CONTACTS)
    assert response.status_code == 200
    assert response.text == '{"value": [ not json'


def test_fault_latency(one_sub: ArmEmulator) -> None:
    one_sub.fail(SUB, Fault(status=500, latency=0.2, times=1))
    started = time.monotonic()
    assert call(one_sub, "GET", CONTACTS).status_code == 500
    assert time.monotonic() - started >= 0.2


def test_reject_api_versions(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB, rejectApiVersions=[API_2023])))
    rejected = call(arm, "GET", CONTACTS, API_2023)
    assert rejected.status_code == 400
    assert error_code(rejected) == "NoRegisteredProviderFound"
    message = rejected.json()["error"]["message"]
    assert f"API version '{API_2023}' for type 'securityContacts'" in message
    assert f"The supported api-versions are '{API_2017}, {API_2020}'" in message
    assert call(arm, "GET", CONTACTS, API_2020).status_code == 200
    assert call(arm, "GET", CONTACTS, API_2017).status_code == 200


def test_a_cloud_that_serves_only_older_versions(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB), servedApiVersions=[API_2017]))
    assert error_code(call(arm, "GET", CONTACTS, API_2023)) == "NoRegisteredProviderFound"
    assert error_code(call(arm, "GET", CONTACTS, API_2020)) == "NoRegisteredProviderFound"
    assert call(arm, "GET", CONTACTS, API_2017).status_code == 200


def test_contacts_unknown_api_version_is_400(one_sub: ArmEmulator) -> None:
    response = call(one_sub, "GET", CONTACTS, "2099-01-01")
    assert response.status_code == 400
    assert error_code(response) == "NoRegisteredProviderFound"


def test_subscriptions_unknown_api_version_is_invalid_api_version(one_sub: ArmEmulator) -> None:
    response = call(one_sub, "GET", "/subscriptions", "2099-01-01")
    assert response.status_code == 400
    assert error_code(response) == "InvalidApiVersionParameter"


def test_unregistered_defender_is_409_until_registered(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB, defenderRegistered=False)))
    response = call(arm, "GET", CONTACTS)
    assert response.status_code == 409
    assert error_code(response) == "MissingSubscriptionRegistration"

    register = call(arm, "POST", f"/subscriptions/{SUB}/providers/Microsoft.Security/register")
    assert register.status_code == 200
    assert register.json()["registrationState"] == "Registered"
    assert call(arm, "GET", CONTACTS).status_code == 200


# --- the request log ---------------------------------------------------------------------


def test_request_log(one_sub: ArmEmulator) -> None:
    call(one_sub, "GET", CONTACTS, API_2020)
    call(one_sub, "PUT", f"{CONTACTS}/x", API_2023, token=None, json={"properties": {}})
    first, second = one_sub.requests
    assert (first.method, first.path, first.api_version) == ("GET", CONTACTS, API_2020)
    assert first.query == {"api-version": API_2020}
    assert first.had_bearer_token is True
    assert (second.method, second.path, second.api_version) == ("PUT", f"{CONTACTS}/x", API_2023)
    assert second.had_bearer_token is False
    assert second.body == {"properties": {}}

    one_sub.clear()
    assert one_sub.requests == []


# --- latency -----------------------------------------------------------------------------


def test_latency_delays_answers(one_sub: ArmEmulator) -> None:
    one_sub.latency = 0.2
    started = time.monotonic()
    assert call(one_sub, "GET", "/subscriptions", "2022-12-01").status_code == 200
    assert time.monotonic() - started >= 0.2
