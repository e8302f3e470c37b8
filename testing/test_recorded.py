"""Real Azure, not the specification: ARM answers recorded by other public projects
(testing/data/recorded/, each with its provenance) give their expected outcome, control by
control, through the verdict functions and end to end through the whole suite."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from compliance.apiversions import API_2017, API_2020, API_2023, contacts_from_page
from compliance.arm import (
    API_VERSION_REFUSALS,
    fallback_api_version,
    subscriptions_from_page,
    supported_api_versions,
)
from compliance.contacts import SecurityContacts
from compliance.controls import BENCHMARK_ONLY, CATALOGUE
from compliance.emulator import ArmEmulator
from conftest import TENANT_ID, subscription, tenant

RECORDED = Path(__file__).parent / "data" / "recorded"
CONTACTS_SUFFIX = "/providers/Microsoft.Security/securityContacts"


def recordings(kind: str) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(RECORDED.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["kind"] == kind:
            found[path.stem] = data
    return found


CONTACT_RECORDINGS = recordings("securityContacts")


def list_answer(recording: dict[str, Any]) -> tuple[str, str]:
    """The api-version and body of the recorded list answer. A recording that holds only a
    GET of one contact is served as a one-contact list in its version's real list shape (a
    bare array at 2020-01-01-preview), the recorded bytes inside unchanged."""
    answers = recording["answers"]
    for answer in answers:
        if answer["path"].endswith(CONTACTS_SUFFIX):
            return answer["api_version"], answer["body"]
    (answer,) = answers
    version, body = answer["api_version"], answer["body"]
    return version, f"[{body}]" if version == API_2020 else f'{{"value": [{body}]}}'


def recorded_subscription(recording: dict[str, Any]) -> str:
    """The subscription the recorded requests asked about (as the recorder left it: a real
    GUID, 00000000-..., or a placeholder); the contacts' ids name the same one."""
    return str(recording["answers"][0]["path"].split("/")[2])


def served_for(recording: dict[str, Any], sub_id: str) -> tuple[str, str]:
    """The list answer as ARM would send it for `sub_id`: the recorded subscription in the
    contacts' ids replaced by `sub_id`, every other byte as recorded."""
    version, body = list_answer(recording)
    recorded = f"/subscriptions/{recorded_subscription(recording)}/"
    return version, body.replace(recorded, f"/subscriptions/{sub_id}/")


def test_the_corpus_covers_every_shape() -> None:
    versions = [list_answer(r)[0] for r in CONTACT_RECORDINGS.values()]
    assert {API_2017, API_2020, API_2023} <= set(versions)
    bodies = [list_answer(r)[1] for r in CONTACT_RECORDINGS.values()]
    assert any(b.lstrip().startswith("[") for b in bodies)  # the bare array
    assert any('"minimalSeverity": ""' in b or '"minimalSeverity":""' in b for b in bodies)
    for name, recording in CONTACT_RECORDINGS.items():
        source = recording["source"]
        assert source["repository"] and source["path"] and source["recorded"], name
        assert set(recording["expected"]) == {c.key for c in CATALOGUE}, name


@pytest.mark.parametrize("name", CONTACT_RECORDINGS)
def test_recorded_answer_gives_its_expected_verdicts(name: str) -> None:
    recording = CONTACT_RECORDINGS[name]
    version, body = list_answer(recording)
    # Real ids pass the subscription check, whatever their case and spelling (2017's
    # singular securityContact).
    asked = recorded_subscription(recording).upper()
    contacts, next_link = contacts_from_page(json.loads(body), version, asked)
    read = SecurityContacts("00000000-0000-0000-0000-000000000000", version, tuple(contacts))
    assert next_link is None
    for control in CATALOGUE:
        verdict = control.evaluate(read, BENCHMARK_ONLY)
        outcome = (
            "compliant"
            if verdict.compliant
            else "not_compliant"
            if verdict.verifiable
            else "not_verifiable"
        )
        assert outcome == recording["expected"][control.key], (control.key, verdict.reason)


def recorded_subscription_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"recorded/{name}"))


