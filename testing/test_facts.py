"""What a run was, in every report: its facts round-trip through the findings file, say
their scope, criteria and coverage in plain words, and label every tenant."""

from __future__ import annotations

import json

from compliance.controls import CATALOGUE, Policy
from compliance.facts import Coverage, RunFacts, Tenant, coverage, tenants
from compliance.findings import Finding, Outcome
from compliance.model import Subscription
from compliance.outputs.words import result_line

HOME = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-8888-4777-8666-555555555555"

FACTS = RunFacts(
    target="AzureCloud", arm_endpoint="https://management.azure.com", tenant=HOME,
    identity="Auditor (a@contoso.com, object id o)", auth="cli",
    api_versions=("2023-12-01-preview",), cis_version="5.0.0", suite_version="1.2.3",
    started="2026-12-06T00:00:00+00:00", duration_s=12.5, subscriptions=3,
    management_groups=("landing-zones",), tenants=(Tenant(HOME, "the identity's tenant"),),
    policy=Policy(("soc@contoso.com",), ("contoso.com",), "Medium", "High"),
    waivers="waivers.toml", waivers_sha256="ab" * 32, evidence="ev.json",
    evidence_digest="sha256:" + "cd" * 32,
    coverage=Coverage(10, 3, 1, 1, 1, (("excluded by --azure-exclude-subscription", 7),), (2, 4)),
    baseline="first.json: 1 new", error="the audit was interrupted by SIGTERM", interrupted=True,
)  # fmt: skip


def test_the_facts_round_trip_through_the_findings_file() -> None:
    assert RunFacts.from_dict(json.loads(json.dumps(FACTS.to_dict()))) == FACTS
    bare = RunFacts("x", "e", "-", "i", "cli", (), "5.0.0", "1", "now", 0.0, 0)
    assert RunFacts.from_dict(json.loads(json.dumps(bare.to_dict()))) == bare


def test_the_facts_in_plain_words() -> None:
    rows = dict(FACTS.rows())
    assert rows["Scope"] == (
        "AzureCloud, below management group landing-zones, shard 2 of 4: 10 subscriptions "
        "visible to the identity; 3 selected: 1 audited, 1 not verifiable, 1 skipped "
        "(disabled or deleted); 7 excluded (7 excluded by --azure-exclude-subscription)."
    )
    assert rows["Criteria"].startswith("CIS Microsoft Azure Foundations Benchmark 5.0.0; ")
    assert "required contacts: soc@contoso.com" in rows["Criteria"]
    assert "alert emails from severity Medium or lower" in rows["Criteria"]
    assert f"waivers from waivers.toml (SHA-256 {'ab' * 32})" in rows["Criteria"]
    assert rows["Signed in with"] == "the Azure CLI's sign-in (az login)"
    assert rows["Evidence"].startswith("ev.json (digest sha256:")
    assert rows["Error"] == FACTS.error
    properties = FACTS.properties()
    assert properties["tenants"] == f"{HOME} (the identity's tenant)"
    assert properties["coverage"].startswith("shard 2 of 4: 10 subscriptions visible")
    assert all("\n" not in v for v in properties.values())


def sub(n: int, tenant: str | None = HOME, *managers: str) -> Subscription:
    return Subscription(f"{n:08x}-0000-4000-8000-{n:012x}", f"s{n}", "Enabled", tenant, (),
                        managers)  # fmt: skip


def test_every_tenant_is_labelled() -> None:
    found = tenants(HOME, [sub(1), sub(2), sub(3, OTHER, HOME), sub(4, None)])
    assert found == (
        Tenant(HOME, "the identity's tenant, home tenant of 2 subscriptions"),
        Tenant(OTHER, "home tenant of 1 subscription delegated to the identity's tenant "
               "(Azure Lighthouse)"),
    )  # fmt: skip
    assert tenants(None, [sub(1, OTHER)]) == (Tenant(OTHER, "home tenant of 1 subscription"),)


def finding(subscription: Subscription, outcome: Outcome, control: int = 0) -> Finding:
    return Finding(subscription, CATALOGUE[control], "5.0.0", outcome, "why")


def test_coverage_counts_subscriptions_not_cases() -> None:
    a, b, c, d, e = (sub(n) for n in range(1, 6))
    findings = [
        finding(a, Outcome.COMPLIANT), finding(a, Outcome.NOT_COMPLIANT, 1),
        finding(b, Outcome.NOT_VERIFIABLE), finding(b, Outcome.COMPLIANT, 1),
        finding(c, Outcome.SKIPPED), finding(c, Outcome.SKIPPED, 1),
        finding(d, Outcome.WAIVED),
    ]  # fmt: skip
    excluded = (("not named by --azure-subscription", 2),)
    assert coverage(7, [a, b, c, d, e], excluded, findings) == Coverage(
        7, 5, 2, 1, 1,
        (("not named by --azure-subscription", 2), ("left without a case by -k or -m", 1)),
    )  # fmt: skip
    assert result_line(findings) == (
        "Not compliant: 2 of 3 subscriptions fail at least one control (1 only where a waiver "
        "accepts it); 1 could not be verified."
    )
    assert result_line([finding(a, Outcome.COMPLIANT)]) == (
        "Compliant: every control passes on the 1 subscription."
    )
    assert result_line([finding(b, Outcome.NOT_VERIFIABLE)]) == (
        "Not verified: none of 1 subscription fails a control; 1 could not be verified."
    )
    assert result_line([finding(c, Outcome.SKIPPED)]) == "No result: no subscription was judged."
