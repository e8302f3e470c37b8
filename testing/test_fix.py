"""The fix command: pure planning on hand-built JSON, and `python -m compliance fix` against
the ARM emulator through the real SDK and AzureCliCredential (fake `az`), only 127.0.0.1."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.rest import HttpRequest

from compliance.__main__ import main
from compliance.apiversions import API_2017, API_2020, API_2023, normalize_contact
from compliance.arm import CLOUDS, ArmWriter, WriteFailed
from compliance.backup import BACKUP_KIND, SavedContact, backup_document, parse_backup
from compliance.emulator import ArmEmulator, Fault
from compliance.fix import Change, differences, restore_change
from compliance.model import Subscription
from compliance.remediation import Goal, plan
from conftest import ROOT, subscription, tenant

OK = "00000000-0000-4000-8000-000000000001"
EMPTY = "00000000-0000-4000-8000-000000000002"
INVALID = "00000000-0000-4000-8000-000000000003"
DISABLED = "00000000-0000-4000-8000-000000000004"
NONE = "00000000-0000-4000-8000-000000000005"
LEGACY = "00000000-0000-4000-8000-000000000006"
UNREGISTERED = "00000000-0000-4000-8000-000000000007"
GONE = "00000000-0000-4000-8000-000000000008"
FAILING = {EMPTY, INVALID, DISABLED, NONE, LEGACY}

SOC = "soc@contoso.com"

EMPTY_PROPS = {
    "emails": "",
    "phone": "(214)275-4038",
    "isEnabled": True,
    "notificationsByRole": {"state": "On", "roles": ["Owner", "Contributor"]},
    "notificationsSources": [
        {"sourceType": "Alert", "minimalSeverity": "Low"},
        {"sourceType": "AttackPath", "minimalRiskLevel": "Medium"},
    ],
}
INVALID_PROPS = {
    "emails": "soc_at_fabrikam.com; admin@localhost",
    "isEnabled": True,
    "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "High"}],
}
DISABLED_PROPS = {
    "emails": "ops@northwind.com",
    "isEnabled": False,
    "notificationsByRole": {"state": "On", "roles": ["Owner"]},
    "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "High"}],
}
# Stored (2023) properties that a 2020-only cloud shows and takes back unchanged.
LEGACY_PROPS = {
    "emails": "",
    "phone": "+1 555 0100",
    "isEnabled": True,
    "notificationsByRole": {"state": "On", "roles": ["Owner", "ServiceAdmin"]},
    "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "Medium"}],
}


def contact(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "default", "properties": props}]


def load(arm: ArmEmulator) -> None:
    arm.load(
        tenant(
            subscription(OK, "Compliant"),
            subscription(EMPTY, "Empty", securityContacts=contact(EMPTY_PROPS)),
            subscription(INVALID, "Invalid", securityContacts=contact(INVALID_PROPS)),
            subscription(DISABLED, "Disabled contact", securityContacts=contact(DISABLED_PROPS)),
            subscription(NONE, "No contact", securityContacts=[]),
            subscription(
                LEGACY,
                "Legacy cloud",
                securityContacts=contact(LEGACY_PROPS),
                rejectApiVersions=[API_2023],
            ),
            subscription(GONE, "Deleted", state="Deleted", securityContacts=[]),
        )
    )


def state(arm: ArmEmulator) -> dict[str, dict[str, Any]]:
    """Every subscription's stored contacts (a deep copy)."""
    ids = [OK, EMPTY, INVALID, DISABLED, NONE, LEGACY, GONE]
    return {i: copy.deepcopy(arm.subscription(i).contacts) for i in ids}


def writes(arm: ArmEmulator) -> list[tuple[str, str, str | None]]:
    """(method, subscription id, api-version) of every request but a GET."""
    return [
        (r.method, r.path.split("/")[2], r.api_version) for r in arm.requests if r.method != "GET"
    ]


def put_bodies(arm: ArmEmulator) -> dict[str, Any]:
    return {r.path.split("/")[2]: r.body for r in arm.requests if r.method == "PUT"}


