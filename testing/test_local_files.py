"""Hostile local files: waivers, baselines, findings files and evidence bundles come from the
audited organisation. Past a limit of size, values, nesting or entries, each is one `ERROR:`
line and exit 4, before the parser recurses or allocates past it."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_plugin import assert_run_error

import compliance.plugin
from compliance import baseline, evidence, localfiles, waivers
from compliance.evidence import EVIDENCE_SCHEMA
from compliance.findings import FINDINGS_SCHEMA
from compliance.waivers import Waiver, Waivers, unused_and_expired, waivers_for
from conftest import CHECKS, ROOT, subscription, tenant

SUB_A = "aaaaaaaa-0000-4000-8000-000000000001"
SMALL = localfiles.Limits("a test file", bytes=100, values=10, depth=3)
DEEP = 5000


def deep_json(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def findings_file(findings: str) -> str:
    return f'{{"schema": "{FINDINGS_SCHEMA}", "findings": {findings}}}'


def finding(number: int) -> str:
    return (
        f'{{"subscription": {{"id": "{number:08x}-0000-4000-8000-000000000000", "name": "n"}}, '
        '"control": {"key": "contact_email", "cis_id": "8.1.15"}, "verdict": "compliant"}'
    )


WAIVER = """[[waiver]]
subscription = "{subscription}"
control = "contact_email"
reason = "Sandbox (RISK-{number})"
approved_by = "Approver {number}"
expires = {expires}
"""


# --- the limits, on hand-built text -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('["[[[[[[", {"a": "]]]]"}]', 2),  # brackets in strings are text
        (r'["\"[[[[", ["\\", [[]]]]', 4),  # an escaped quote does not end a string
        ("[[[", 3),  # not JSON: the parser will say so, the scan does not refuse it
        ("]]]][[[[", 0),  # the parser stops at the first `]`, before any nesting
    ],
)
def test_the_scan_measures_nesting_outside_strings(text: str, depth: int) -> None:
    def limited(levels: int) -> localfiles.Limits:
        return localfiles.Limits("a test file", bytes=100, values=100, depth=levels)

    try:
        localfiles.loads_json(text, "t.json", limited(depth))
    except localfiles.LimitError as exc:
        pytest.fail(f"refused at {depth} levels: {exc}")
    except ValueError:
        pass  # not JSON: the parser says so, once the scan found it shallow enough
    if depth:
        with pytest.raises(localfiles.LimitError, match=f"nested {depth} deep, more than"):
            localfiles.loads_json(text, "t.json", limited(depth - 1))


def test_values_are_counted_before_parsing() -> None:
    assert localfiles.loads_json('{"a": [1, 2, 3]}', "t.json", SMALL) == {"a": [1, 2, 3]}
    with pytest.raises(localfiles.LimitError) as raised:
        localfiles.loads_json("[" + ",".join(["[]"] * 6) + "]", "t.json", SMALL)
    assert str(raised.value) == (
        "t.json: 12 values, more than the 10 values this suite reads in a test file"
    )


def test_size_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as file:  # sparse: nothing to read, only its size says it is big
        file.truncate(10**12)
    with pytest.raises(localfiles.LimitError, match="1,000,000,000,000 bytes, more than the 100"):
        localfiles.read_text(path, SMALL)
    path.write_text("[1]")
    assert localfiles.read_text(path, SMALL) == "[1]"


def test_text_that_costs_four_bytes_a_character_is_measured_as_such(tmp_path: Path) -> None:
    path = tmp_path / "emoji.json"
    path.write_text('["\U0001f600' + "x" * 40 + '"]', encoding="utf-8")  # 47 bytes, ~240 as text
    with pytest.raises(localfiles.LimitError, match="as text, more than the 100 this suite"):
        localfiles.read_text(path, SMALL)


@pytest.mark.parametrize(
    "text",
    ["x = " + deep_json(), "x" + ".x" * DEEP + " = 1\n", 'x = """[[[[\n""" # ]]]]\ny = [[[[1]]]]'],
    ids=["arrays", "dotted-keys", "brackets-in-strings-then-real-ones"],
)
def test_toml_nesting_is_refused_however_it_is_written(text: str) -> None:
    with pytest.raises(localfiles.LimitError, match=r"nested .* more than the 3 levels"):
        localfiles.loads_toml(text, "w.toml", localfiles.Limits("w", 10**6, 10**6, depth=3))


# --- waivers: matching through the index, as a walk down the file would ---------------------


def test_100000_waivers_on_one_case_decide_as_the_first_active_one() -> None:
    day = dt.date(2026, 6, 1)
    expired, active = dt.date(2026, 1, 1), dt.date(2027, 1, 1)
    file = Waivers(
        Waiver(
            n, SUB_A if n % 2 else "*", "contact_email", "r", "a", active if n > 99_990 else expired
        )
        for n in range(1, 100_001)
    )
    found, last_expired = waivers_for(file, SUB_A.upper(), "contact_email", day)
    assert found is not None and found.number == 99_991
    assert last_expired is not None and last_expired.number == 99_990
    assert waivers_for(file, SUB_A, "alert_severity", day) == (None, None)
    cases = [(SUB_A, "contact_email"), ("bbbbbbbb-0000-4000-8000-000000000002", "alert_severity")]
    stale, ignored = unused_and_expired(file, cases, day)
    assert stale == [] and len(ignored) == 99_990


def test_100000_waivers_on_one_case_through_the_plugin(
    arm: Any, audit: Any, pytester: pytest.Pytester
) -> None:
    arm.load(tenant(subscription(SUB_A, securityContacts=[])))
    entries = (
        WAIVER.format(subscription="*" if n % 2 else SUB_A, number=n, expires="2099-12-31")
        for n in range(1, 100_001)
    )
    (pytester.path / "waivers.toml").write_text("\n".join(entries))
    result = audit("-m", "contact_email", "--azure-waivers=waivers.toml", "-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(
        ["XFAIL *" + SUB_A + "* - waived until 2099-12-31 by Approver 1: *"]
    )
    assert "stale waivers" not in result.stdout.str()


# --- through the plugin: one ERROR line, exit 4 ------------------------------------------


def bundle_with(**members: Any) -> str:
    document = {"schema": EVIDENCE_SCHEMA, "run": {}, "subscriptions": [], "contacts": {}}
    document.update(members)
    document["digest"] = evidence._digest(document)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("option", "content", "message"),
    [
        ("--azure-waivers", "x = " + deep_json(),
         "waivers.toml: nested 5,000 deep, more than the 64 levels this suite reads in a "
         "waivers file"),
        ("--azure-waivers", "[[waiver]]\n" * (waivers.MAX_WAIVERS + 1),
         "waivers.toml: 100,001 waivers, more than the 100,000 this suite reads in one file"),
        ("--azure-baseline", findings_file(deep_json()),
         "baseline.json: nested 5,001 deep, more than the 64 levels*"),
        ("--azure-baseline",
         findings_file("[" + ",".join(finding(n) for n in range(baseline.MAX_FINDINGS + 1)) + "]"),
         "baseline.json: 100,001 findings, more than the 100,000 this suite reads in one file"),
        ("--azure-baseline", "[" + ",".join(["[]"] * 3_000_001) + "]",
         "baseline.json: 6,000,002 values, more than the 6,000,000 values this suite reads in "
         "a findings file"),
    ],
    ids=["deep-waivers", "too-many-waivers", "deep-baseline", "too-many-findings",
         "empty-arrays-baseline"],
)  # fmt: skip
def test_a_hostile_waivers_file_or_baseline_is_one_error_line(
    arm: Any, audit: Any, pytester: pytest.Pytester, option: str, content: str, message: str
) -> None:
    arm.load(tenant(subscription(SUB_A)))
    name = "waivers.toml" if option == "--azure-waivers" else "baseline.json"
    (pytester.path / name).write_text(content)
    assert_run_error(audit(f"{option}={name}"), f"{option}: {message}")
    assert arm.requests == []  # refused before the audit asks Azure anything


@pytest.mark.parametrize("name", ["waivers.toml", "baseline.json"])
def test_a_file_past_the_size_limit_is_refused_unread(
    arm: Any, audit: Any, pytester: pytest.Pytester, name: str
) -> None:
    arm.load(tenant(subscription(SUB_A)))
    option, limit = (
        ("--azure-waivers", waivers.LIMITS) if name.endswith("toml") else
        ("--azure-baseline", baseline.LIMITS)
    )  # fmt: skip
    with (pytester.path / name).open("wb") as file:
        file.truncate(limit.bytes + 1)
    assert_run_error(
        audit(f"{option}={name}"),
        f"{option}: {name}: {limit.bytes + 1:,} bytes, more than the {limit.bytes:,} bytes "
        f"this suite reads in {limit.what}",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bundle_with(x=json.loads(deep_json(60))).replace(deep_json(60), deep_json()),
         "ev.json: nested 5,001 deep, more than the 64 levels this suite reads in an "
         "evidence bundle"),
        (bundle_with(subscriptions=[{}] * (evidence.MAX_SUBSCRIPTIONS + 1)),
         "ev.json: 150,001 subscriptions, more than the 150,000 this suite reads in one file"),
        (bundle_with(contacts={str(n): {"responses": [{}] * 5} for n in range(120_001)}),
         "ev.json: 600,005 recorded answers, more than the 600,000 this suite reads in one file"),
    ],
    ids=["deep", "too-many-subscriptions", "too-many-answers"],
)  # fmt: skip
def test_a_hostile_bundle_is_one_error_line(
    pytester: pytest.Pytester, content: str, message: str
) -> None:
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    (pytester.path / "ev.json").write_text(content)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--azure-replay=ev.json", plugins=[compliance.plugin]
    )
    assert_run_error(result, f"--azure-replay: {message}")


def diff(cwd: Path, old: str, new: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compliance", "diff", old, new],
        cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (findings_file(deep_json()), "nested 5,001 deep, more than the 64 levels*"),
        (findings_file("[" + ",".join(finding(n) for n in range(100_001)) + "]"),
         "100,001 findings, more than the 100,000*"),
    ],
    ids=["deep", "too-many-findings"],
)  # fmt: skip
def test_diff_of_a_hostile_findings_file_is_a_usage_error(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "new.json").write_text(content)
    (tmp_path / "old.json").write_text(findings_file("[]"))
    result = diff(tmp_path, "old.json", "new.json")
    assert result.returncode == 4
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fnmatch.fnmatch(lines[0], f"ERROR: diff: new.json: {message}"), lines[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (findings_file(deep_json()), "nested 5,001 deep, more than the 64 levels*"),
        (json.dumps({"kind": "azure-security-contacts-backup", "version": 2,
                     "contacts": [{}] * 200_001}),
         "200,001 contacts, more than the 200,000 this suite reads in one file"),
    ],
    ids=["deep", "too-many-contacts"],
)  # fmt: skip
def test_a_hostile_backup_is_refused_before_anything_is_planned(
    tmp_path: Path, content: str, message: str
) -> None:
    from compliance.arm import AuditError
    from compliance.backup import load_backup

    (tmp_path / "backup.json").write_text(content)
    with pytest.raises(AuditError) as refused:
        load_backup(tmp_path / "backup.json")
    assert fnmatch.fnmatch(str(refused.value), f"--restore {tmp_path / 'backup.json'}: {message}")


@pytest.mark.parametrize("number", ["NaN", "-Infinity", "1e999"])
def test_a_local_json_file_holding_a_number_json_does_not_allow_is_refused(number: str) -> None:
    with pytest.raises(ValueError, match=r"which JSON \(RFC 8259\) does not allow"):
        localfiles.loads_json(findings_file(f'[{{"x": {number}}}]'), "f.json", SMALL)
