"""Reading in a child process (compliance.arm.process): what a large tenant's read does.

The child reads through the real SDK, real HTTPS and the real token policy (its own
AzureCliCredential, running the fake `az`) against the emulator; it must give what reading
on threads gives, hand over no secret, and leave what it never read not verifiable.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from compliance import sources
from compliance.apiversions import API_2020, API_2023
from compliance.arm import ArmReader, process
from compliance.arm.process import Recipe
from compliance.audit import Settings
from compliance.contacts import SecurityContacts, Unverifiable
from compliance.emulator import ArmEmulator, Fault
from conftest import subscription, tenant

IDS = [f"{i}0000000-0000-4000-8000-000000000000" for i in range(1, 8)]


def live(arm: ArmEmulator, **settings: Any) -> ArmReader:
    return sources.live(Settings(auth="cli", arm_endpoint=arm.url, concurrency=4, **settings))


def read(reader: ArmReader, *, in_a_process: bool) -> dict[str, SecurityContacts | Unverifiable]:
    try:
        if in_a_process:
            return dict(process.read_many(reader, IDS))
        return dict(reader.read_many(IDS))  # fewer than IN_A_PROCESS_FROM: on threads
    finally:
        reader.close()


def shown(result: SecurityContacts | Unverifiable) -> tuple[Any, ...]:
    """A result less what differs between two reads of the same answers (times, ids)."""
    statuses = [r.status for r in result.responses]
    if isinstance(result, Unverifiable):
        return ("unverifiable", result.status, str(result).split(" (")[0], statuses)
    return (result.api_version, result.defender_registered, result.contacts, statuses)


def mixed_tenant(arm: ArmEmulator) -> None:
    arm.load(
        tenant(
            subscription(IDS[0]),
            subscription(IDS[1], securityContacts=[]),
            subscription(IDS[2], defenderRegistered=False),
            subscription(IDS[3], faults=[{"status": 403, "code": "AuthorizationFailed"}]),
            subscription(IDS[4], rejectApiVersions=[API_2023]),
            subscription(IDS[5]),
            subscription(IDS[6]),
        )
    )
    arm.fail(IDS[5], Fault(status=429, code="TooManyRequests", retry_after=0.01, times=1))


def test_a_child_process_reads_what_threads_read(arm: ArmEmulator, fake_az: Path) -> None:
    mixed_tenant(arm)
    on_threads = read(live(arm), in_a_process=False)
    arm.clear()
    mixed_tenant(arm)
    reader = live(arm)
    in_a_process = read(reader, in_a_process=True)
    assert {k: shown(v) for k, v in in_a_process.items()} == {
        k: shown(v) for k, v in on_threads.items()
    }
    assert isinstance(in_a_process[IDS[3]], Unverifiable)
    assert in_a_process[IDS[4]].api_version == API_2020  # type: ignore[union-attr]
    assert reader.throttle.throttled == 1  # the child's 429, counted where the run reports
    assert reader.contacts.versions.start == API_2023  # what the child learned


def test_no_secret_crosses_from_the_child(arm: ArmEmulator, fake_az: Path) -> None:
    arm.load(tenant(*(subscription(i) for i in IDS)))
    echo = json.dumps({"error": {"code": "AuthorizationFailed", "message": "refused {token}"}})
    arm.fail(IDS[0], Fault(status=403, body=echo))
    results = read(live(arm), in_a_process=True)
    body = results[IDS[0]].responses[0].body
    assert arm.token not in body
    assert "refused [redacted token]" in body


def test_a_child_that_dies_leaves_every_subscription_not_verifiable(
    arm: ArmEmulator, fake_az: Path
) -> None:
    arm.load(tenant(*(subscription(i) for i in IDS)))
    reader = live(arm)
    reader.recipe = Recipe("cli", "NoSuchCloud", None)  # the child cannot make its reader
    results = read(reader, in_a_process=True)
    assert set(results) == set(IDS)
    for result in results.values():
        assert isinstance(result, Unverifiable)
        assert "not read: the reading process ended first (KeyError: 'NoSuchCloud')" in str(result)
    assert arm.requests == []


def test_the_suite_gives_the_same_verdicts_with_a_child_reading(
    audit: Any, arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    mixed_tenant(arm)
    on_threads = audit("-rA").stdout.lines
    arm.clear()
    mixed_tenant(arm)
    monkeypatch.setattr(process, "IN_A_PROCESS_FROM", 1)
    in_a_process = audit("-rA").stdout.lines

    def verdicts(lines: list[str]) -> list[str]:
        return [line for line in lines if line.startswith(("PASSED", "FAILED", "ERROR"))]

    assert verdicts(in_a_process) == verdicts(on_threads)
    assert len(verdicts(in_a_process)) == 4 * len(IDS)
    assert sum(r.path.endswith("securityContacts") for r in arm.requests) >= len(IDS)


def test_a_subscriptions_cases_run_one_after_another(audit: Any, arm: ArmEmulator) -> None:
    arm.load(tenant(*(subscription(i) for i in reversed(IDS[:3]))))
    ids = [line for line in audit("--collect-only", "-q").stdout.lines if "::" in line]
    subscriptions = [line.rsplit("(", 1)[1] for line in ids]
    assert subscriptions == sorted(subscriptions)
    assert [line.split("[")[0].rsplit("::", 1)[1] for line in ids[:4]] == [
        "test_security_contact_email_configured",
        "test_high_severity_alert_notifications",
        "test_owner_role_notifications",
        "test_attack_path_notifications",
    ]


def test_a_run_that_stops_reading_stops_the_child(arm: ArmEmulator, fake_az: Path) -> None:
    arm.load(tenant(*(subscription(i) for i in IDS)))
    arm.latency = 0.3
    reader = sources.live(Settings(auth="cli", arm_endpoint=arm.url, concurrency=1))
    try:
        answers = process.read_many(reader, IDS)
        next(answers)
        answers.close()  # what Audit.close() does to a read under way
        asked = len(arm.requests)
        time.sleep(1)
        assert len(arm.requests) <= asked + 1  # a request under way may still land, no more
    finally:
        reader.close()