@pytest.fixture
def fix(
    arm: ArmEmulator,
    fake_az: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """Run `python -m compliance fix` in-process as a user with `az login` would, in a fresh
    working directory (where default backups land); returns (exit code, stdout, stderr)."""
    load(arm)
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["fix", "--azure-auth", "cli", "--azure-arm-endpoint", arm.url, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def backups(directory: Path) -> list[Path]:
    return sorted(directory.glob("contacts-backup-*.json"))


# --- planning: pure functions on raw JSON -----------------------------------------------


def planned_properties(
    current: dict[str, Any] | None, api_version: str, emails: list[str]
) -> dict[str, Any]:
    """What the fix PUTs as the `default` contact, from its properties as read."""
    contacts = [] if current is None else contact(current)
    read = [normalize_contact(c, api_version) for c in contacts]
    (write,) = plan(read, api_version, Goal(emails=tuple(emails)))
    assert write.name == "default"
    return write.after


def test_new_contact_holds_just_the_addresses() -> None:
    assert planned_properties(None, API_2023, [SOC, "b@x.com"]) == {
        "emails": f"{SOC};b@x.com",
        "isEnabled": True,
    }
    assert planned_properties(None, API_2020, [SOC]) == {"emails": SOC}


def test_existing_contact_keeps_everything_and_gains_addresses() -> None:
    current = copy.deepcopy(EMPTY_PROPS) | {"futureField": {"x": 1}}
    planned = planned_properties(current, API_2023, [SOC])
    assert planned == current | {"emails": SOC}
    assert current["emails"] == ""  # the input is not modified


def test_invalid_addresses_are_kept() -> None:
    planned = planned_properties(INVALID_PROPS, API_2023, [SOC])
    assert planned["emails"] == f"soc_at_fabrikam.com;admin@localhost;{SOC}"


def test_addresses_already_there_are_not_added_twice() -> None:
    current = {"emails": "SOC@contoso.com", "isEnabled": False}
    planned = planned_properties(current, API_2023, [SOC, "soc@CONTOSO.com", "b@x.com"])
    assert planned == {"emails": "SOC@contoso.com;b@x.com", "isEnabled": True}
    # nothing to add: the emails value is left exactly as it was
    spaced = {"emails": " soc@contoso.com , ", "isEnabled": False}
    assert planned_properties(spaced, API_2023, [SOC])["emails"] == " soc@contoso.com , "


def test_disabled_contact_is_switched_on_only_at_2023() -> None:
    assert planned_properties(DISABLED_PROPS, API_2023, [SOC])["isEnabled"] is True
    legacy = {"emails": "", "alertNotifications": {"state": "On", "minimalSeverity": "Low"}}
    planned = planned_properties(legacy, API_2020, [SOC])
    assert planned == legacy | {"emails": SOC}
    assert "isEnabled" not in planned


def test_at_2017_each_address_is_a_contact_of_its_own() -> None:
    existing = normalize_contact(
        {"name": "default1", "properties": {"email": "bad_at_x", "alertsToAdmins": "On"}},
        API_2017,
    )
    writes = plan([existing], API_2017, Goal(emails=(SOC, "bad_at_x", "b@x.com")))
    assert [(w.name, w.before, w.after) for w in writes] == [
        ("default2", None, {"email": SOC, "alertNotifications": "On", "alertsToAdmins": "On"}),
        ("default3", None,
         {"email": "b@x.com", "alertNotifications": "On", "alertsToAdmins": "On"}),
    ]  # fmt: skip
    assert existing.raw["properties"] == {"email": "bad_at_x", "alertsToAdmins": "On"}


def test_differences_show_old_and_new_values_as_json() -> None:
    assert differences(DISABLED_PROPS, DISABLED_PROPS) == []
    new = planned_properties(DISABLED_PROPS, API_2023, [SOC])
    assert differences(DISABLED_PROPS, new) == [
        ("emails", '"ops@northwind.com"', f'"ops@northwind.com;{SOC}"'),
        ("isEnabled", "false", "true"),
    ]
    assert differences(None, {"emails": SOC}) == [("emails", "(no contact)", f'"{SOC}"')]
    assert differences({"phone": "1"}, {}) == [("phone", '"1"', "(none)")]


SUB = Subscription(EMPTY, "Empty", "Enabled")


def raw(props: dict[str, Any]) -> dict[str, Any]:
    return {"id": "/x", "name": "default", "properties": copy.deepcopy(props)}


def test_restore_change() -> None:
    saved = SavedContact(EMPTY, API_2023, raw(EMPTY_PROPS))
    assert restore_change(SUB, saved, raw(EMPTY_PROPS)) is None
    changed = raw(EMPTY_PROPS | {"emails": SOC})
    change = restore_change(SUB, saved, changed)
    assert change == Change(SUB, API_2023, changed, EMPTY_PROPS)
    assert change.action == "update"
    recreate = restore_change(SUB, saved, None)
    assert recreate is not None and recreate.action == "create"
    created = SavedContact(EMPTY, API_2023, None)
    assert restore_change(SUB, created, None) is None
    delete = restore_change(SUB, created, changed)
    assert delete == Change(SUB, API_2023, changed, None)
    assert delete.action == "delete"
    assert "did not exist before" in "\n".join(delete.describe())


def test_backup_document_round_trips() -> None:
    saved = (
        SavedContact(EMPTY, API_2023, raw(EMPTY_PROPS)),
        SavedContact(NONE, API_2017, None, "default3"),
    )
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    document = backup_document(saved, "https://arm.example", created)
    assert document["kind"] == BACKUP_KIND
    assert document["created"] == "2026-01-02T03:04:05+00:00"
    assert parse_backup(json.loads(json.dumps(document))) == saved


def good_backup(**unknown: Any) -> dict[str, Any]:
    """A backup of EMPTY's contact; `unknown` are settings this suite does not know
    (x_score: "x-score")."""
    entry = {"subscriptionId": EMPTY, "name": "default", "apiVersion": API_2023}
    props = EMPTY_PROPS | {k.replace("_", "-"): v for k, v in unknown.items()}
    return {"kind": BACKUP_KIND, "version": 2, "contacts": [entry | {"contact": raw(props)}]}


def test_a_version_1_backup_is_still_read() -> None:
    old = {
        "kind": BACKUP_KIND,
        "version": 1,
        "contacts": {EMPTY: {"apiVersion": API_2023, "contact": raw(EMPTY_PROPS)}},
    }
    assert parse_backup(old) == (SavedContact(EMPTY, API_2023, raw(EMPTY_PROPS)),)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.pop("kind"), "not a backup written by the fix command"),
        (lambda b: b.update(version=3), "backup version 3"),
        (lambda b: b.update(contacts={}), '"contacts" is not a list'),
        (lambda b: b.update(contacts=[]), "holds no contacts"),
        (lambda b: b["contacts"][0].update(subscriptionId="x"), "not a subscription ID"),
        (lambda b: b["contacts"].append("x"), "is not an object"),
        (lambda b: b["contacts"][0].update(name="../x"), "not a contact the fix command"),
        (lambda b: b["contacts"][0].update(apiVersion="2019-01-01-preview"), "apiVersion"),
        (lambda b: b["contacts"][0].pop("contact"), "contact is missing"),
        (lambda b: b["contacts"][0].update(contact={"name": "x"}), "neither null nor"),
        (lambda b: b["contacts"][0].update(contact=[]), "neither null nor"),
    ],
)
def test_parse_backup_names_what_is_wrong(change: Any, message: str) -> None:
    backup = good_backup()
    assert parse_backup(backup) == (SavedContact(EMPTY, API_2023, raw(EMPTY_PROPS)),)
    change(backup)
    with pytest.raises(ValueError, match=message):
        parse_backup(backup)


