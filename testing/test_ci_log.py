"""A tenant whose names are CI log commands and invisible characters: whoever may rename a
subscription or a management group sets no pipeline variable, forges no annotation and hides
nothing, whatever pytest prints (-v, -ra, -rA, --tb=short, --tb=long) and in every report."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from compliance.__main__ import main
from compliance.emulator import COMPLIANT_CONTACT, ArmEmulator
from conftest import subscription, tenant

# What Azure Pipelines obeys anywhere in a line (`##vso[`, and formats `##[`), and what GitHub
# Actions obeys at the start of a line once its leading whitespace (\xa0 too) is trimmed.
COMMANDS = (
    "##vso[task.setvariable variable=COMPLIANT]true",
    "##[error]forged",
    "::add-mask::x",
    "\n  ::error::forged",
    "\n\xa0::error::forged",
)
# Invisible or direction-changing, none escaped before: each would hide or reorder text.
INVISIBLE = ("\u061c", "\u00ad", "\u180e", "\ufff9", "\ufffa", "\ufffb",
             "\U000e0001", "\U000e0041", "\U000e007f")  # fmt: skip
HOSTILE = "".join(COMMANDS) + "".join(INVISIBLE)


def sub_id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-00000000c10c"


def hostile_tenant() -> Any:
    groups = [
        {"name": "outer", "displayName": f"Outer {HOSTILE}"},
        {"name": "inner", "displayName": f"::warning::inner{HOSTILE}", "parent": "outer"},
    ]
    failing = {"name": "default", "properties": {**COMPLIANT_CONTACT, "emails": HOSTILE}}
    error = json.dumps({"error": {"code": f"Forbidden{HOSTILE}", "message": HOSTILE}})
    return tenant(
        subscription(sub_id(1), f"Compliant {HOSTILE}", managementGroup="inner"),
        subscription(sub_id(2), f"::error::failing{HOSTILE}", managementGroup="inner",
                     securityContacts=[failing]),
        subscription(sub_id(3), HOSTILE, managementGroup="outer",
                     faults=[{"status": 403, "body": error}]),
        subscription(sub_id(4), "Owners not told", managementGroup="outer",
                     securityContacts=[{"name": "default", "properties": {
                         **COMPLIANT_CONTACT, "phone": HOSTILE,
                         "notificationsByRole": {"state": "Off", "roles": ["Owner"]}}}]),
        managementGroups=groups,
    )  # fmt: skip


def command_lines(text: str) -> list[str]:
    """The lines a CI runner would obey (split wherever Python sees a line break, which is
    wherever a runner does and more; lstrip() trims what str.isspace() knows, \xa0 too)."""
    return [
        line
        for line in text.splitlines()
        if "##vso[" in line or "##[" in line or re.match(r"::\w+", line.lstrip())
    ]


@pytest.mark.parametrize(
    "verbosity",
    [("-v", "-ra", "--tb=short"), ("-rA", "--tb=long"), ("-rN",)],  # -rN: the suite's own summary
    ids=" ".join,
)
def test_a_hostile_tenant_reaches_no_ci_log_as_a_command(
    arm: ArmEmulator, audit: Any, pytester: pytest.Pytester, verbosity: tuple[str, ...]
) -> None:
    arm.load(hostile_tenant())
    result = audit(
        "--azure-management-group=outer", *verbosity,
        "--azure-findings=out/findings.json", "--azure-findings-csv=out/findings.csv",
        "--azure-step-summary=out/summary.md", "--junitxml=out/junit.xml",
        "--azure-findings-ocsf=out/ocsf.json", "--azure-audit-html=out/audit.html",
        "--html=out/report.html", "--self-contained-html", "--azure-evidence=out/evidence.json",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    out = pytester.path / "out"
    written = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        **{p.name: p.read_text(encoding="utf-8") for p in sorted(Path(out).iterdir())},
    }
    assert set(written) == {"stdout", "stderr", "findings.json", "findings.csv", "summary.md",
                            "junit.xml", "ocsf.json", "audit.html", "report.html",
                            "evidence.json"}  # fmt: skip
    for name in ("stdout", "stderr"):
        assert command_lines(written[name]) == [], name
    for name, text in written.items():
        assert not any(c in text for c in INVISIBLE), name
    # Shown, not lost: the names are still there for a reader, escaped.
    assert "#\\#vso[task.setvariable variable=COMPLIANT]true" in written["stdout"]
    assert sub_id(2) in written["stdout"]
    findings = json.loads(written["findings.json"])["findings"]
    assert {f["subscription"]["name"] for f in findings} >= {HOSTILE}  # data kept whole
    assert {f["verdict"] for f in findings} == {"compliant", "not_compliant", "not_verifiable"}
    if verbosity == ("-rN",):
        assert "Every reason and how to fix it:" in written["stdout"]
    # A printed command still sends exactly what was read: the CI log sees no command in it.
    (command,) = {line.split("CLI: ", 1)[1] for line in written["stdout"].splitlines()
                  if "CLI: az rest" in line and sub_id(4) in line}  # fmt: skip
    words = shlex.split(command)
    assert json.loads(words[words.index("--body") + 1])["properties"]["phone"] == HOSTILE


def test_the_fix_command_prints_no_ci_log_command(
    arm: ArmEmulator, fake_az: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    arm.load(hostile_tenant())
    monkeypatch.chdir(tmp_path)
    code = main(["fix", "--azure-auth", "cli", "--azure-arm-endpoint", arm.url,
                 "--email", "soc@contoso.com"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1  # the subscription that cannot be read
    assert "Plan: 1 change to security contacts:" in out, out
    for text in (out, err):
        assert command_lines(text) == []
        assert not any(c in text for c in INVISIBLE)


def test_waiver_text_reaches_no_ci_log_as_a_command(
    arm: ArmEmulator, audit: Any, pytester: pytest.Pytester
) -> None:
    # A waivers file is the audited organisation's: for an auditor, someone else's text too.
    failing = {"name": "default", "properties": {**COMPLIANT_CONTACT, "emails": ""}}
    arm.load(tenant(subscription(sub_id(1), securityContacts=[failing])))
    said = json.dumps(HOSTILE, ensure_ascii=False)  # a TOML basic string, as JSON writes it
    waiver = "[[waiver]]\n" + "\n".join((
        f'subscription = "{sub_id(1)}"', 'control = "contact_email"', f"reason = {said}",
        f"approved_by = {said}",
    ))  # fmt: skip
    (pytester.path / "waivers.toml").write_text(
        f"{waiver}\nexpires = 2099-12-31\n{waiver}\nexpires = 2000-01-01\n", encoding="utf-8"
    )
    for verbosity in (("-v", "-ra"), ("-rA", "--tb=long")):
        result = audit("--azure-waivers=waivers.toml", *verbosity)
        text = result.stdout.str() + result.stderr.str()
        assert "XFAIL" in text and "expired waivers (ignored)" in text, text
        assert command_lines(text) == []
        assert not any(c in text for c in INVISIBLE)
