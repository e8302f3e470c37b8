"""Each control's references to other frameworks: what the cited published mappings say, and
in the findings JSON, the CSV and OCSF.

The ids below were read from these files (control ids are facts; nothing else is copied):

- Azure/azure-policy at f4a50bacae07ddb096943c597669bcae494a6e29 (release 3.2026.0417.1),
  under built-in-policies/policySetDefinitions/: the groupNames of the built-in policies
  4f4f78b8-e367-4b10-a341-d9a4ad5cf1c7 (contact email), 6e2593d9-add6-4083-9c9b-4b7d2188c899
  (high severity alerts) and 0b15565f-aa9e-48ba-8619-45960f2c314d (owner) in
  Security Center/AzureSecurityCenter.json ("Microsoft cloud security benchmark", groups
  Azure_Security_Benchmark_v3.0_*), Regulatory Compliance/NIST_SP_800-53_R5.json
  ("NIST SP 800-53 Rev. 5"), Regulatory Compliance/ISO_IEC_27002_2022.json and
  Regulatory Compliance/CIS_Controls_v8.1.json (neither includes the owner policy).
- mitre/azure-foundations-cis-baseline at 2c1a0103894efb47a498e0e3809b0e46975f66ab:
  controls/azure-foundations-cis-3.1.12.rb, -3.1.13.rb and -3.1.14.rb, `tag cis_controls`
  (CIS Azure Foundations 3.0.0's CIS Controls v8 mapping).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

import compliance.plugin
from compliance import cis
from compliance.controls import (
    ALERT_SEVERITY_POLICY,
    CATALOGUE,
    CONTACT_EMAIL_POLICY,
    OWNER_POLICY,
    Control,
)
from compliance.findings import Finding, Outcome
from compliance.model import ManagementGroup, Subscription
from conftest import CHECKS

README = Path(__file__).resolve().parent.parent / "README.md"

NIST = ("IR-4", "IR-5", "IR-6(2)", "SI-4(12)")
PUBLISHED: dict[str, dict[str, tuple[str, ...]]] = {
    "contact_email": {
        "Microsoft cloud security benchmark": ("IR-2",),
        "NIST SP 800-53 Rev. 5": NIST,
        "ISO/IEC 27002:2022": ("5.24", "5.26"),
        "CIS Controls v8": ("17.2",),
        "CIS Controls v8.1": ("4.1", "17.2"),
    },
    "alert_severity": {
        "Microsoft cloud security benchmark": ("IR-2",),
        "NIST SP 800-53 Rev. 5": NIST,
        "ISO/IEC 27002:2022": ("8.15", "8.16"),
        "CIS Controls v8": ("13.11",),
        "CIS Controls v8.1": ("4.1", "13.11"),
    },
    "owner_notifications": {
        "Microsoft cloud security benchmark": ("IR-2",),
        "NIST SP 800-53 Rev. 5": NIST,
        "CIS Controls v8": ("17.2",),
    },
    # No built-in Azure Policy checks attack path emails, and no published CIS Controls
    # mapping of CIS 4.0.0 9.1.15 / 5.0.0 8.1.15 was found.
    "attack_path_notifications": {},
}
POLICY = {
    "contact_email": CONTACT_EMAIL_POLICY,
    "alert_severity": ALERT_SEVERITY_POLICY,
    "owner_notifications": OWNER_POLICY,
}
AZURE_POLICY = (
    "https://github.com/Azure/azure-policy/blob/f4a50bacae07ddb096943c597669bcae494a6e29/"
    "built-in-policies/policySetDefinitions/"
)
INITIATIVE = {  # framework: its initiative's id and file
    "Microsoft cloud security benchmark": (
        "1f3afdf9-d0c9-4c3d-847f-89da613e70a8",
        "Security%20Center/AzureSecurityCenter.json",
    ),
    "NIST SP 800-53 Rev. 5": (
        "179d1daa-458f-4e47-8086-2a68d0d6c38f",
        "Regulatory%20Compliance/NIST_SP_800-53_R5.json",
    ),
    "ISO/IEC 27002:2022": (
        "e3030e83-88d5-4f23-8734-6577a2c97a32",
        "Regulatory%20Compliance/ISO_IEC_27002_2022.json",
    ),
    "CIS Controls v8.1": (
        "046796ef-e8a7-4398-bbe9-cce970b1a3ae",
        "Regulatory%20Compliance/CIS_Controls_v8.1.json",
    ),
}
MITRE = (
    "https://github.com/mitre/azure-foundations-cis-baseline/blob/"
    "2c1a0103894efb47a498e0e3809b0e46975f66ab/controls/azure-foundations-cis-"
)


def text(control: Control) -> str:
    return "; ".join(f"{fw}: {', '.join(ids)}" for fw, ids in PUBLISHED[control.key].items())


def as_data(control: Control, *, sources: bool = False) -> list[dict[str, Any]]:
    return [
        {"framework": r.framework, "controls": list(r.controls)}
        | ({"source": r.source} if sources else {})
        for r in control.references
    ]


@pytest.mark.parametrize("control", CATALOGUE, ids=lambda c: c.key)
def test_each_control_references_what_the_published_mappings_say(control: Control) -> None:
    assert {r.framework: r.controls for r in control.references} == PUBLISHED[control.key]
    assert len({r.framework for r in control.references}) == len(control.references)


@pytest.mark.parametrize("control", CATALOGUE, ids=lambda c: c.key)
def test_each_reference_cites_its_source_at_a_commit(control: Control) -> None:
    for ref in control.references:
        if ref.framework == "CIS Controls v8":
            # the benchmark's own mapping of this control's CIS 3.0.0 recommendation
            number = cis.number("3.0.0", control.key)
            assert ref.source.endswith(f"{MITRE}{number}.rb"), ref.source
            assert f"Azure Foundations Benchmark v3.0.0, recommendation {number}," in ref.source
        else:
            initiative, path = INITIATIVE[ref.framework]
            assert ref.source.endswith(f": {AZURE_POLICY}{path}"), ref.source
            assert f"({initiative}), built-in policy {POLICY[control.key]}:" in ref.source
        assert re.search(r"/blob/[0-9a-f]{40}/", ref.source)


def test_the_readme_lists_each_controls_references() -> None:
    section = README.read_text(encoding="utf-8").split(
        "\n### The same requirement in other frameworks\n", 1
    )[1]
    listed = {}
    for item in section.split("\n\n")[1].split("\n- "):
        key, _, said = " ".join(item.removeprefix("- ").split()).partition(": ")
        listed[key.strip("`")] = said
    assert listed == {
        c.key: "; ".join(r.text for r in c.references) or "none published (below)"
        for c in CATALOGUE
    }


def test_a_reference_reads_as_its_framework_and_ids() -> None:
    contact = CATALOGUE[0]
    assert contact.references[1].text == "NIST SP 800-53 Rev. 5: IR-4, IR-5, IR-6(2), SI-4(12)"


@pytest.mark.parametrize("control", CATALOGUE, ids=lambda c: c.key)
def test_a_finding_with_references_round_trips(control: Control) -> None:
    sub = Subscription("sub-1", "Sub 1", "Enabled", "t", (ManagementGroup("mg", "MG"),), ())
    finding = Finding(sub, control, "5.0.0", Outcome.NOT_COMPLIANT, "why")
    data = json.loads(json.dumps(finding.to_dict(raw=True)))
    assert data["control"]["references"] == as_data(control)
    assert Finding.from_dict(data) == finding
    assert Finding.from_dict(data).control.references == control.references


def test_references_reach_the_findings_csv_and_ocsf(pytester: pytest.Pytester) -> None:
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--azure-demo", "--azure-findings=findings.json",
        "--azure-findings-csv=findings.csv", "--azure-findings-ocsf=events.jsonl",
        plugins=[compliance.plugin],
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    by_key = {c.key: c for c in CATALOGUE}

    document = json.loads((pytester.path / "findings.json").read_text())
    findings = document["findings"]
    assert {f["control"]["key"] for f in findings} == set(by_key)
    for f in findings:
        assert f["control"]["references"] == as_data(by_key[f["control"]["key"]])
    # the sources once per file, not in each of thousands of findings
    assert document["references"] == {k: as_data(c, sources=True) for k, c in by_key.items()}

    with (pytester.path / "findings.csv").open(newline="") as out:
        rows = list(csv.DictReader(out))
    assert len(rows) == len(findings)
    for row in rows:
        assert row["references"] == text(by_key[row["control"]])
    email = next(r for r in rows if r["control"] == "contact_email")
    assert email["references"].startswith(
        "Microsoft cloud security benchmark: IR-2; NIST SP 800-53 Rev. 5: IR-4, IR-5, IR-6(2), "
        "SI-4(12); ISO/IEC 27002:2022: 5.24, 5.26; CIS Controls v8: 17.2; "
    )

    lines = (pytester.path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert {e["unmapped"]["control_key"] for e in events} == set(by_key)
    for event in events:
        control = by_key[event["unmapped"]["control_key"]]
        wanted = [f"{fw}: {i}" for fw, ids in PUBLISHED[control.key].items() for i in ids]
        assert event["compliance"].get("requirements", []) == wanted
    owner = next(e for e in events if e["unmapped"]["control_key"] == "owner_notifications")
    assert "NIST SP 800-53 Rev. 5: IR-6(2)" in owner["compliance"]["requirements"]
    attack = next(e for e in events if e["unmapped"]["control_key"].startswith("attack_path"))
    assert "requirements" not in attack["compliance"]