# --- plan only -------------------------------------------------------------------------


def test_plan_only_sends_only_gets_and_prints_each_change(fix: Any, arm: ArmEmulator) -> None:
    before = state(arm)

    code, out, err = fix("--email", SOC)

    assert (code, err) == (0, "")
    assert {r.method for r in arm.requests} == {"GET"}
    assert state(arm) == before
    assert backups(Path.cwd()) == []
    assert "7 subscriptions selected of 7 visible, 6 checked" in out
    assert "CIS 5.0.0 8.1.13 passes on 1." in out
    assert "Plan: 5 changes to security contacts:" in out
    assert f"{NONE} (No contact): create securityContacts/default, api-version {API_2023}" in out
    assert f'emails: (no contact) -> "{SOC}"' in out
    assert (
        f"{DISABLED} (Disabled contact): update securityContacts/default, api-version {API_2023}"
        in out
    )
    assert "isEnabled: false -> true" in out
    assert (
        f"{LEGACY} (Legacy cloud): update securityContacts/default, api-version {API_2020}" in out
    )
    assert (
        'emails: "soc_at_fabrikam.com; admin@localhost" -> '
        f'"soc_at_fabrikam.com;admin@localhost;{SOC}"' in out
    )
    assert f"{OK} (" not in out
    assert "Plan only, nothing was changed: add --apply to make 5 changes." in out


def test_subscription_option_selects(fix: Any, arm: ArmEmulator) -> None:
    code, out, _ = fix("--email", SOC, "--subscription", EMPTY, "--azure-subscription", OK)
    assert code == 0
    assert "2 subscriptions selected of 7 visible" in out
    assert "Plan: 1 change to" in out


def test_subscription_not_visible_is_a_usage_error(fix: Any) -> None:
    other = "99999999-0000-4000-8000-000000000000"
    code, _, err = fix("--email", SOC, "--subscription", other)
    assert code == 4
    assert err.startswith(f"ERROR: --azure-subscription {other}: not visible")


# --- apply -----------------------------------------------------------------------------


def test_apply_writes_exactly_the_failing_subscriptions(fix: Any, arm: ArmEmulator) -> None:
    before = state(arm)

    code, out, err = fix("--email", SOC, "--email", "cert@contoso.com", "--apply", "--yes")

    assert (code, err) == (0, "")
    assert sorted(writes(arm)) == sorted(
        [("PUT", s, API_2020 if s == LEGACY else API_2023) for s in FAILING]
    )
    both = f"{SOC};cert@contoso.com"
    after = state(arm)
    assert after[EMPTY]["default"] == EMPTY_PROPS | {"emails": both}
    assert after[INVALID]["default"] == INVALID_PROPS | {
        "emails": f"soc_at_fabrikam.com;admin@localhost;{both}"
    }
    assert after[DISABLED]["default"] == DISABLED_PROPS | {
        "emails": f"ops@northwind.com;{both}",
        "isEnabled": True,
    }
    assert after[NONE] == {"default": {"emails": both, "isEnabled": True}}
    assert after[LEGACY]["default"] == LEGACY_PROPS | {"emails": both}
    for untouched in (OK, GONE):
        assert after[untouched] == before[untouched]
    # the 2020-only cloud is written at 2020-01-01-preview, in the 2020 shape
    assert put_bodies(arm)[LEGACY] == {
        "properties": {
            "emails": both,
            "phone": "+1 555 0100",
            "alertNotifications": {"state": "On", "minimalSeverity": "Medium"},
            "notificationsByRole": {"state": "On", "roles": ["Owner", "ServiceAdmin"]},
        }
    }
    # every change was read back through the list the audit reads
    for sub in FAILING:
        assert f"{sub} (" in out
    assert out.count("; read back: CIS 5.0.0 8.1.13 passes") == 5
    assert "Done: 5 of 5 changes made and confirmed by reading them back." in out


def test_apply_backs_up_every_contact_it_touches(fix: Any, arm: ArmEmulator) -> None:
    code, out, _ = fix("--email", SOC, "--apply", "--yes")
    assert code == 0
    (path,) = backups(Path.cwd())
    assert f"Backup of the 5 contacts before the change: {path.name}" in out
    document = json.loads(path.read_text())
    assert document["armEndpoint"] == arm.url
    saved = {s.subscription_id: s for s in parse_backup(document)}
    assert set(saved) == FAILING
    assert saved[NONE].contact is None
    assert saved[EMPTY].api_version == API_2023
    assert saved[EMPTY].contact is not None
    assert saved[EMPTY].contact["properties"] == EMPTY_PROPS
    assert saved[EMPTY].contact["name"] == "default"
    assert saved[LEGACY].api_version == API_2020
    assert saved[LEGACY].contact is not None
    assert saved[LEGACY].contact["properties"]["alertNotifications"]["minimalSeverity"] == "Medium"


