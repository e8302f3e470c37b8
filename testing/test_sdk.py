"""The Azure SDK packages the suite reads with (compliance.arm.sdk), on answers real ARM sent
(testing/data/recorded/): what they read right, what they lose where the suite reads for
itself (each such test fails the day the SDK reads it, saying which workaround can go), that
msrest's coercions never reach a verdict, and that every request of a run goes through the
suite's one pipeline."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import DeserializationError
from test_recorded import CONTACT_RECORDINGS, list_answer, recordings, served_for

from compliance.apiversions import API_2017, API_2020, API_2023, contacts_from_page
from compliance.arm import CLOUDS, ArmReader, subscriptions_from_page
from compliance.arm.pipeline import USER_AGENT
from compliance.arm.sdk import ITEM_MODELS, TYPED_LIST, sdk_contact, security_models
from compliance.contacts import Unverifiable
from compliance.emulator import COMPLIANT_CONTACT, ArmEmulator, Fault
from conftest import CHECKS, subscription, tenant

SUB = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"


@pytest.fixture
def reader(arm: ArmEmulator) -> Iterator[ArmReader]:
    reader = ArmReader(arm.credential(), CLOUDS["AzureCloud"], arm.url, arm.ca_path)
    yield reader
    reader.close()


@pytest.fixture
def user_agents(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The User-Agent of every request the emulator is sent from now on."""
    seen: list[str] = []
    handle = ArmEmulator.handle

    def recording(emulator: ArmEmulator, method: str, target: str, headers: Any, body: bytes):
        seen.append(headers.get("User-Agent", ""))
        return handle(emulator, method, target, headers, body)

    monkeypatch.setattr(ArmEmulator, "handle", recording)
    return seen


def at(version: str) -> dict[str, dict[str, Any]]:
    """The recorded securityContacts answers at `version`, by name."""
    return {n: r for n, r in CONTACT_RECORDINGS.items() if list_answer(r)[0] == version}


def serve(arm: ArmEmulator, version: str, body: str) -> None:
    """SUB answers its securityContacts list with `body` at `version`, refusing the others
    as a cloud without them does."""
    arm.load(
        tenant(
            subscription(
                SUB, recordedAnswers=[{"api_version": version, "status": 200, "body": body}]
            )
        )
    )


def suite_reading(recording: dict[str, Any]) -> list[Any]:
    version, body = served_for(recording, SUB)
    return contacts_from_page(json.loads(body), version, SUB)[0]


# --- 2017-08-01-preview: the typed list -------------------------------------------------------


@pytest.mark.parametrize("name", at(API_2017))
def test_the_typed_2017_list_reads_every_recorded_2017_answer(
    arm: ArmEmulator, reader: ArmReader, user_agents: list[str], name: str
) -> None:
    recording = CONTACT_RECORDINGS[name]
    version, body = served_for(recording, SUB)
    assert version == TYPED_LIST
    serve(arm, version, body)

    typed = list(reader.clients.security_center(SUB, API_2017).security_contacts.list())
    read = reader.read_security_contacts(SUB)

    expected = suite_reading(recording)
    assert [m.email for m in typed] == [c.addresses[0] if c.addresses else None for c in expected]
    assert read.api_version == API_2017 and list(read.contacts) == expected
    assert [c.raw for c in read.contacts] == json.loads(body)["value"]
    assert user_agents and all(USER_AGENT in agent for agent in user_agents)
    assert not any("mgmt-security" in agent for agent in user_agents)


