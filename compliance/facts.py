"""What a run was, as one typed value every report renders: what it audited and as whom
(scope, tenants, identity), what it judged by (criteria: the CIS version, the organisation's
policy, the waivers), what it covered (Coverage), when, and, when it did not finish, why.

The findings' `run` and OCSF read `to_dict()`, JUnit's testsuite properties `properties()`;
the HTML reports and the job summary read `rows()`, the same facts in plain words. Pure:
nothing of pytest or Azure.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compliance.controls import Policy
from compliance.findings import Finding, Outcome
from compliance.model import Subscription

NONE = "-"  # how an empty fact is written in the findings and JUnit

# How each --azure-auth signs in, in plain words.
SIGN_IN = {
    "default": "the first Azure credential that works (DefaultAzureCredential)",
    "cli": "the Azure CLI's sign-in (az login)",
    "environment": "a service principal from environment variables",
    "workload-identity": "workload identity federation",
    "managed-identity": "a managed identity",
    "azure-pipelines": "an Azure Pipelines service connection",
    "emulator": "the demo emulator's own token",
    "replay": "none: an offline replay of recorded answers",
}


@dataclass(frozen=True)
class Tenant:
    id: str
    role: str  # "signed-in tenant", "home tenant of 2 delegated subscriptions", ...


@dataclass(frozen=True)
class Coverage:
    """What the run covered, in subscriptions: every one visible to the identity is either
    selected or excluded (and why); every one selected is audited, not verifiable, skipped,
    or left out by -k/-m."""

    visible: int = 0  # in the identity's subscriptions list
    selected: int = 0  # chosen by the run's options (below its groups, named, not excluded)
    audited: int = 0  # every control selected judged
    not_verifiable: int = 0  # at least one control could not be verified
    skipped: int = 0  # disabled or deleted: not read
    # (why, how many) for visible subscriptions the options left out, and selected ones
    # that -k or -m left without a case
    excluded: tuple[tuple[str, int], ...] = ()
    shard: tuple[int, int] | None = None  # (K, N): shard K of N
    # A shard's run: every subscription the options chose before the shard took its part,
    # the listing all shards share (a merge lists what a missing shard would have audited).
    listing: tuple[Subscription, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = {
            "visible": self.visible,
            "selected": self.selected,
            "audited": self.audited,
            "not_verifiable": self.not_verifiable,
            "skipped": self.skipped,
            "excluded": {why: n for why, n in self.excluded},
            "shard": None if self.shard is None else f"{self.shard[0]}/{self.shard[1]}",
        }
        if self.shard is not None:
            data["listing"] = [s.to_dict() for s in self.listing]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Coverage:
        shard = data.get("shard")
        k, _, n = str(shard).partition("/")
        return cls(
            visible=int(data["visible"]),
            selected=int(data["selected"]),
            audited=int(data["audited"]),
            not_verifiable=int(data["not_verifiable"]),
            skipped=int(data["skipped"]),
            excluded=tuple((str(w), int(c)) for w, c in dict(data.get("excluded") or {}).items()),
            shard=None if shard is None else (int(k), int(n)),
            listing=tuple(Subscription.from_dict(s) for s in data.get("listing", ())),
        )

    def sentence(self) -> str:
        """`14 visible to the identity; 12 selected: 9 audited, 2 not verifiable, 1 skipped
        (disabled or deleted); 2 excluded (2 by --azure-exclude-subscription).`"""
        judged = [
            f"{self.audited} audited",
            *([f"{self.not_verifiable} not verifiable"] if self.not_verifiable else []),
            *([f"{self.skipped} skipped (disabled or deleted)"] if self.skipped else []),
        ]
        shard = f"shard {self.shard[0]} of {self.shard[1]}: " if self.shard else ""
        text = (
            f"{shard}{_subscriptions(self.visible)} visible to the identity; "
            f"{self.selected} selected: {', '.join(judged)}"
        )
        if self.excluded:
            total = sum(n for _, n in self.excluded)
            why = ", ".join(f"{n} {reason}" for reason, n in self.excluded)
            return f"{text}; {total} excluded ({why})."
        return f"{text}; none excluded."


def _subscriptions(n: int) -> str:
    return f"{n} subscription{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class RunFacts:
    target: str  # what was audited: a cloud, the demo tenant, a replayed bundle
    arm_endpoint: str
    tenant: str  # the tenant asked for, or the home tenants of what was audited
    identity: str  # who ran it, from its token's claims (never the token)
    auth: str  # the --azure-auth kind, "emulator" or "replay"
    api_versions: tuple[str, ...]  # the securityContacts api-versions the answers came at
    cis_version: str
    suite_version: str
    started: str  # ISO 8601, UTC
    duration_s: float
    subscriptions: int  # selected for the audit
    management_groups: tuple[str, ...] = ()  # the groups the run was scoped to
    pytest_selection: str | None = None  # -m and -k as given: which cases of them ran
    suite_commit: str | None = None  # the commit the suite was built from, where known
    signed_in_tenant: str | None = None  # the identity's tenant (its token's tid)
    tenants: tuple[Tenant, ...] = ()  # every tenant involved, labelled
    policy: Policy = field(default_factory=Policy)
    waivers: str | None = None  # the waivers file's name
    waivers_sha256: str | None = None
    evidence: str | None = None  # the evidence bundle's name, when one was written
    evidence_digest: str | None = None
    coverage: Coverage = field(default_factory=Coverage)
    baseline: str | None = None  # how the run compares with --azure-baseline
    cross_check: str | None = None  # Microsoft's verdicts beside ours, counted (None: not read)
    error: str | None = None  # the run did not run, or did not finish: why
    interrupted: bool = False  # the error is that the run did not finish
    incomplete: bool = False  # the error is that a merge lacks a shard, or holds one twice

    def to_dict(self) -> dict[str, Any]:
        """As the findings file's `run` holds it."""
        data: dict[str, Any] = {
            "target": self.target,
            "arm_endpoint": self.arm_endpoint,
            "tenant": self.tenant,
            "identity": self.identity,
            "auth": self.auth,
            "api_versions": ", ".join(self.api_versions) or NONE,
            "cis_version": self.cis_version,
            "suite_version": self.suite_version,
            "suite_commit": self.suite_commit,
            "started": self.started,
            "duration_s": self.duration_s,
            "subscriptions": self.subscriptions,
            "management_groups": ", ".join(self.management_groups) or NONE,
            "pytest_selection": self.pytest_selection,
            "waivers": self.waivers or NONE,
            "waivers_sha256": self.waivers_sha256,
            "signed_in_tenant": self.signed_in_tenant,
            "tenants": [{"id": t.id, "role": t.role} for t in self.tenants],
            "policy": {
                "required_contacts": list(self.policy.required_contacts),
                "allowed_contact_domains": list(self.policy.allowed_contact_domains),
                "min_alert_severity": self.policy.min_alert_severity,
                "min_attack_path_risk": self.policy.min_attack_path_risk,
            },
            "coverage": self.coverage.to_dict(),
        }
        if self.evidence is not None:
            data["evidence"] = self.evidence
            data["evidence_digest"] = self.evidence_digest
        if self.baseline is not None:
            data["baseline"] = self.baseline
        if self.cross_check is not None:
            data["cross_check"] = self.cross_check
        if self.error is not None:
            data["error"] = self.error
        if self.interrupted:
            data["interrupted"] = True
        if self.incomplete:
            data["incomplete"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunFacts:
        """From to_dict() (a findings file's `run`)."""

        def listed(key: str) -> tuple[str, ...]:
            value = str(data.get(key, NONE))
            return () if value == NONE else tuple(v.strip() for v in value.split(","))

        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None or value == NONE else str(value)

        policy = data.get("policy") or {}
        return cls(
            target=str(data["target"]),
            arm_endpoint=str(data["arm_endpoint"]),
            tenant=str(data["tenant"]),
            identity=str(data["identity"]),
            auth=str(data["auth"]),
            api_versions=listed("api_versions"),
            cis_version=str(data["cis_version"]),
            suite_version=str(data["suite_version"]),
            suite_commit=text("suite_commit"),
            started=str(data["started"]),
            duration_s=float(data["duration_s"]),
            subscriptions=int(data["subscriptions"]),
            management_groups=listed("management_groups"),
            pytest_selection=text("pytest_selection"),
            tenants=tuple(Tenant(str(t["id"]), str(t["role"])) for t in data.get("tenants", ())),
            policy=Policy(
                required_contacts=tuple(policy.get("required_contacts", ())),
                allowed_contact_domains=tuple(policy.get("allowed_contact_domains", ())),
                min_alert_severity=str(policy.get("min_alert_severity", "High")),
                min_attack_path_risk=str(policy.get("min_attack_path_risk", "High")),
            ),
            waivers=text("waivers"),
            waivers_sha256=text("waivers_sha256"),
            evidence=text("evidence"),
            evidence_digest=text("evidence_digest"),
            coverage=Coverage.from_dict(data["coverage"]) if "coverage" in data else Coverage(),
            baseline=text("baseline"),
            cross_check=text("cross_check"),
            error=text("error"),
            interrupted=data.get("interrupted") is True,
            incomplete=data.get("incomplete") is True,
            signed_in_tenant=text("signed_in_tenant"),
        )

    # --- in words -----------------------------------------------------------------------------

    def policy_words(self) -> str:
        p = self.policy
        return (
            f"required contacts: {', '.join(p.required_contacts) or 'none'}; allowed contact "
            f"domains: {', '.join(p.allowed_contact_domains) or 'any'}; alert emails from "
            f"severity {p.min_alert_severity} or lower; attack path emails from risk "
            f"{p.min_attack_path_risk} or lower"
        )

    def criteria(self) -> str:
        waivers = (
            f"waivers from {self.waivers} (SHA-256 {self.waivers_sha256})"
            if self.waivers
            else "no waivers"
        )
        return (
            f"CIS Microsoft Azure Foundations Benchmark {self.cis_version}; the organisation's "
            f"policy: {self.policy_words()}; {waivers}"
        )

    def scope(self) -> str:
        if self.error is not None and not (self.interrupted or self.incomplete):
            return f"nothing: the audit did not run ({self.target} was not asked)"
        where = (
            f"below management group{'s' if len(self.management_groups) > 1 else ''} "
            f"{', '.join(self.management_groups)}, "
            if self.management_groups
            else ""
        )
        return f"{self.target}, {where}{self.coverage.sentence()}"

    def tenant_words(self) -> str:
        return "; ".join(f"{t.id} ({t.role})" for t in self.tenants) or self.tenant

    def properties(self) -> dict[str, str]:
        """The facts as JUnit's testsuite properties (`azure.<key>`): one line each."""
        data = self.to_dict()
        data["tenants"] = self.tenant_words()
        data["policy"] = self.policy_words()
        data["coverage"] = self.coverage.sentence()
        return {key: "" if value is None else str(value) for key, value in data.items()}

    def rows(self) -> list[tuple[str, str]]:
        """The facts as a reader sees them, in plain words: a label and a value each."""
        rows = [
            ("Scope", self.scope()),
            ("Tenants", self.tenant_words()),
            ("Criteria", self.criteria()),
            ("Audited by", self.identity),
            ("Signed in with", SIGN_IN.get(self.auth, self.auth)),
            (
                "Read from",
                f"Azure Resource Manager at {self.arm_endpoint} (Defender for Cloud security "
                f"contacts, API version {', '.join(self.api_versions) or 'none answered'})",
            ),
        ]
        if self.evidence is not None:
            rows.append(("Evidence", f"{self.evidence} (digest {self.evidence_digest})"))
        if self.baseline is not None:
            rows.append(("Against the baseline", self.baseline))
        if self.cross_check is not None:
            rows.append(("Microsoft's verdict", self.cross_check))
        rows += [
            (
                "Suite version",
                self.suite_version
                + (f" (built from commit {self.suite_commit})" if self.suite_commit else ""),
            ),
            ("Started", self.started),
            ("Duration", f"{self.duration_s:g} s"),
        ]
        if self.error is not None:
            rows.append(("Error", self.error))
        return rows


def tenants(signed_in: str | None, subscriptions: Iterable[Subscription]) -> tuple[Tenant, ...]:
    """Every tenant the audit involved, labelled: the identity's own, and each home tenant of
    what it audited (a subscription delegated through Azure Lighthouse lives in its own)."""
    homes: dict[str, list[Subscription]] = {}
    for s in subscriptions:
        if s.tenant_id:
            homes.setdefault(s.tenant_id.lower(), []).append(s)
    found = []
    if signed_in:
        own = len(homes.pop(signed_in.lower(), []))
        home = f", home tenant of {_count(own, 'subscription')}" if own else ""
        found.append(Tenant(signed_in, f"the identity's tenant{home}"))
    for tenant_id, held in sorted(homes.items()):
        delegated = signed_in is not None and all(
            signed_in.lower() in (t.lower() for t in s.managed_by_tenants) for s in held
        )
        role = f"home tenant of {_count(len(held), 'subscription')}" + (
            " delegated to the identity's tenant (Azure Lighthouse)" if delegated else ""
        )
        found.append(Tenant(held[0].tenant_id or tenant_id, role))
    return tuple(found)


# Why a selected subscription was not judged: pytest's -k or -m left none of its cases.
NO_CASE = "left without a case by -k or -m"


def coverage(
    visible: int,
    selected: Sequence[Subscription],
    excluded: Iterable[tuple[str, int]],
    findings: Iterable[Finding],
    shard: tuple[int, int] | None = None,
    listing: tuple[Subscription, ...] = (),
) -> Coverage:
    """What a run covered, in subscriptions: `visible` to its identity, `selected` by its
    options (and `excluded` by them, with why), judged as `findings` say."""
    outcomes: dict[str, set[Outcome]] = {}
    for f in findings:
        outcomes.setdefault(f.subscription.id.lower(), set()).add(f.outcome)
    excluded = list(excluded)
    unjudged = sum(s.id.lower() not in outcomes for s in selected)
    if unjudged:
        excluded.append((NO_CASE, unjudged))
    return Coverage(
        visible=visible,
        selected=len(selected),
        audited=sum(
            Outcome.NOT_VERIFIABLE not in o and o != {Outcome.SKIPPED} for o in outcomes.values()
        ),
        not_verifiable=sum(Outcome.NOT_VERIFIABLE in o for o in outcomes.values()),
        skipped=sum(o == {Outcome.SKIPPED} for o in outcomes.values()),
        excluded=tuple(excluded),
        shard=shard,
        listing=listing,
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def utc_now() -> str:
    """The time in UTC, to the second, ISO 8601."""
    return _formatted(int(time.time()))


@functools.lru_cache(maxsize=1)  # formatted once a second: every case asks
def _formatted(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).isoformat()