def test_backup_path_option_and_never_overwritten(
    fix: Any, arm: ArmEmulator, tmp_path: Path
) -> None:
    chosen = tmp_path / "before-fix.json"
    code, _, _ = fix(
        "--email", SOC, "--subscription", EMPTY, "--backup", str(chosen), "--apply", "--yes"
    )
    assert code == 0
    assert set(parse_backup(json.loads(chosen.read_text()))[0].contact["properties"]) == set(
        EMPTY_PROPS
    )  # type: ignore[index]
    load(arm)
    arm.clear()
    code, _, err = fix("--email", SOC, "--backup", str(chosen), "--apply", "--yes")
    assert code == 4
    assert err == f"ERROR: fix: --backup {chosen}: the file exists; a backup never overwrites\n"
    assert arm.requests == []


def test_unwritable_backup_changes_nothing(fix: Any, arm: ArmEmulator, tmp_path: Path) -> None:
    path = tmp_path / "no" / "b.json"
    code, _, err = fix("--email", SOC, "--backup", str(path), "--apply", "--yes")
    assert code == 4
    assert err.startswith(f"ERROR: --backup {path}: cannot write the backup, nothing was changed")
    assert writes(arm) == []


def test_second_apply_changes_nothing_and_says_so(fix: Any, arm: ArmEmulator) -> None:
    assert fix("--email", SOC, "--apply", "--yes")[0] == 0
    arm.clear()

    code, out, err = fix("--email", SOC, "--apply", "--yes")

    assert (code, err) == (0, "")
    assert writes(arm) == []
    assert "Nothing to change: CIS 5.0.0 8.1.13 passes wherever this command can fix it." in out
    assert "CIS 5.0.0 8.1.13 passes on 6." in out
    assert len(backups(Path.cwd())) == 1  # no backup when there is nothing to change


def test_forbidden_subscription_fails_alone_naming_security_admin(
    fix: Any, arm: ArmEmulator
) -> None:
    message = (
        "The client does not have authorization to perform action "
        "'Microsoft.Security/securityContacts/read'."
    )
    arm.fail(EMPTY, Fault(403, "AuthorizationFailed", message))

    code, out, _ = fix("--email", SOC, "--apply", "--yes")

    assert code == 1
    assert sorted(s for _, s, _ in writes(arm)) == sorted(FAILING - {EMPTY})
    assert state(arm)[EMPTY]["default"] == EMPTY_PROPS
    assert f"{EMPTY} (Empty): could not read security contacts: HTTP 403 AuthorizationFailed" in out
    assert f"Fixing needs the Security Admin role on /subscriptions/{EMPTY}" in out
    assert "Done: 4 of 4 changes made" in out
    assert f"FAILED: 1 subscription not done: {EMPTY}" in out


def test_identity_that_may_only_read_fails_at_the_put(fix: Any, arm: ArmEmulator) -> None:
    arm.fail(
        DISABLED,
        Fault(
            403,
            "AuthorizationFailed",
            "The client does not have authorization to perform action "
            "'Microsoft.Security/securityContacts/write'.",
            methods=frozenset({"PUT"}),
        ),
    )

    code, out, _ = fix("--email", SOC, "--apply", "--yes")

    assert code == 1
    assert ("PUT", DISABLED, API_2023) in writes(arm)
    assert state(arm)[DISABLED]["default"] == DISABLED_PROPS
    assert (
        f"{DISABLED} (Disabled contact): FAILED: could not write security contact 'default': "
        "HTTP 403 AuthorizationFailed"
    ) in out
    assert f"assign it the Security Admin role on /subscriptions/{DISABLED}" in out
    assert "Done: 4 of 5 changes made" in out
    assert state(arm)[EMPTY]["default"]["emails"] == SOC


def test_a_write_that_does_not_stick_is_reported(fix: Any, arm: ArmEmulator) -> None:
    # ARM answers the PUT with success but keeps the old contact: the read-back catches it.
    arm.fail(
        EMPTY,
        Fault(200, body=json.dumps({"properties": {}}), methods=frozenset({"PUT"})),
    )
    code, out, _ = fix("--email", SOC, "--apply", "--yes")
    assert code == 1
    assert (
        f"{EMPTY} (Empty): FAILED: written, but CIS 5.0.0 8.1.13 still fails when read back: "
        "security contact 'default' has no email address"
    ) in out


def test_unregistered_defender_is_reported_with_its_command_and_fails(
    fix: Any, arm: ArmEmulator
) -> None:
    arm.load(
        tenant(
            subscription(UNREGISTERED, "Unregistered", defenderRegistered=False),
            subscription(EMPTY, "Empty", securityContacts=contact(EMPTY_PROPS)),
        )
    )
    code, out, _ = fix("--email", SOC, "--apply", "--yes")
    # Registering the provider is a write the command never makes, so the run did not
    # make every subscription pass: exit 1, with the command that would.
    assert code == 1
    assert writes(arm) == [("PUT", EMPTY, API_2023)]
    assert not [r for r in arm.requests if r.method == "POST"]
    assert arm.subscription(UNREGISTERED).defender_registered is False
    assert f"{UNREGISTERED} (Unregistered): Defender for Cloud was never set up here" in out
    assert (
        f"az provider register --namespace Microsoft.Security --subscription {UNREGISTERED}" in out
    )