def test_the_typed_2017_list_follows_every_page_within_the_bounds(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    contacts = [
        {"name": f"default{n}", "properties": {"emails": f"{n}@contoso.com"}} for n in (1, 2, 3)
    ]
    arm.load(tenant(subscription(SUB, securityContacts=contacts), servedApiVersions=[API_2017]))
    arm.contacts_page_size = 1
    read = reader.read_security_contacts(SUB)
    assert [c.addresses for c in read.contacts] == [(f"{n}@contoso.com",) for n in (1, 2, 3)]
    assert [r.path.rsplit("?", 1)[1] for r in read.responses[1:]] == [
        f"api-version={API_2017}",
        f"api-version={API_2017}&$skipToken=1",
        f"api-version={API_2017}&$skipToken=2",
    ]


def test_defender_never_set_up_is_not_registered_by_the_typed_list(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    arm.load(tenant(subscription(SUB, defenderRegistered=False), servedApiVersions=[API_2017]))
    read = reader.read_security_contacts(SUB)
    assert (read.api_version, read.defender_registered) == (API_2017, False)
    assert {r.method for r in arm.requests} == {"GET"}
    assert not any(r.path.lower().endswith("/register") for r in arm.requests)


OTHER = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_CONTACT = f"/subscriptions/{OTHER}/providers/Microsoft.Security/securityContacts/default1"


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ([Fault(200, body='{"value": "nope"}')],
         r"\(api-version 2017-08-01-preview\) is not the JSON Azure documents: response body "
         r"'value' is str, expected list"),
        ([Fault(200, body="<html>Sign in</html>", content_type="text/html")],
         r"is not the JSON Azure documents: the body is not JSON"),
        ([Fault(200, body=json.dumps({"value": [{"id": OTHER_CONTACT, "properties": {}}]}))],
         rf"names subscription {OTHER}, not"),
        ([Fault(200, body=json.dumps({"value": [], "nextLink": "https://evil.example/x"}))],
         r"has a nextLink that leaves the endpoint"),
        ([Fault(200, body=json.dumps({"value": [], "nextLink": "{next}"}), times=1),
          Fault(403, "AuthorizationFailed")],
         r"could not read the next page of security contacts: HTTP 403 AuthorizationFailed"),
        ([Fault(403, "AuthorizationFailed")],
         r"could not read security contacts: HTTP 403 AuthorizationFailed"),
    ],
    ids=["malformed", "not-json", "another-subscription", "next-link-elsewhere", "next-page-403",
         "403"],
)  # fmt: skip
def test_the_typed_2017_list_refuses_what_a_raw_read_refuses(
    arm: ArmEmulator, reader: ArmReader, faults: list[Fault], expected: str
) -> None:
    arm.load(tenant(subscription(SUB), servedApiVersions=[API_2017]))
    reader.contacts.versions.start = API_2017  # as a run that learned it
    for fault in faults:
        body = fault.body and fault.body.replace(
            "{next}", f"{arm.url}/subscriptions/{SUB}/providers/Microsoft.Security/"
            f"securityContacts?api-version={API_2017}&$skipToken=1",
        )  # fmt: skip
        arm.fail(SUB, dataclasses.replace(fault, body=body))
    with pytest.raises(Unverifiable, match=expected) as refused:
        reader.read_security_contacts(SUB)
    assert [r.api_version for r in arm.requests] == [API_2017] * len(faults)
    assert len(refused.value.responses) == len(faults)  # each answer kept as evidence


# --- 2020-01-01-preview: each item by its model (#35996) --------------------------------------


@pytest.mark.parametrize("name", at(API_2020))
def test_2020_bare_arrays_defeat_the_typed_list_and_each_item_reads_right(
    arm: ArmEmulator, reader: ArmReader, name: str
) -> None:
    recording = CONTACT_RECORDINGS[name]
    version, body = served_for(recording, SUB)
    serve(arm, version, body)
    items = json.loads(body)
    assert isinstance(items, list)  # real ARM's shape at 2020-01-01-preview

    with pytest.raises(DeserializationError):  # azure-sdk-for-python #35996
        list(reader.clients.security_center(SUB, API_2020).security_contacts.list())
    # If this fails, azure-mgmt-security reads real ARM's 2020 list: read it with the typed
    # list (compliance.arm.sdk.TYPED_LIST) and drop ITEM_MODELS.

    expected = suite_reading(recording)
    model = security_models(ITEM_MODELS).SecurityContact
    for i, (item, ours) in enumerate(zip(items, expected, strict=True)):
        assert sdk_contact(model.deserialize(item), ours, API_2020, f"value[{i}]") == ours
    read = reader.read_security_contacts(SUB)
    assert read.api_version == API_2020 and list(read.contacts) == expected


# --- 2023-12-01-preview: the suite's own parsing (#41591) -------------------------------------


