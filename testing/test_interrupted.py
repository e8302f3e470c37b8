"""An interrupted, stopped or killed run never looks complete, and never loses a report.

CI cancels a job with SIGINT and SIGTERM (GitHub sends SIGINT first, Azure Pipelines
SIGTERM), kills it when the grace period ends, and publishes its reports with `always()`.
These runs are real pytest processes against the emulator, signalled from outside.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from compliance.emulator import ArmEmulator
from conftest import CHECKS, ROOT, subscription, tenant


def sub_id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-00000000beef"


# Every file a run writes, as the options name them.
REPORTS = {
    "--junitxml": "junit.xml",
    "--html": "report.html",
    "--azure-findings": "findings.json",
    "--azure-findings-csv": "findings.csv",
    "--azure-findings-ocsf": "findings.ocsf.jsonl",
    "--azure-evidence": "evidence.json",
    "--azure-audit-html": "audit.html",
    "--azure-step-summary": "summary.md",
}


# The run as CI starts it: SIGINT handled as Python does by default. A shell that starts a
# job in the background (`cmd &` without job control) makes it, and everything it starts,
# ignore SIGINT; run from there, this test would signal a run that may not hear it.
AS_CI_STARTS_IT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'pytest', *sys.argv[1:]])"
)


def audit_process(arm: ArmEmulator, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """The real checks in a pytest process of their own, every report in cwd/out."""
    shutil.copy(CHECKS, cwd / CHECKS.name)
    reports = [f"{flag}=out/{name}" for flag, name in REPORTS.items()]
    command = [
        sys.executable, "-c", AS_CI_STARTS_IT, "-p", "compliance.plugin", "-p", "no:cacheprovider",
        "--azure-auth", "cli", "--azure-arm-endpoint", arm.url, *reports, *args,
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class Output:
    """The run's output, read as it comes (a pipe nobody reads would stall the run)."""

    def __init__(self, process: subprocess.Popen[str], word: str, count: int) -> None:
        self.lines: list[str] = []
        self.seen = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(process, word, count))
        self._thread.start()

    def _read(self, process: subprocess.Popen[str], word: str, count: int) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                self.lines.append(line)
                count -= word in line
                if count <= 0:
                    self.seen.set()

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def whole_reports(out: Path) -> dict[str, Any]:
    """Every report, parsed: a half-written one fails here."""
    parsed: dict[str, Any] = {}
    for name in REPORTS.values():
        text = (out / name).read_text(encoding="utf-8")
        if name.endswith(".json"):
            parsed[name] = json.loads(text)
        elif name.endswith(".jsonl"):
            parsed[name] = [json.loads(line) for line in text.splitlines()]
        elif name.endswith(".xml"):
            parsed[name] = ET.fromstring(text)
        elif name.endswith(".csv"):
            parsed[name] = list(csv.DictReader(io.StringIO(text, newline="")))
        else:
            assert name.endswith(".md") or text.rstrip().endswith("</html>"), name
            parsed[name] = text
    return parsed


STALL = [{"status": 200, "dribble": 3, "body": json.dumps({"value": []})}]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", ["reading", "judging"])
def test_a_signal_ends_the_run_within_seconds_and_every_report_says_interrupted(
    arm: ArmEmulator, fake_az: Path, tmp_path: Path, signum: int, phase: str
):
    # "reading": the cases wait for contacts still on the network (a stalled answer);
    # "judging": everything is read, the cases run one after another.
    quick = 12 if phase == "reading" else 1000  # 1,000: read by a child process
    entries = [subscription(sub_id(n)) for n in range(quick)]
    if phase == "reading":
        entries += [subscription(sub_id(n), faults=STALL) for n in range(quick, quick + 20)]
    arm.load(tenant(*entries))
    process = audit_process(arm, tmp_path, "-v", "--tb=short")
    output = Output(process, " PASSED", 8 * 4)
    try:
        assert output.seen.wait(timeout=60), output.text()
        process.send_signal(signum)
        signalled = time.monotonic()
        process.wait(timeout=30)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert took < 10, f"the run took {took:.1f} s to end after {signum!r}"
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output.text()

    reports = whole_reports(tmp_path / "out")
    findings = reports["findings.json"]
    assert findings["run"]["error"].startswith("the audit was interrupted by SIG")
    verdicts = Counter(f["verdict"] for f in findings["findings"])
    assert sum(verdicts.values()) == len(entries) * 4  # every case, judged or not
    assert verdicts["compliant"] >= 8 * 4
    never = [f for f in findings["findings"] if f["verdict"] == "not_verifiable"]
    assert never, verdicts
    assert all(f["reason"].startswith("not judged: the audit was interrupted") for f in never)
    if phase == "reading":  # nothing stalled was judged
        stalled = {sub_id(n) for n in range(quick, quick + 20)}
        assert {f["subscription"]["id"] for f in never} >= stalled

    junit = reports["junit.xml"].find("testsuite")
    assert junit is not None
    assert int(junit.get("errors")) == len(never) + 1  # and the run's own errored case
    names = {c.get("name") for c in junit.iter("testcase")}
    assert "audit interrupted" in names
    properties = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert properties["azure.error"] == findings["run"]["error"]
    for name in ("report.html", "audit.html", "summary.md"):
        assert "the audit was interrupted by SIG" in reports[name], name
    assert reports["evidence.json"]["run"]["error"] == findings["run"]["error"]
    assert len(reports["findings.ocsf.jsonl"]) >= len(never)
    assert len(reports["findings.csv"]) == len(entries) * 4


def test_stopping_early_with_x_is_interrupted_not_complete(
    arm: ArmEmulator, fake_az: Path, tmp_path: Path
):
    failing = subscription(sub_id(1), securityContacts=[])
    arm.load(tenant(subscription(sub_id(0)), failing, subscription(sub_id(2))))
    process = audit_process(arm, tmp_path, "-x", "-q")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "stopping after 1 failures" in output
    findings = whole_reports(tmp_path / "out")["findings.json"]
    assert (
        "interrupted by pytest stopping early (stopping after 1 failures)"
        in (findings["run"]["error"])
    )
    assert len(findings["findings"]) == 12


def test_sigkill_while_reports_are_written_leaves_each_earlier_report_whole(
    arm: ArmEmulator, fake_az: Path, tmp_path: Path
):
    arm.load(tenant(*(subscription(sub_id(n)) for n in range(300))))
    first = audit_process(arm, tmp_path, "-q")
    first.communicate(timeout=120)
    out = tmp_path / "out"
    earlier = {name: (out / name).read_bytes() for name in REPORTS.values()}
    whole_reports(out)
    killed_in_writing = 0
    for delay in (0.0, 0.05, 0.1, 0.2, 0.4):
        process = audit_process(arm, tmp_path, "-q")
        try:
            # The write phase starts when the first report's temporary file appears.
            ends = time.monotonic() + 120
            while process.poll() is None and not any(out.glob(".*.part")):
                assert time.monotonic() < ends
                time.sleep(0.001)
            time.sleep(delay)
            process.kill()
            killed_in_writing += process.wait() == -signal.SIGKILL
        finally:
            if process.stdout:
                process.stdout.close()
        reports = whole_reports(out)  # each parses: old or new, never half
        for name, before in earlier.items():
            now = (out / name).read_bytes()
            if now != before:  # replaced whole by this run's
                assert name != "findings.json" or len(reports[name]["findings"]) == 1200
        for temporary in out.glob(".*.part"):
            temporary.unlink()  # what a killed writer leaves: never a report's name
    assert killed_in_writing >= 3