def test_plan_shows_read_failures_with_exit_1(fix: Any, arm: ArmEmulator) -> None:
    arm.fail(INVALID, Fault(400, "BadRequest", "Not today."))
    code, out, _ = fix("--email", SOC)
    assert code == 1
    assert f"{INVALID} (Invalid): could not read security contacts: HTTP 400 BadRequest" in out
    assert "Security Admin" not in out
    assert "Plan: 4 changes" in out


def test_failing_raw_read_of_the_contact_is_reported(fix: Any, arm: ArmEmulator) -> None:
    # The list answers; the GET of the one contact, just before the write, does not.
    arm.fail(NONE, Fault(200, body=json.dumps({"value": []}), times=1))
    arm.fail(NONE, Fault(200, body="[]", times=1))
    code, out, _ = fix("--email", SOC, "--subscription", NONE, "--apply", "--yes")
    assert code == 1
    assert "is not a security contact (no 'properties' object)" in out
    assert writes(arm) == []


# --- restore ---------------------------------------------------------------------------


def test_restore_puts_every_contact_back_exactly(fix: Any, arm: ArmEmulator) -> None:
    before = state(arm)
    assert fix("--email", SOC, "--apply", "--yes")[0] == 0
    (backup,) = backups(Path.cwd())
    fixed = state(arm)
    arm.clear()

    code, out, _ = fix("--restore", str(backup))  # plan only

    assert code == 0
    assert {r.method for r in arm.requests} == {"GET"}
    assert state(arm) == fixed
    assert f"{NONE} (No contact): delete securityContacts/default, api-version {API_2023}" in out
    assert "Plan only, nothing was changed: add --apply to make 5 changes." in out

    arm.clear()
    code, out, _ = fix("--restore", str(backup), "--apply", "--yes")

    assert code == 0
    assert state(arm) == before
    assert sorted(writes(arm)) == sorted(
        [("DELETE", NONE, API_2023), ("PUT", LEGACY, API_2020)]
        + [("PUT", s, API_2023) for s in FAILING - {NONE, LEGACY}]
    )
    assert out.count("read back: exactly as saved") == 4
    assert f"{NONE} (No contact): deleted; read back: no contact, as before the fix" in out

    arm.clear()
    code, out, _ = fix("--restore", str(backup), "--apply", "--yes")
    assert code == 0
    assert writes(arm) == []
    assert "5 saved contacts, 5 already as saved." in out
    assert "Nothing to change" in out


def test_a_2017_only_cloud_gets_a_contact_per_address_and_its_restore(
    fix: Any, arm: ArmEmulator
) -> None:
    old = {"name": "default1", "properties": {"emails": "bad_at_x", "isEnabled": True}}
    arm.load(tenant(subscription(EMPTY, "Legacy 2017", securityContacts=[old]),
                    servedApiVersions=[API_2017]))  # fmt: skip
    code, out, _ = fix("--email", SOC, "--email", "b@contoso.com", "--apply", "--yes")
    assert code == 0, out
    assert f"create securityContacts/default2, api-version {API_2017}" in out
    assert f"create securityContacts/default3, api-version {API_2017}" in out
    assert [w for w in writes(arm)] == [("PUT", EMPTY, API_2017)] * 2
    puts = [r for r in arm.requests if r.method == "PUT"]
    assert [r.path.rsplit("/", 1)[1] for r in puts] == ["default2", "default3"]
    assert puts[0].body == {
        "properties": {"email": SOC, "alertNotifications": "On", "alertsToAdmins": "Off"}
    }
    assert "Done: 2 of 2 changes made and confirmed" in out
    assert set(arm.subscription(EMPTY).contacts) == {"default1", "default2", "default3"}

    (backup,) = backups(Path.cwd())
    code, out, _ = fix("--restore", str(backup), "--apply", "--yes")
    assert code == 0, out
    assert set(arm.subscription(EMPTY).contacts) == {"default1"}


def test_restore_one_subscription_and_failures(fix: Any, arm: ArmEmulator) -> None:
    assert fix("--email", SOC, "--apply", "--yes")[0] == 0
    (backup,) = backups(Path.cwd())
    arm.clear()
    arm.fail(
        EMPTY,
        Fault(200, body=json.dumps({"properties": {}}), methods=frozenset({"PUT"})),
    )
    code, out, _ = fix("--restore", str(backup), "--subscription", EMPTY, "--apply", "--yes")
    assert code == 1
    assert writes(arm) == [("PUT", EMPTY, API_2023)]
    assert "FAILED: written, but it reads back different from the backup in: emails" in out

    code, _, err = fix("--restore", str(backup), "--subscription", OK)
    assert code == 4
    assert err == f"ERROR: fix: --subscription {OK}: not in the backup {backup}\n"


