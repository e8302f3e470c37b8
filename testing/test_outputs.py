"""Where reports go: each is written whole or not at all, a report that cannot be written is
one ERROR: line (the others still written), and paths that would lose a report are refused
before the audit starts."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from compliance.emulator import ArmEmulator
from compliance.writing import beside, replaced, write_text
from conftest import subscription, tenant

SUB = "0000000a-0000-4000-8000-000000000001"


@pytest.fixture
def one_subscription(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB)))


Audit = Callable[..., pytest.RunResult]


def error_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stderr.lines if line.startswith("ERROR:")]


@pytest.mark.usefixtures("one_subscription")
@pytest.mark.parametrize("flag", ["--junitxml", "--html", "--azure-findings-csv"])
def test_a_full_disk_is_one_error_line_and_the_other_reports_are_written(
    audit: Audit, pytester: pytest.Pytester, flag: str
):
    others = [
        f"{f}=out/{name}"
        for f, name in (
            ("--junitxml", "junit.xml"),
            ("--html", "report.html"),
            ("--azure-findings-csv", "findings.csv"),
        )
        if f != flag
    ]
    result = audit(f"{flag}=/dev/full", "--azure-findings=out/findings.json", *others)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    full = "No space left on device"
    assert error_lines(result) == [f"ERROR: {flag}: cannot write /dev/full: {full}"]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    out = pytester.path / "out"
    assert len(json.loads((out / "findings.json").read_text())["findings"]) == 4
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(
        ["findings.json", *(o.split("/")[-1] for o in others)]
    )


@pytest.mark.usefixtures("one_subscription")
@pytest.mark.parametrize("flag", ["--junitxml", "--html", "--azure-findings"])
def test_an_output_under_a_regular_file_is_refused_before_the_audit(
    audit: Audit, pytester: pytest.Pytester, arm: ArmEmulator, flag: str
):
    (pytester.path / "taken").write_text("a file, not a folder")
    result = audit(f"{flag}=taken/report")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {flag}: cannot create taken" in result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert not arm.requests  # refused before Azure was asked anything


@pytest.mark.usefixtures("one_subscription")
def test_two_outputs_naming_one_file_are_refused(audit: Audit, arm: ArmEmulator):
    result = audit("--junitxml=out/x", "--azure-findings=out/../out/x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert error_lines(result) == [
        "ERROR: --azure-findings out/../out/x: --junitxml names the same file; give each its own"
    ]
    assert not arm.requests


@pytest.mark.usefixtures("one_subscription")
def test_an_output_naming_the_bundle_being_replayed_is_refused(
    audit: Audit, pytester: pytest.Pytester
):
    assert audit("--azure-evidence=evidence.json").ret == pytest.ExitCode.OK
    recorded = (pytester.path / "evidence.json").read_bytes()
    pytester.makeini("[pytest]\nazure_evidence = evidence.json\n")
    result = audit("--azure-replay", "evidence.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--azure-replay (the bundle being replayed) names the same file" in result.stderr.str()
    assert (pytester.path / "evidence.json").read_bytes() == recorded


def test_a_failed_write_leaves_the_earlier_file_and_no_temporary(tmp_path: Path):
    report = tmp_path / "report.json"
    report.write_text("the earlier report")
    with pytest.raises(OSError), replaced(report) as out:
        out.write("half of the new one")
        raise OSError(28, "No space left on device")
    assert report.read_text() == "the earlier report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_written_file_replaces_the_earlier_whole_with_the_usual_mode(tmp_path: Path):
    report = tmp_path / "new" / "report.json"
    write_text(report, "one")
    write_text(report, "two")
    assert report.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert report.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in report.parent.iterdir()] == ["report.json"]


def test_a_target_that_is_not_a_regular_file_is_written_as_it_is():
    with beside(Path(os.devnull)) as path:
        assert path == Path(os.devnull)
        path.write_text("nothing")
    assert Path(os.devnull).is_char_device()


def test_two_runs_writing_one_report_together_leave_one_of_them_whole(tmp_path: Path):
    report = tmp_path / "findings.csv"
    ready = threading.Barrier(2)

    def run(tenant: str) -> None:
        with replaced(report) as out:
            ready.wait()
            for row in range(2000):  # row by row, as the CSV writer writes
                out.write(f"{tenant},{row}\n")

    writers = [threading.Thread(target=run, args=(t,)) for t in ("tenant-a", "tenant-b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    tenants = {line.split(",")[0] for line in report.read_text().splitlines()}
    assert len(tenants) == 1
    assert len(report.read_text().splitlines()) == 2000
