"""Baselines and drift: only new failures and what is not verifiable fail a run; `python -m
compliance diff` says the same about two findings files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_plugin import assert_run_error

import compliance.plugin
from compliance.baseline import Verdicts, compare
from compliance.emulator import Fault, load_tenant
from compliance.findings import Outcome
from conftest import CHECKS, ROOT, subscription, tenant

SUB_A = "aaaaaaaa-0000-4000-8000-000000000001"
SUB_B = "bbbbbbbb-0000-4000-8000-000000000002"
SUB_C = "cccccccc-0000-4000-8000-000000000003"


def test_compare_sorts_every_case_into_one_kind() -> None:
    old = Verdicts("old", {
        ("a", "x"): Outcome.NOT_COMPLIANT, ("b", "x"): Outcome.NOT_COMPLIANT,
        ("c", "x"): Outcome.WAIVED, ("d", "x"): Outcome.COMPLIANT,
        ("e", "x"): Outcome.NOT_COMPLIANT, ("f", "x"): Outcome.NOT_VERIFIABLE,
    })  # fmt: skip
    new = Verdicts("new", {
        ("a", "x"): Outcome.NOT_COMPLIANT,  # still failing
        ("b", "x"): Outcome.COMPLIANT,  # fixed
        ("c", "x"): Outcome.NOT_COMPLIANT,  # new: its waiver is gone, and it was never recorded
        ("d", "x"): Outcome.NOT_COMPLIANT,  # new
        ("f", "x"): Outcome.NOT_COMPLIANT,  # new: it was never known to fail
        ("g", "x"): Outcome.NOT_VERIFIABLE,  # not verifiable, whatever it was
    })  # fmt: skip
    drift = compare(old, new)
    assert drift.new == [("c", "x"), ("d", "x"), ("f", "x")]
    assert drift.still_failing == [("a", "x")]
    assert drift.fixed == [("b", "x")]
    assert drift.no_longer_present == [("e", "x")]
    assert drift.not_verifiable == [("g", "x")]
    assert drift.worse
    assert not compare(old, Verdicts("same", {("a", "x"): Outcome.NOT_COMPLIANT})).worse
    # a later run that never ran is worse, whatever it holds
    assert compare(old, Verdicts("none", {}, error="the audit did not run: no token")).worse
    # still failing under a waiver now: accepted, not new
    waived = compare(old, Verdicts("w", {("a", "x"): Outcome.WAIVED}))
    assert waived.still_failing == [("a", "x")] and not waived.worse


def diff(cwd: Path, old: str, new: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compliance", "diff", old, new],
        cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip


def against(new: int, fixed: int, still: int) -> str:
    return (f"against first.json: {new} new, {fixed} fixed, {still} still failing, "
            "0 no longer present, 0 not verifiable")  # fmt: skip


def findings(pytester: pytest.Pytester, name: str) -> list[dict[str, Any]]:
    return json.loads((pytester.path / name).read_text())["findings"]


def test_a_baseline_run_fails_only_on_what_got_worse(
    arm: Any, audit: Any, pytester: pytest.Pytester
) -> None:
    arm.load(tenant(
        subscription(SUB_A, "Alpha"),
        subscription(SUB_B, "Bravo", securityContacts=[]),
        subscription(SUB_C, "Charlie"),
    ))  # fmt: skip
    first = audit("-m", "contact_email", "--azure-findings=first.json")
    assert first.ret == pytest.ExitCode.TESTS_FAILED

    again = audit("-m", "contact_email", "--azure-baseline=first.json",
                  "--azure-findings=again.json", "--azure-step-summary=summary.md")  # fmt: skip
    assert again.ret == pytest.ExitCode.OK  # Bravo still fails: known, not failing the run
    again.assert_outcomes(passed=2, xfailed=1)
    again.stdout.fnmatch_lines([
        "*azure baseline*",
        against(0, 0, 1),
    ])  # fmt: skip
    marks = {
        f["subscription"]["name"]: (f["verdict"], f["baseline"])
        for f in findings(pytester, "again.json")
    }
    assert marks == {"Alpha": ("compliant", None), "Bravo": ("not_compliant", "known"),
                     "Charlie": ("compliant", None)}  # fmt: skip
    assert "| not compliant (known) |" in (pytester.path / "summary.md").read_text()

    arm.subscription(SUB_C).contacts.clear()  # Charlie loses its contacts between runs
    arm.subscription(SUB_B).contacts["default"] = dict(arm.subscription(SUB_A).contacts["default"])
    worse = audit(
        "-m", "contact_email", "--azure-baseline=first.json", "--azure-findings=worse.json"
    )
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    worse.stdout.fnmatch_lines([
        against(1, 1, 0),
        f"NEW  CIS 8.1.13 Charlie ({SUB_C}): no security contact is configured*",
        f"FIXED  CIS 8.1.13 Bravo ({SUB_B})",
    ])  # fmt: skip
    marks = {f["subscription"]["name"]: f["baseline"] for f in findings(pytester, "worse.json")}
    assert marks == {"Alpha": None, "Bravo": "fixed", "Charlie": "new"}

    # What could not be verified fails the run, known failure or not
    arm.fail(SUB_B, Fault(403, "AuthorizationFailed", "denied"))
    arm.subscription(SUB_C).contacts["default"] = dict(arm.subscription(SUB_A).contacts["default"])
    unverified = audit("-m", "contact_email", "--azure-baseline=first.json")
    assert unverified.ret == pytest.ExitCode.TESTS_FAILED
    unverified.assert_outcomes(passed=2, errors=1)

    # python -m compliance diff says the same about the files
    worse_diff = diff(pytester.path, "first.json", "worse.json")
    assert worse_diff.returncode == 1
    assert worse_diff.stdout.splitlines()[:3] == [
        against(1, 1, 0),
        f"NEW  CIS 8.1.13 Charlie ({SUB_C}): no security contact is configured: Defender for "
        "Cloud notifies nobody",
        f"FIXED  CIS 8.1.13 Bravo ({SUB_B})",
    ]
    assert diff(pytester.path, "first.json", "again.json").returncode == 0


def test_the_demo_tenant_drifts_between_two_runs(arm: Any, audit: Any) -> None:
    """The demo tenant on the test emulator, where a subscription can change between runs."""
    arm.load(load_tenant("demo"))
    online = ("--azure-management-group", "online")
    assert audit(*online, "--azure-findings=first.json").ret == pytest.ExitCode.TESTS_FAILED
    assert audit(*online, "--azure-baseline=first.json").ret == pytest.ExitCode.OK
    marketing = "0e4d2c1b-9a8f-4e7d-b6c5-a4f3e2d1c0b9"  # Contoso Marketing, below Online
    arm.subscription(marketing).contacts["default"]["isEnabled"] = False
    worse = audit(*online, "--azure-baseline=first.json")
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    worse.stdout.fnmatch_lines([
        f"NEW  CIS 8.1.12 Contoso Marketing ({marketing}): security contact 'default' is "
        "disabled*",
    ])  # fmt: skip


def test_a_second_demo_run_against_the_first_exits_0(pytester: pytest.Pytester) -> None:
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())

    def demo(*args: str) -> pytest.RunResult:
        return pytester.runpytest("-p", "no:cacheprovider", "--azure-demo",
                                  "--azure-management-group", "online", *args,
                                  plugins=[compliance.plugin])  # fmt: skip

    assert demo("--azure-findings=first.json").ret == pytest.ExitCode.TESTS_FAILED
    second = demo("--azure-baseline=first.json")
    assert second.ret == pytest.ExitCode.OK
    second.stdout.fnmatch_lines(["against first.json: 0 new, 0 fixed, 6 still failing, *"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "--azure-baseline: missing.json: cannot read it*"),
        ("{not json", "--azure-baseline: missing.json: not valid JSON*"),
        ('{"schema": "azure-security-contacts/evidence/v1"}',
         "--azure-baseline: missing.json: not a findings file*"),
    ],
)  # fmt: skip
def test_a_baseline_that_cannot_be_read_is_one_error_line(
    arm: Any, audit: Any, pytester: pytest.Pytester, content: str | None, message: str
) -> None:
    arm.load(tenant(subscription(SUB_A)))
    if content is not None:
        (pytester.path / "missing.json").write_text(content)
    assert_run_error(audit("--azure-baseline=missing.json"), message)


def test_diff_of_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    unreadable = diff(tmp_path, "nope.json", "nope.json")
    assert unreadable.returncode == 4
    assert unreadable.stderr.startswith("ERROR: diff: nope.json: cannot read it")


def test_a_waived_case_is_never_called_new_and_groups_are_kept_apart() -> None:
    from compliance.controls import CATALOGUE
    from compliance.findings import Finding
    from compliance.model import ManagementGroup, Subscription
    from compliance.outputs.audit_view import group_tree
    from compliance.recorder import _against

    control = CATALOGUE[0]
    sub = Subscription(SUB_A, "A", "Enabled")
    baseline = Verdicts("old", {(SUB_A, control.key): Outcome.WAIVED})
    assert _against(baseline, sub, control, Outcome.WAIVED) is None
    assert _against(baseline, sub, control, Outcome.NOT_COMPLIANT) == "new"  # waiver gone
    assert _against(baseline, sub, control, Outcome.COMPLIANT) == "fixed"
    assert _against(None, sub, control, Outcome.NOT_COMPLIANT) is None

    root = ManagementGroup("t", "Root")
    twins = [ManagementGroup("prod-eu", "Prod"), ManagementGroup("prod-us", "Prod")]
    found = [
        Finding(Subscription(f"{n}", f"s{n}", "Enabled", "t", (root, group)), control, "5.0.0",
                Outcome.COMPLIANT, "ok")
        for n, group in enumerate(twins)
    ]  # fmt: skip
    assert [(g["group"], g["id"], g["subscriptions"]) for g in group_tree(found, ())[0]] == [
        ("Prod", "prod-eu", 1),
        ("Prod", "prod-us", 1),
    ]