def test_restore_of_a_subscription_no_longer_visible(
    fix: Any, arm: ArmEmulator, tmp_path: Path
) -> None:
    other = "99999999-0000-4000-8000-000000000000"
    backup = tmp_path / "b.json"
    document = good_backup()
    document["contacts"].append(
        {"subscriptionId": other, "name": "default", "apiVersion": API_2023, "contact": None}
    )
    backup.write_text(json.dumps(document))
    arm.fail(EMPTY, Fault(403, "AuthorizationFailed", "No.", methods=frozenset({"GET"})))
    code, out, _ = fix("--restore", str(backup))
    assert code == 1
    assert f"{other}: not visible to this identity at this ARM endpoint" in out
    assert f"{EMPTY} (Empty): could not read security contact 'default': HTTP 403" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the backup: "),
        ("{not json", "not a usable backup: not JSON (Expecting property name"),
        pytest.param(
            json.dumps(good_backup(x_score=float("nan"))),
            "not a usable backup: not JSON (holds NaN, which JSON (RFC 8259) does not allow",
            id="NaN",
        ),
        ('{"kind": "other"}', "not a usable backup: not a backup written by the fix command"),
        (b"\xff\xfe", "cannot read the backup: "),
    ],
)
def test_unusable_backup_is_a_usage_error(
    fix: Any, arm: ArmEmulator, tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "backup.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code, out, err = fix("--restore", str(path), "--apply", "--yes")
    assert code == 4
    assert out == ""
    assert err.startswith(f"ERROR: --restore {path}: {message}")
    assert err.count("\n") == 1
    assert arm.requests == []


# --- usage errors and the prompt -------------------------------------------------------


def test_apply_without_a_terminal_needs_yes(
    fix: Any, arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, err = fix("--email", SOC, "--apply")
    assert code == 4
    assert out == ""
    assert err == (
        "ERROR: fix: --apply without a terminal needs --yes (nothing was changed; run without "
        "--apply to see the plan)\n"
    )
    assert arm.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--email", "soc_at_contoso.com"],
            "--email: 'soc_at_contoso.com' is not a valid email address",
        ),
        (
            ["--email", "admin@localhost"],
            "--email: 'admin@localhost' is not a valid email address",
        ),
        (["--email", ""], "--email: '' is not a valid email address"),
        ([], "fix: give the security contact to add with --email ADDRESS"),
        (["--email", SOC, "--yes"], "fix: --yes confirms --apply"),
        (
            ["--email", SOC, "--restore", "b.json"],
            "fix: --restore puts a backup back; it takes no --email",
        ),
        (
            ["--email", SOC, "--subscription", "prod"],
            "--azure-subscription: 'prod' is not an ID",
        ),
        (["--email", SOC, "--azure-tenant", "x"], "--azure-tenant: 'x' is not an ID"),
        (
            ["--email", SOC, "--azure-cloud", "Mars"],
            "--azure-cloud: 'Mars' is not one of AzureCloud",
        ),
        (
            ["--email", SOC, "--azure-auth", "password"],
            "--azure-auth: 'password' is not one of default",
        ),
        (
            ["--email", SOC, "--azure-arm-endpoint", "http://x"],
            "--azure-arm-endpoint: 'http://x' is not an https:// URL",
        ),
        (["--email", SOC, "--appl"], "unrecognized arguments: --appl"),
    ],
)
def test_usage_errors_are_one_error_line_exit_4(
    arm: ArmEmulator, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(["fix", *args])
    out, err = capsys.readouterr()
    assert code == 4
    assert out == ""
    assert err.startswith("ERROR: ")
    assert message in err
    assert err.count("\n") == 1
    assert arm.requests == []


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 4
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_options_are_case_insensitive_like_the_suites(fix: Any) -> None:
    code, _, _ = fix("--email", SOC, "--azure-auth", "CLI", "--azure-cloud", "azurecloud")
    assert code == 0


def test_credential_failure_is_one_error_line(
    fix: Any, arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    code, out, err = fix("--email", SOC, "--apply", "--yes")
    assert code == 4
    assert out == ""
    assert err.startswith("ERROR: --azure-auth=cli: could not get a token: ")
    assert "run `az login`" in err
    assert err.count("\n") == 1
    assert arm.requests == []


def test_a_failing_credential_prints_one_line_and_no_sdk_log(
    arm: ArmEmulator, fake_az: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "compliance", "fix", "--azure-auth", "cli",
         "--azure-arm-endpoint", arm.url, "--email", SOC],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 4
    assert done.stderr.startswith("ERROR: --azure-auth=cli: could not get a token")
    assert done.stderr.count("\n") == 1, done.stderr


def test_azure_pipelines_without_its_variables_names_them(
    fix: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURESUBSCRIPTION_CLIENT_ID", "AZURESUBSCRIPTION_TENANT_ID", "AZURE_CLIENT_ID",
                 "AZURE_TENANT_ID", "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
                 "SYSTEM_ACCESSTOKEN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURESUBSCRIPTION_CLIENT_ID", "11111111-0000-4000-8000-000000000000")
    code, _, err = fix("--email", SOC, "--azure-auth", "azure-pipelines")
    assert code == 4
    assert err.startswith(
        "ERROR: --azure-auth=azure-pipelines: AZURESUBSCRIPTION_TENANT_ID, "
        "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, SYSTEM_ACCESSTOKEN not set"
    )


def test_the_audits_ini_policy_and_cis_version_apply(fix: Any, arm: ArmEmulator) -> None:
    Path("pytest.ini").write_text(
        "[pytest]\ncis_version = 3.0.0\nazure_allowed_contact_domains = contoso.com\n"
        "azure_required_contacts =\n    ciso@contoso.com\n"
    )
    code, out, _ = fix("--email", SOC, "--subscription", OK)
    assert code == 0, out
    # Compliant with the benchmark, but the policy requires ciso@: the fix adds it.
    assert "CIS 3.0.0 3.1.13 fix at" in out
    assert 'emails: "soc@contoso.com" -> "soc@contoso.com;ciso@contoso.com"' in out
    code, _, err = fix("--email", "soc@fabrikam.com")
    assert code == 4
    assert "soc@fabrikam.com: outside the allowed contact domains (contoso.com)" in err
    code, out, _ = fix("--email", SOC, "--subscription", OK, "--cis-version", "1.3.0")
    assert "CIS 1.3.0 2.13 fix at" in out  # the command line wins


def test_an_ini_that_sets_the_demo_is_refused(fix: Any, arm: ArmEmulator) -> None:
    Path("pytest.ini").write_text("[pytest]\nazure_demo = true\n")
    code, _, err = fix("--email", SOC)
    assert code == 4
    assert "pytest.ini sets azure_demo: the fix command changes real contacts" in err
    assert arm.requests == []


def test_addresses_outside_the_allowed_domains_are_left_to_people(
    fix: Any, arm: ArmEmulator
) -> None:
    code, out, _ = fix(
        "--email", SOC, "--subscription", DISABLED, "--azure-allowed-contact-domains",
        "contoso.com,northwind.com", "--subscription", OK,
    )  # fmt: skip
    assert code == 0
    arm.subscription(OK).contacts["default"]["emails"] = "soc@contoso.com;x@gmail.com"
    code, out, _ = fix("--email", SOC, "--subscription", OK,
                       "--azure-allowed-contact-domains", "contoso.com")  # fmt: skip
    assert code == 1
    assert "outside the allowed domains (contoso.com): x@gmail.com; adding addresses cannot" in out


def test_help_touches_nothing(arm: ArmEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["fix", "--help"])
    assert exited.value.code == 0
    assert "--restore BACKUP" in capsys.readouterr().out
    assert arm.requests == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_contact_edited_while_the_prompt_waits_is_left_alone(
    fix: Any, arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal())
    prompts = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        arm.subscription(DISABLED).contacts["default"]["emails"] = "someone@northwind.com"
        return "Yes"

    monkeypatch.setattr("builtins.input", answer)

    code, out, _ = fix("--email", SOC, "--apply")

    assert prompts == ["Apply 5 changes? [y/N] "]
    assert code == 1
    assert (
        f"{DISABLED} (Disabled contact): FAILED: the contact changed since the plan was made; "
        "nothing written, rerun"
    ) in out
    assert ("PUT", DISABLED, API_2023) not in writes(arm)
    assert state(arm)[DISABLED]["default"]["emails"] == "someone@northwind.com"
    assert "Done: 4 of 5 changes made" in out


@pytest.mark.parametrize(("raised", "code"), [(EOFError, 1), (KeyboardInterrupt, 130)])
def test_no_answer_changes_nothing(
    fix: Any, arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch, raised: type, code: int
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal())

    def answer(prompt: str) -> str:
        raise raised

    monkeypatch.setattr("builtins.input", answer)
    exit_code, out, err = fix("--email", SOC, "--apply")
    assert exit_code == code
    assert writes(arm) == []
    assert backups(Path.cwd()) == []
    if raised is EOFError:
        assert out.endswith("Nothing was changed.\n")
    else:
        assert err.startswith("ERROR: interrupted; what was done stays done")


def run_in_a_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """`python -m compliance fix ...` with a pseudo-terminal as stdin and stdout; types
    `answer` at the prompt. Returns the exit code and everything it printed."""
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "compliance", "fix", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=ROOT / "testing",
    )
    os.close(follower)
    output = b""
    answered = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if not answered and b"[y/N]" in output:
                    os.write(leader, answer.encode() + b"\n")
                    answered = True
            elif process.poll() is not None:
                break
        code = process.wait(timeout=10)
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
    return code, output.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.parametrize(("answer", "code"), [("y", 0), ("n", 1)])
def test_a_terminal_is_asked_once(
    fix: Any, arm: ArmEmulator, tmp_path: Path, answer: str, code: int
) -> None:
    backup = tmp_path / "b.json"
    args = ["--azure-auth", "cli", "--azure-arm-endpoint", arm.url, "--email", SOC]
    exit_code, output = run_in_a_terminal([*args, "--apply", "--backup", str(backup)], answer)
    assert output.count("Apply 5 changes? [y/N]") == 1
    assert exit_code == code
    if answer == "y":
        assert len(writes(arm)) == 5
        assert backup.exists()
        assert "Done: 5 of 5 changes made" in output
    else:
        assert writes(arm) == []
        assert not backup.exists()
        assert "Nothing was changed." in output


# --- ArmWriter: the write pipeline -----------------------------------------------------


@pytest.fixture
def writer(arm: ArmEmulator) -> Any:
    load(arm)
    writer = ArmWriter(
        arm.credential(), CLOUDS["AzureCloud"], arm.url, connection_verify=arm.ca_path
    )
    yield writer
    writer.close()


def test_writer_pipeline_has_no_provider_registration(writer: ArmWriter) -> None:
    pipeline = writer._pipeline._pipeline._impl_policies
    policies = [type(getattr(p, "_policy", p)).__name__ for p in pipeline]
    assert "ARMAutoResourceProviderRegistrationPolicy" not in policies
    assert "GetOnly" not in policies
    assert "SecurityContactWritesOnly" in policies


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/subscriptions/{UNREGISTERED}/providers/Microsoft.Security/register"),
        ("PUT", f"/subscriptions/{EMPTY}/providers/Microsoft.Security/securityContacts/other"),
        ("PUT", f"/subscriptions/{EMPTY}/providers/Microsoft.Security/pricings/default"),
        ("DELETE", f"/subscriptions/{EMPTY}"),
        ("PATCH", f"/subscriptions/{EMPTY}/providers/Microsoft.Security/securityContacts/default"),
        ("PUT", "/subscriptions//providers/Microsoft.Security/securityContacts/default"),
    ],
)
def test_writer_pipeline_refuses_any_other_write(
    writer: ArmWriter, arm: ArmEmulator, method: str, path: str
) -> None:
    request = HttpRequest(method, f"{arm.url}{path}?api-version={API_2023}", json={})
    with pytest.raises(RuntimeError, match="the fix command writes only security contacts"):
        writer._pipeline.send_request(request)
    elsewhere = HttpRequest("PUT", f"https://127.0.0.2{path}", json={})
    with pytest.raises(RuntimeError):
        writer._pipeline.send_request(elsewhere)
    assert arm.requests == []


