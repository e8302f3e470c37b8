"""Beyond one machine: shard K of N audits a stable part of the tenant, and a merge of every
shard is the audit one run would have written; a gap or a mix is never silent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

import compliance.plugin
from compliance.__main__ import main
from compliance.audit import Settings, selection, shard_of
from compliance.emulator import load_tenant
from compliance.model import Subscription
from conftest import CHECKS

DEMO = load_tenant("demo")
DEMO_SUBSCRIPTIONS = [  # the subscriptions list the demo identity sees
    Subscription(s.id, s.display_name, s.state, s.tenant_id)
    for s in DEMO.subscriptions
    if not s.hidden
]


def test_shards_split_the_selection_into_disjoint_parts_whose_union_is_the_whole() -> None:
    whole = {s.id for s in selection(DEMO_SUBSCRIPTIONS, Settings()).subscriptions}
    assert len(whole) == 14
    for n in range(1, 6):
        parts = [
            {s.id for s in selection(DEMO_SUBSCRIPTIONS, Settings(shard=(k, n))).subscriptions}
            for k in range(1, n + 1)
        ]
        assert sum(len(p) for p in parts) == len(whole), n  # disjoint
        assert set().union(*parts) == whole, n
    # stable: by the ID alone, whatever its case, on every machine
    assert shard_of("0B1F6471-1BF0-4DDA-AEC3-CB9272F09590", 4) == shard_of(
        "0b1f6471-1bf0-4dda-aec3-cb9272f09590", 4
    )
    assert [shard_of(f"{i:08x}-0000-4000-8000-{i:012x}", 5) for i in range(8)] == [
        shard_of(f"{i:08x}-0000-4000-8000-{i:012x}", 5) for i in range(8)
    ]


def test_a_shard_comes_after_every_other_selection_and_says_what_it_left_out() -> None:
    excluded = DEMO_SUBSCRIPTIONS[0].id
    chosen = selection(DEMO_SUBSCRIPTIONS, Settings(exclude=(excluded,), shard=(1, 2)))
    assert excluded not in {s.id for s in chosen.before_shard}
    assert len(chosen.before_shard) == 13
    assert dict(chosen.excluded) == {
        "excluded by --azure-exclude-subscription": 1,
        "in another shard than --azure-shard 1/2": 13 - len(chosen.subscriptions),
    }


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    return pytester.runpytest("-p", "no:cacheprovider", *args, plugins=[compliance.plugin])


def shard_runs(pytester: pytest.Pytester, n: int, *args: str) -> list[str]:
    """Run every shard of the demo; return their findings files."""
    files = []
    for k in range(1, n + 1):
        result = run(pytester, "--azure-demo", f"--azure-shard={k}/{n}",
                     f"--azure-findings=s{k}.json", f"--azure-evidence=e{k}.json",
                     *args)  # fmt: skip
        assert result.ret in (0, 1), result.stdout.str()
        files.append(str(pytester.path / f"s{k}.json"))
    return files


def verdicts(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    document = json.loads(path.read_text())
    return {
        (f["subscription"]["id"], f["control"]["key"]): (f["verdict"], f["reason"])
        for f in document["findings"]
    }


def junit_counts(path: Path) -> dict[str, str | None]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_merging_every_shard_gives_the_unsharded_audit(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], workers: list[str]
) -> None:
    whole = run(pytester, "--azure-demo", "--azure-findings=whole.json",
                "--junitxml=whole.xml", "--azure-findings-csv=whole.csv",
                "--azure-findings-ocsf=whole.ocsf.jsonl", "--azure-step-summary=whole.md",
                "--azure-audit-html=whole.html", *workers)  # fmt: skip
    assert whole.ret == pytest.ExitCode.TESTS_FAILED
    files = shard_runs(pytester, 3, *workers)
    for k, path in enumerate(files, 1):  # each shard states its coverage
        coverage = json.loads(Path(path).read_text())["run"]["coverage"]
        assert coverage["shard"] == f"{k}/3" and len(coverage["listing"]) == 14
    evidence = [a for k in range(1, 4) for a in ("--evidence", str(pytester.path / f"e{k}.json"))]
    code = main(["merge", str(pytester.path / "merged"), *files, *evidence])
    assert code == 1  # as the unsharded run: not compliant cases
    merged = pytester.path / "merged"
    assert verdicts(merged / "findings.json") == verdicts(pytester.path / "whole.json")
    one = json.loads((pytester.path / "whole.json").read_text())
    two = json.loads((merged / "findings.json").read_text())
    assert two["summary"] == one["summary"]
    assert two["run"]["coverage"] == {**one["run"]["coverage"]}
    assert junit_counts(merged / "junit.xml") == junit_counts(pytester.path / "whole.xml")
    # the same counts in every report
    from test_reports import audit_view_data, step_summary_counts

    assert step_summary_counts((merged / "summary.md").read_text()) == step_summary_counts(
        (pytester.path / "whole.md").read_text()
    )
    for name, whole_name in (
        ("findings.csv", "whole.csv"),
        ("findings.ocsf.jsonl", "whole.ocsf.jsonl"),
    ):
        assert len((merged / name).read_text().splitlines()) == len(
            (pytester.path / whole_name).read_text().splitlines()
        ), name
    view, whole_view = (
        audit_view_data(merged / "audit.html"),
        audit_view_data(pytester.path / "whole.html"),
    )
    assert [c["counts"] for c in view["controls"]] == [c["counts"] for c in whole_view["controls"]]
    bundle = json.loads((merged / "evidence.json").read_text())
    assert [s["shard"] for s in bundle["run"]["shards"]] == ["1/3", "2/3", "3/3"]
    assert two["run"]["evidence_digest"] == bundle["digest"]
    summary = (merged / "summary.md").read_text()
    assert "Not compliant&#58; 9 of 12 subscriptions fail at least one control" in summary
    out = capsys.readouterr().out
    assert "merge: 14 subscriptions visible to the identity; 14 selected" in out
    # the merged bundle replays offline to the same verdicts
    replay = run(pytester, f"--azure-replay={merged / 'evidence.json'}",
                 "--azure-findings=replay.json")  # fmt: skip
    assert replay.ret == pytest.ExitCode.TESTS_FAILED
    assert verdicts(pytester.path / "replay.json") == verdicts(pytester.path / "whole.json")


def test_a_missing_or_doubled_shard_fails_the_merge_and_says_so(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    files = shard_runs(pytester, 3)
    listing = json.loads(Path(files[0]).read_text())["run"]["coverage"]["listing"]
    lost = {s["id"] for s in listing} - set(
        key[0] for key in verdicts(Path(files[0])) | verdicts(Path(files[2]))
    )
    assert main(["merge", str(pytester.path / "gap"), files[0], files[2]]) == 1
    gap = json.loads((pytester.path / "gap" / "findings.json").read_text())
    assert "shard 2 of 3 is missing from the merge" in gap["run"]["error"]
    missing = {f["subscription"]["id"] for f in gap["findings"]
               if f["reason"].startswith("not audited: shard 2 of 3")}  # fmt: skip
    assert missing == lost and missing
    suite = ET.parse(pytester.path / "gap" / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert any(c.get("name") == "audit incomplete" for c in suite.iter("testcase"))
    assert "is incomplete" in (pytester.path / "gap" / "summary.md").read_text()
    assert "is incomplete" in (pytester.path / "gap" / "audit.html").read_text()

    assert main(["merge", str(pytester.path / "twice"), *files, files[1]]) == 1
    twice = json.loads((pytester.path / "twice" / "findings.json").read_text())
    assert "shard 2 of 3 was given twice" in twice["run"]["error"]
    assert Counter(f["verdict"] for f in twice["findings"]) == Counter(
        v for v, _ in verdicts(pytester.path / "gap" / "findings.json").values()
    ) - Counter({"not_verifiable": len(missing) * 4}) + Counter(
        v for v, _ in verdicts(Path(files[1])).values()
    )
    capsys.readouterr()


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (["--cis-version=3.0.0"], "CIS version"),
        (["--azure-min-alert-severity=Low"], "organisation's policy"),
        (["--azure-exclude-subscription=0b1f6471-1bf0-4dda-aec3-cb9272f09590"], "selection"),
        (["-m", "contact_email"], "pytest selection"),
    ],
)
def test_shards_judged_by_different_rules_are_refused(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], change: list[str], what: str
) -> None:
    first = run(pytester, "--azure-demo", "--azure-shard=1/2", "--azure-findings=a.json")
    second = run(pytester, "--azure-demo", "--azure-shard=2/2", "--azure-findings=b.json", *change)
    assert first.ret == second.ret == pytest.ExitCode.TESTS_FAILED
    code = main(["merge", str(pytester.path / "out"), "a.json", "b.json"])
    assert code == 4
    error = capsys.readouterr().err
    assert error.startswith(f"ERROR: merge: b.json was judged by another {what}")
    assert len(error.splitlines()) == 1
    # every report says the merge did not run (a stale merge must not look current)
    run_facts = json.loads((pytester.path / "out" / "findings.json").read_text())["run"]
    assert run_facts["error"].startswith("the merge did not run: b.json was judged by another")
    assert "the merge did not run" in (pytester.path / "out" / "summary.md").read_text()
    suite = ET.parse(pytester.path / "out" / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"


def test_an_empty_shard_ends_well_and_says_what_it_covered(pytester: pytest.Pytester) -> None:
    """More jobs than subscriptions: a shard with none is no failure, and no silent gap."""
    counts: Counter[int] = Counter(shard_of(s.id, 40) for s in DEMO_SUBSCRIPTIONS)
    empty = next(k for k in range(1, 41) if not counts[k])
    result = run(pytester, "--azure-demo", f"--azure-shard={empty}/40",
                 "--azure-findings=f.json", "--junitxml=j.xml")  # fmt: skip
    assert result.ret == pytest.ExitCode.OK
    document: dict[str, Any] = json.loads((pytester.path / "f.json").read_text())
    assert document["findings"] == []
    assert document["run"]["coverage"]["selected"] == 0
    assert document["run"]["coverage"]["shard"] == f"{empty}/40"
    assert junit_counts(pytester.path / "j.xml")["tests"] == "0"


def test_a_shard_that_is_not_one_is_refused(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    (pytester.path / "bad.json").write_text("[1, 2")
    assert main(["merge", str(pytester.path / "out"), "bad.json"]) == 4
    assert capsys.readouterr().err.startswith("ERROR: merge: bad.json: not valid JSON")


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_sharded_pipelines_shard_by_their_ci_variables_and_merge_every_shard(
    pytester: pytest.Pytester,
) -> None:
    """Both example pipelines pass their CI system's own job variables to --azure-shard, and
    their merge step, run as written on real shard artifacts, merges every shard."""
    github = yaml.safe_load((EXAMPLES / "github-actions-sharded.yml").read_text())
    audit = next(s["run"] for s in github["jobs"]["audit"]["steps"] if "pytest" in s.get("run", ""))
    assert '--azure-shard "$(( ${{ strategy.job-index }} + 1 ))/${{ strategy.job-total }}"' in audit
    assert github["jobs"]["audit"]["strategy"]["fail-fast"] is False
    assert (
        github["jobs"]["merge"]["needs"] == "audit" and github["jobs"]["merge"]["if"] == "always()"
    )
    azure = yaml.safe_load((EXAMPLES / "azure-pipelines-sharded.yml").read_text())
    jobs = {job["job"]: job for job in azure["jobs"]}
    script = next(s for s in jobs["audit"]["steps"] if s.get("task") == "AzureCLI@2")
    assert (
        "--azure-shard $(System.JobPositionInPhase)/$(System.TotalJobsInPhase)"
        in script["inputs"]["inlineScript"]
    )
    assert jobs["merge"]["dependsOn"] == "audit"

    # the merge steps, as written, on the artifacts of three shards
    files = shard_runs(pytester, 3)
    for k, path in enumerate(files, 1):
        shard = pytester.path / "shards" / f"shard-{k}"
        shard.mkdir(parents=True)
        Path(path).rename(shard / "findings.json")
        (pytester.path / f"e{k}.json").rename(shard / "evidence.json")
    merge = next(s["run"] for s in github["jobs"]["merge"]["steps"] if "merge" in s.get("run", ""))
    ado = next(s["script"] for s in jobs["merge"]["steps"] if "merge" in s.get("script", ""))
    ado = ado.replace("$(Pipeline.Workspace)", str(pytester.path))
    for name, text in (("github", merge), ("azure", ado)):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", text.replace("merge reports", f"merge {name}")],
            cwd=pytester.path, capture_output=True, text=True, check=False,
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        )  # fmt: skip
        assert done.returncode == 1, done.stderr  # the demo's not compliant cases
        bundle = json.loads((pytester.path / name / "evidence.json").read_text())
        assert [s["shard"] for s in bundle["run"]["shards"]] == ["1/3", "2/3", "3/3"]
        assert "incomplete" not in (pytester.path / name / "summary.md").read_text()


def test_cross_checked_shards_merge_with_microsofts_verdicts(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = run(pytester, "--azure-demo", "--azure-cross-check", "--azure-findings=whole.json")
    assert whole.ret == pytest.ExitCode.TESTS_FAILED
    files = shard_runs(pytester, 2, "--azure-cross-check")
    evidence = [a for k in (1, 2) for a in ("--evidence", str(pytester.path / f"e{k}.json"))]
    assert main(["merge", str(pytester.path / "merged"), *files, *evidence]) == 1

    def agreement(path: Path) -> dict[tuple[str, str], tuple[object, object]]:
        document = json.loads(path.read_text())
        return {
            (f["subscription"]["id"], f["control"]["key"]): (
                f["microsoft"]["status"], f["microsoft"]["agrees"]
            )
            for f in document["findings"]
        }  # fmt: skip

    merged = pytester.path / "merged" / "findings.json"
    assert agreement(merged) == agreement(pytester.path / "whole.json")
    assert (
        json.loads(merged.read_text())["run"]["cross_check"]
        == json.loads((pytester.path / "whole.json").read_text())["run"]["cross_check"]
    )
    # a shard without the cross-check does not merge with those that had it
    run(pytester, "--azure-demo", "--azure-shard=2/2", "--azure-findings=plain.json")
    assert main(["merge", str(pytester.path / "mixed"), files[0], "plain.json"]) == 4
    assert "cross-check" in capsys.readouterr().err


def test_a_shard_that_did_not_run_makes_the_merge_incomplete_not_refused(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """The common CI failure: one job's sign-in fails. Its shard's subscriptions are listed as
    not audited and the merge fails (exit 1); nothing about the others is refused."""
    files = shard_runs(pytester, 2)
    broken = run(pytester, "--azure-demo", "--azure-shard=2/2", "--azure-waivers=missing.toml",
                 "--azure-findings=broken.json")  # fmt: skip
    assert broken.ret == pytest.ExitCode.USAGE_ERROR
    assert main(["merge", str(pytester.path / "out"), files[0], "broken.json"]) == 1
    document = json.loads((pytester.path / "out" / "findings.json").read_text())
    assert (
        "shard 2 of 2 did not run (the audit did not run: --azure-waivers"
        in (document["run"]["error"])
    )
    lost = {f["subscription"]["id"] for f in document["findings"]
            if f["reason"].startswith("not audited: shard 2 of 2 did not run")}  # fmt: skip
    assert lost == {s.id for s in DEMO_SUBSCRIPTIONS if shard_of(s.id, 2) == 2}
    assert len(document["findings"]) == 14 * 4
    capsys.readouterr()


def test_a_shard_that_left_cases_unjudged_makes_the_merge_incomplete(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shard interrupted by -x, say, judged only some of its cases: the rest are not
    audited, and the merge says so."""
    files = shard_runs(pytester, 2)
    document = json.loads(Path(files[1]).read_text())
    dropped = document["findings"].pop()
    Path(files[1]).write_text(json.dumps(document))
    assert main(["merge", str(pytester.path / "out"), *files]) == 1
    merged = json.loads((pytester.path / "out" / "findings.json").read_text())
    assert (
        "shard 2 of 2 (" in merged["run"]["error"] and "left it unjudged" in merged["run"]["error"]
    )
    (back,) = [f for f in merged["findings"]
               if (f["subscription"]["id"], f["control"]["key"])
               == (dropped["subscription"]["id"], dropped["control"]["key"])]  # fmt: skip
    assert back["verdict"] == "not_verifiable" and back["reason"].startswith("not audited")
    capsys.readouterr()


def test_a_merged_bundle_needs_every_shards_bundle(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    files = shard_runs(pytester, 2)
    code = main(["merge", str(pytester.path / "out"), *files,
                 "--evidence", str(pytester.path / "e1.json")])  # fmt: skip
    assert code == 4
    assert "--evidence: no bundle of shard 2 of 2" in capsys.readouterr().err
