"""Fixtures for the suite's own tests: the ARM emulator, a fake `az`, and audit runs.

Every test talks to 127.0.0.1 only, through the real Azure SDK, real HTTPS and the real
token policy; the credential is the real AzureCliCredential running a fake `az`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.identity
import azure.mgmt.core  # noqa: F401
import pytest

import compliance.plugin
from compliance.arm.pipeline import RETRY_BACKOFF_VARIABLE
from compliance.emulator import COMPLIANT_CONTACT, ArmEmulator, Tenant, tenant_from_json
from compliance.emulator.fake_az import install_fake_az

# The imports above are not for use here: pytester's in-process runs drop every module a run
# imported first, and a re-imported `requests` no longer matches the one azure-core holds.
# The emulator fails on purpose and answers at once: azure-core's exponential backoff between
# retries would only be waited through (about 40 s a run). Set for the process, so pytester's
# in-process runs and every child process (pytester subprocess runs, `python -m compliance`,
# the read's child) retry at once too; Retry-After is still waited. The tests of the backoff
# itself set it back (testing/test_arm.py).
os.environ.setdefault(RETRY_BACKOFF_VARIABLE, "0")
ROOT = Path(__file__).resolve().parent.parent
CHECKS = ROOT / "tests" / "test_security_contacts.py"
TENANT_ID = "11111111-2222-3333-4444-555555555555"


COMPLIANT = COMPLIANT_CONTACT


def subscription(sub_id: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    """A tenant-file subscription entry; compliant with every control unless told otherwise."""
    entry: dict[str, Any] = {
        "subscriptionId": sub_id,
        "displayName": name or f"sub-{sub_id[:4]}",
        "securityContacts": [{"name": "default", "properties": COMPLIANT}],
    }
    entry.update(extra)
    return entry


def tenant(*subscriptions: dict[str, Any], tenant_id: str = TENANT_ID, **extra: Any) -> Tenant:
    """A tenant of `subscriptions`; `extra` are tenant-file keys (e.g. servedApiVersions)."""
    return tenant_from_json({"tenantId": tenant_id, "subscriptions": list(subscriptions), **extra})


@pytest.fixture(scope="session")
def arm_emulator() -> Iterator[ArmEmulator]:
    with ArmEmulator(identity_tenant=TENANT_ID) as emulator:
        yield emulator


@pytest.fixture
def arm(arm_emulator: ArmEmulator) -> Iterator[ArmEmulator]:
    """The emulator with an empty tenant and an empty request log; load() what you need."""
    arm_emulator.load(tenant())
    arm_emulator.clear()
    arm_emulator.latency = 0.0
    arm_emulator.subscriptions_page_size = arm_emulator.contacts_page_size = 100
    arm_emulator.subscriptions_body = None
    yield arm_emulator
    arm_emulator.wait_idle()
    arm_emulator.check()


@pytest.fixture
def fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arm: ArmEmulator) -> Path:
    """A fake `az` first on PATH that hands out the emulator's token; returns its log."""
    bin_dir = install_fake_az(tmp_path / "fake-az-bin").parent
    log = tmp_path / "fake-az.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_AZ_LOG", str(log))
    monkeypatch.setenv("FAKE_AZ_TOKEN", arm.token)
    monkeypatch.setenv("FAKE_AZ_TENANT", TENANT_ID)
    monkeypatch.delenv("FAKE_AZ_FAIL", raising=False)
    monkeypatch.delenv("FAKE_AZ_OUTPUT", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", arm.ca_path)
    return log


def az_calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def audit(
    pytester: pytest.Pytester, arm: ArmEmulator, fake_az: Path
) -> Callable[..., pytest.RunResult]:
    """Run the real compliance checks against the emulator, as a user would with `az login`."""
    shutil.copy(CHECKS, pytester.path / CHECKS.name)

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest(
            "--azure-auth", "cli",
            "--azure-arm-endpoint", arm.url,
            "-p", "no:cacheprovider",
            *args,
            plugins=[compliance.plugin],
        )  # fmt: skip

    return run


@pytest.fixture(params=["threads", "a child process"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the contacts read on threads, then read by a child process (what a
    tenant of 1,000 subscriptions or more gets: compliance.arm.process)."""
    from compliance.arm import process

    if request.param == "a child process":
        monkeypatch.setattr(process, "IN_A_PROCESS_FROM", 1)
    return str(request.param)


CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must test the report in Chromium: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()