def test_writer_get_put_delete(writer: ArmWriter, arm: ArmEmulator) -> None:
    assert writer.get_contact(NONE, API_2023) is None
    created = writer.put_contact(NONE, API_2023, {"emails": SOC, "isEnabled": True})
    assert created["properties"] == {"emails": SOC, "isEnabled": True}
    got = writer.get_contact(NONE, API_2023)
    assert got is not None and got["properties"] == created["properties"]
    writer.delete_contact(NONE, API_2023)
    writer.delete_contact(NONE, API_2023)  # already gone counts as done
    assert writer.get_contact(NONE, API_2023) is None
    assert [(r.method, r.had_bearer_token) for r in arm.requests][-2:] == [
        ("DELETE", True),
        ("GET", True),
    ]
    assert writer.identity.get("name") == "Emulated auditor"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Fault(404, "SubscriptionNotFound", "Gone."),
            "HTTP 404 SubscriptionNotFound: Gone. This ARM endpoint does not know",
        ),
        (
            Fault(409, "MissingSubscriptionRegistration", "Not registered."),
            "az provider register --namespace Microsoft.Security",
        ),
        (Fault(400, "InvalidApiVersionParameter", "No."), "does not accept the api-version"),
        (Fault(400, "NoRegisteredProviderFound", "No."), "does not accept the api-version"),
        (Fault(200, body="not json", content_type="text/plain"), "is not JSON"),
        (Fault(200, body="<html>", content_type="application/json"), "is not JSON"),
        (
            Fault(200, body='{"properties": {"x-score": Infinity}}'),
            "is not JSON: the body holds Infinity, which JSON",
        ),
        (
            Fault(200, body=f'{{"id": "/subscriptions/{OK}/providers", "properties": {{}}}}'),
            rf"is refused: the answer's contact id \(contact.id\) names subscription {OK}, "
            f"not {EMPTY}",
        ),
        (Fault(307, "TemporaryRedirect", "Elsewhere."), "HTTP 307 TemporaryRedirect"),
    ],
)
def test_writer_failures(writer: ArmWriter, arm: ArmEmulator, fault: Fault, message: str) -> None:
    arm.fail(EMPTY, fault)
    with pytest.raises(WriteFailed, match=message):
        writer.get_contact(EMPTY, API_2023)


