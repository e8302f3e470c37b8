"""OCSF Compliance Finding events, validated against the published OCSF 1.7.0 schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ocsf.v1_7_0.events import ComplianceFinding
from pydantic import BaseModel

import compliance.plugin
from conftest import CHECKS


def not_in_schema(model: Any, where: str = "event") -> list[str]:
    """Attributes the schema does not define, anywhere in the event (`unmapped` is OCSF's
    place for those, and may hold anything)."""
    found = []
    if isinstance(model, BaseModel):
        found += [f"{where}.{name}" for name in model.model_extra or {}]
        for name in type(model).model_fields:
            if name != "unmapped":
                found += not_in_schema(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for n, item in enumerate(model):
            found += not_in_schema(item, f"{where}[{n}]")
    return found


@pytest.fixture
def demo_events(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    """The demo's events, below the Contoso group (every outcome, with paths)."""
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--azure-demo", "--azure-management-group", "contoso",
        "--azure-findings-ocsf=events.jsonl", "--azure-findings=findings.json",
        plugins=[compliance.plugin],
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    findings = json.loads((pytester.path / "findings.json").read_text())["findings"]
    text = (pytester.path / "events.jsonl").read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines()]
    judged = [f for f in findings if f["verdict"] != "skipped"]
    assert len(events) == len(judged)  # one per judged case; skipped ones are not findings
    return events


def test_every_event_is_a_valid_compliance_finding(demo_events: list[dict[str, Any]]) -> None:
    requirements = 0
    for data in demo_events:
        event = ComplianceFinding.model_validate(data)
        assert not_in_schema(event) == [], data["finding_info"]["uid"]
        assert event.class_uid == 2003 and event.type_uid == 200301
        assert event.compliance is not None
        requirements += len(event.compliance.requirements or ())
    assert requirements  # the framework references were validated too, as the schema's strings


def test_events_carry_the_control_status_remediation_and_resource(
    demo_events: list[dict[str, Any]],
) -> None:
    by = {(e["resources"][0]["name"], e["compliance"]["control"]): e for e in demo_events}
    failing = by[("Fabrikam Marketing", "8.1.13")]
    assert failing["compliance"]["status"] == "Fail"
    assert failing["compliance"]["standards"] == [
        "CIS Microsoft Azure Foundations Benchmark v5.0.0"
    ]
    assert "python -m compliance fix --subscription" in failing["remediation"]["desc"]
    assert failing["compliance"]["requirements"][:2] == [
        "Microsoft cloud security benchmark: IR-2",
        "NIST SP 800-53 Rev. 5: IR-4",
    ]
    assert failing["resources"][0]["uid"] == "/subscriptions/5d9f0a1b-2c3d-4e5f-a6b7-c8d9e0f1a2b4"
    assert (
        failing["resources"][0]["group"]["name"]
        == "Tenant Root Group > Contoso > Landing Zones > Online"
    )
    passing = by[("Contoso Production", "8.1.13")]
    assert passing["compliance"]["status"] == "Pass" and "remediation" not in passing
    unverifiable = by[("Contoso Payroll", "8.1.13")]
    assert unverifiable["compliance"]["status"] == "Warning"
    waived = by[("Fabrikam Analytics", "8.1.13")]
    assert waived["status"] == "Suppressed" and waived["unmapped"]["waiver"]
    assert len({e["finding_info"]["uid"] for e in demo_events}) == len(demo_events)