def test_every_recorded_answer_through_the_whole_suite(
    arm: ArmEmulator, audit: Any, pytester: pytest.Pytester, reading: str
) -> None:
    """One subscription per recording, each on a cloud that serves only the api-version it
    was recorded at: every case of every control has its expected outcome, read at that
    version after the refusals that led there."""
    entries, expected, versions = [], {}, {}
    for name, recording in CONTACT_RECORDINGS.items():
        sub_id = recorded_subscription_id(name)
        version, body = served_for(recording, sub_id)
        entries.append(
            subscription(
                sub_id,
                name,
                recordedAnswers=[{"api_version": version, "status": 200, "body": body}],
            )
        )
        versions[sub_id] = version
        expected.update({(sub_id, key): v for key, v in recording["expected"].items()})
    arm.load(tenant(*entries))

    audit("--azure-findings=findings.json").assert_outcomes(
        passed=sum(v == "compliant" for v in expected.values()),
        failed=sum(v == "not_compliant" for v in expected.values()),
    )

    findings = json.loads((pytester.path / "findings.json").read_text())["findings"]
    got = {(f["subscription"]["id"], f["control"]["key"]): f["verdict"] for f in findings}
    assert got == expected
    for f in findings:
        assert f["evidence"]["api_version"] == versions[f["subscription"]["id"]]
    for sub_id, version in versions.items():
        asked = [r.api_version for r in arm.requests if sub_id in r.path]
        assert asked[-1] == version
        assert len(asked) == len(set(asked)) <= 3  # each version at most once


def test_a_recorded_answer_for_another_subscription_is_no_evidence(
    arm: ArmEmulator, audit: Any, pytester: pytest.Pytester
) -> None:
    """The same real answer, as recorded: its contacts' ids name the recorder's subscription,
    not the one asked about, so every control is not verifiable and says which."""
    recording = CONTACT_RECORDINGS["azure-powershell-2020-bare-array"]
    version, body = list_answer(recording)
    sub_id = recorded_subscription_id("foreign")
    arm.load(
        tenant(
            subscription(
                sub_id, recordedAnswers=[{"api_version": version, "status": 200, "body": body}]
            )
        )
    )

    result = audit("--azure-findings=findings.json")

    result.assert_outcomes(errors=len(CATALOGUE))
    findings = json.loads((pytester.path / "findings.json").read_text())["findings"]
    named = recorded_subscription(recording)
    for f in findings:
        assert f["verdict"] == "not_verifiable"
        assert (
            f"the answer's contact id (value[0].id) names subscription {named}, not {sub_id}"
            in f["reason"]
        )


def test_fallback_reads_real_refusal_messages() -> None:
    (no_provider,) = recordings("error")["migaz-issue-246-error-noregisteredproviderfound"][
        "answers"
    ]
    error = json.loads(no_provider["body"])["error"]
    assert error["code"] in API_VERSION_REFUSALS
    versions = supported_api_versions(error["message"])
    assert versions is not None
    assert versions[0] == "2015-05-01-preview" and versions[-1] == "2019-07-01"
    assert fallback_api_version(error["message"], [API_2023]) is None  # none of ours

    (invalid,) = recordings("error")["apiops-issue-508-error-invalidapiversionparameter"]["answers"]
    error = json.loads(invalid["body"])["error"]
    assert error["code"] in API_VERSION_REFUSALS
    versions = supported_api_versions(error["message"])
    assert versions is not None and "2024-03-01" in versions and "2014-04" in versions


def subscriptions_body(name: str) -> str:
    (answer,) = recordings("subscriptions")[name]["answers"]
    return str(answer["body"])


def test_real_subscription_lists_name_the_tenant_only_from_2020() -> None:
    old, _ = subscriptions_from_page(
        json.loads(subscriptions_body("azure-sdk-for-net-subscriptions-2016-06-01"))
    )
    assert old and all(s.tenant_id is None for s in old)
    new, _ = subscriptions_from_page(
        json.loads(subscriptions_body("azure-sdk-for-net-subscriptions-2020-01-01"))
    )
    assert [s.tenant_id for s in new] == ["44ec3bd9-305f-48b9-a0dc-5d3ac5a736e3"]


def test_tenant_selection_on_a_real_subscription_list(arm: ArmEmulator, audit: Any) -> None:
    body = subscriptions_body("azure-sdk-for-net-subscriptions-2020-01-01")
    (recorded,) = json.loads(body)["value"]
    arm.load(tenant(subscription(recorded["subscriptionId"]), tenant_id=recorded["tenantId"]))
    arm.subscriptions_body = body
    selected = audit("--azure-tenant", recorded["tenantId"], "-m", "contact_email")
    selected.assert_outcomes(passed=1, deselected=3)
    other = audit("--azure-tenant", TENANT_ID, "-m", "contact_email")
    assert other.ret == pytest.ExitCode.USAGE_ERROR
    other.stderr.fnmatch_lines(["ERROR: no subscription left to audit: 1 visible*"])