def test_the_sdk_drops_what_2023_adds_so_the_suite_reads_it_itself(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    recording = CONTACT_RECORDINGS["azure-sdk-assets-js-2023-list"]
    version, body = served_for(recording, SUB)
    serve(arm, version, body)
    (item,) = json.loads(body)["value"]
    assert item["properties"]["isEnabled"] is True and item["properties"]["notificationsSources"]

    with pytest.raises(ValueError, match="not available"):
        security_models(API_2023)  # 7.0.0 has no 2023-12-01-preview models
    forced = reader.clients.security_center(SUB, API_2020).security_contacts.list(
        api_version=API_2023
    )
    (model,) = list(forced)
    read = model.as_dict(keep_readonly=True)
    # azure-sdk-for-python #41591: isEnabled and notificationsSources are gone, without a
    # word. If this fails, the SDK reads them: read 2023 through it and drop the suite's
    # own parsing (compliance.arm.sdk.read_page).
    assert read["emails"] == item["properties"]["emails"]
    assert not {"is_enabled", "isEnabled", "notifications_sources"} & set(read)
    kept = json.dumps(model.additional_properties)  # what it keeps of unknown keys
    assert "isEnabled" not in kept and "notificationsSources" not in kept

    (contact,) = reader.read_security_contacts(SUB).contacts
    assert contact.enabled is True
    assert (contact.alert_notifications, contact.alert_minimal_severity) == (True, "Low")


# --- the subscriptions list ---------------------------------------------------------------------


@pytest.mark.parametrize("name", recordings("subscriptions"))
def test_the_subscription_client_reads_every_recorded_list(
    arm: ArmEmulator, reader: ArmReader, user_agents: list[str], name: str
) -> None:
    (answer,) = recordings("subscriptions")[name]["answers"]
    arm.subscriptions_body = answer["body"]

    models = list(reader.clients.subscription_client().subscriptions.list(api_version="2022-12-01"))
    found = reader.list_subscriptions()

    entries = json.loads(answer["body"])["value"]
    assert [m.additional_properties.get("tenantId") for m in models] == [
        e.get("tenantId") for e in entries
    ]
    expected, _ = subscriptions_from_page(json.loads(answer["body"]))
    assert found == sorted(expected, key=lambda s: s.id.lower())
    assert all(USER_AGENT in agent for agent in user_agents)


def test_managing_tenants_arrive_from_the_models_additional_properties(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    (answer,) = recordings("subscriptions")["azure-sdk-for-python-subscriptions-2019-11-01"][
        "answers"
    ]
    arm.subscriptions_body = answer["body"]
    (entry,) = json.loads(answer["body"])["value"]
    (found,) = reader.list_subscriptions()
    assert found.managed_by_tenants == tuple(m["tenantId"] for m in entry["managedByTenants"])
    assert found.tenant_id == entry["tenantId"] != found.managed_by_tenants[0]


# --- msrest's coercions never decide --------------------------------------------------------


def test_a_subscription_value_msrest_makes_text_of_is_read_as_the_suite_reads_it(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    entry = {"subscriptionId": SUB, "displayName": "Odd", "state": ["Enabled"], "tenantId": 7}
    arm.subscriptions_body = json.dumps({"value": [entry]})
    (model,) = list(
        reader.clients.subscription_client().subscriptions.list(api_version="2022-12-01")
    )
    assert model.state == "['Enabled']"  # what msrest makes of it
    (found,) = reader.list_subscriptions()
    assert (found.state, found.tenant_id) == ("Unknown", None)


def test_a_contact_value_msrest_makes_text_of_is_not_verifiable(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    item = {"name": "default", "properties": {"emails": ["soc@contoso.com"]}}
    serve(arm, API_2020, json.dumps([item]))
    assert security_models(API_2020).SecurityContact.deserialize(item).emails == (
        "['soc@contoso.com']"
    )
    with pytest.raises(Unverifiable, match=r"value\[0\]\.properties\.emails is list, expected str"):
        reader.read_security_contacts(SUB)


def test_a_contact_the_sdk_reads_otherwise_is_not_judged_on_either_reading() -> None:
    said = {"name": "default", "properties": {"emails": "soc@contoso.com"}}
    read_by_sdk = {"name": "default", "properties": {"emails": "other@contoso.com"}}
    (ours,), _ = contacts_from_page([said], API_2020)
    model = security_models(API_2020).SecurityContact.deserialize(read_by_sdk)
    with pytest.raises(Unverifiable, match=r"reads value\[0\] otherwise than the answer says"):
        sdk_contact(model, ours, API_2020, "value[0]")


# --- one pipeline: GET only, the suite's policies, for every client ----------------------------


def test_a_write_through_an_sdk_client_is_refused_by_the_suites_pipeline(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    arm.load(tenant(subscription(SUB)))
    models = security_models(API_2020)
    contact = models.SecurityContact(emails="attacker@evil.example")
    with pytest.raises(RuntimeError, match="the audit is read-only; refused PUT"):
        reader.clients.security_center(SUB, API_2020).security_contacts.create("default", contact)
    assert arm.requests == []
    assert arm.subscription(SUB).contacts["default"]["emails"] == "soc@contoso.com"


def test_importing_the_plugin_imports_neither_sdk_package() -> None:
    """`pytest --help` stays as quick as before: the SDK's clients are imported when a reader
    first needs them."""
    probe = (
        "import sys, compliance.plugin, compliance.arm; "
        "print([m for m in sys.modules if m.startswith(('azure.mgmt.security', "
        "'azure.mgmt.subscription'))])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        cwd=CHECKS.parent.parent,
    )  # fmt: skip
    assert done.stdout.strip() == "[]"


RECORDER = """
import json
import threading

import compliance.emulator.server as server

_lock = threading.Lock()
_handle = server.ArmEmulator.handle


def _recording(emulator, method, target, headers, body):
    answer = _handle(emulator, method, target, headers, body)
    seen = {"method": method, "target": target, "status": answer.status,
            "user_agent": headers.get("User-Agent", "")}
    with _lock, open("emulator-requests.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(seen) + "\\n")
    return answer


server.ArmEmulator.handle = _recording
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_every_request_of_a_demo_run_is_a_get_through_the_suites_pipeline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """Every request the demo's emulator is sent, whatever client sent it: a GET with the
    suite's user agent, and each one accounted for by an answer the evidence holds (or a 429
    the pipeline waited out and asked again)."""
    monkeypatch.setenv("PYTHONPATH", str(CHECKS.parent.parent))
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    pytester.makeconftest(RECORDER)

    result = pytester.runpytest_subprocess(
        "-p", "compliance.plugin", "-p", "no:cacheprovider", "--azure-demo",
        "--azure-evidence=ev.json", *xdist,
    )  # fmt: skip

    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the demo's outcomes, as documented
    log = pytester.path / "emulator-requests.jsonl"
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["method"] for r in seen} == {"GET"}
    assert all(r["user_agent"].startswith(f"azsdk-python-{USER_AGENT} ") for r in seen), {
        r["user_agent"] for r in seen
    }
    evidence = json.loads((pytester.path / "ev.json").read_text())
    answers = [a for read in evidence["contacts"].values() for a in read["responses"]]
    lists = [r for r in seen if r["target"].startswith("/subscriptions?")]
    retried = [r for r in seen if r["status"] == 429]
    assert len(lists) == 1 and retried
    assert len(seen) == len(lists) + len(answers) + len(retried)
    assert sorted(r["target"] for r in seen if r not in lists and r["status"] != 429) == sorted(
        a["path"] for a in answers
    )


def test_a_replay_reads_2017_through_the_same_sdk_operation_offline(
    pytester: pytest.Pytester, arm: ArmEmulator, fake_az: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import compliance.plugin

    contacts = [
        {
            "name": f"default{n}",
            "properties": {**COMPLIANT_CONTACT, "emails": f"soc{n}@contoso.com"},
        }
        for n in (1, 2)
    ]
    arm.load(tenant(subscription(SUB, securityContacts=contacts), servedApiVersions=[API_2017]))
    arm.contacts_page_size = 1
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest("-p", "no:cacheprovider", *args, plugins=[compliance.plugin])

    live = run("--azure-auth=cli", f"--azure-arm-endpoint={arm.url}", "--azure-evidence=ev.json")
    live.assert_outcomes(passed=3, failed=1)  # 2017 knows no attack path notifications
    bundle = json.loads((pytester.path / "ev.json").read_text())
    paths = [r["path"] for r in bundle["contacts"][SUB]["responses"]]
    assert paths[-1].endswith(f"api-version={API_2017}&$skipToken=1")
    arm.clear()
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    replay = run("--azure-replay=ev.json")
    assert replay.parseoutcomes() == live.parseoutcomes()
    assert arm.requests == []