def test_writer_sends_no_body_that_is_not_json(writer: ArmWriter, arm: ArmEmulator) -> None:
    with pytest.raises(WriteFailed, match="could not PUT security contact 'default': Out of"):
        writer.put_contact(EMPTY, API_2023, {"emails": SOC, "x-score": float("nan")})
    assert arm.requests == []


def test_writer_put_and_delete_refused(writer: ArmWriter, arm: ArmEmulator) -> None:
    arm.fail(EMPTY, Fault(403, "AuthorizationFailed", "No.", times=2))
    with pytest.raises(WriteFailed, match=r"could not write .* Security Admin") as refused:
        writer.put_contact(EMPTY, API_2023, {"emails": SOC})
    assert (refused.value.status, refused.value.code) == (403, "AuthorizationFailed")
    with pytest.raises(WriteFailed, match=r"could not delete .* Security Admin"):
        writer.delete_contact(EMPTY, API_2023)


def test_writer_unreachable_and_refused_token(arm: ArmEmulator) -> None:
    load(arm)
    cloud = CLOUDS["AzureCloud"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = ArmWriter(
        arm.credential(), cloud, f"https://127.0.0.1:{port}", connection_verify=arm.ca_path
    )
    try:
        with pytest.raises(WriteFailed, match=r"could not reach ARM .*\(the change may or may not"):
            closed.put_contact(EMPTY, API_2023, {"emails": SOC})
        with pytest.raises(
            WriteFailed, match=rf"could not reach ARM at https://127.0.0.1:{port}: (?!.*may or)"
        ):
            closed.get_contact(EMPTY, API_2023)
    finally:
        closed.close()

    class NoToken:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            from azure.core.exceptions import ClientAuthenticationError

            raise ClientAuthenticationError("no login")

    failing = ArmWriter(NoToken(), cloud, arm.url, connection_verify=arm.ca_path)  # type: ignore[arg-type]
    try:
        with pytest.raises(WriteFailed, match="could not get a token: no login"):
            failing.get_contact(EMPTY, API_2023)
    finally:
        failing.close()
