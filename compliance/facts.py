"""What a run was, as one typed value every report renders: its target, identity, criteria,
time and, when it did not finish, why.

The findings' `run`, JUnit's `azure.*` properties and OCSF read `to_dict()` (the keys and
values the findings schema v1 has always had); the HTML reports and the job summary read
`rows()`, the same facts labelled in plain words. Pure: nothing of pytest or Azure.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NONE = "-"  # how an empty fact is written in the findings and JUnit


@dataclass(frozen=True)
class RunFacts:
    target: str  # what was audited: a cloud, the demo tenant, a replayed bundle
    arm_endpoint: str
    tenant: str  # the tenant asked for, or the home tenants of what was audited
    identity: str  # who ran it, from its token's claims (never the token)
    auth: str
    api_versions: tuple[str, ...]  # the securityContacts api-versions the answers came at
    cis_version: str
    suite_version: str
    started: str  # ISO 8601, UTC
    duration_s: float
    subscriptions: int  # selected for the audit
    management_groups: tuple[str, ...] = ()  # the groups the run was scoped to
    waivers: str | None = None  # the waivers file
    baseline: str | None = None  # how the run compares with --azure-baseline
    error: str | None = None  # the run did not run, or did not finish: why
    interrupted: bool = False  # the error is that the run did not finish

    def to_dict(self) -> dict[str, Any]:
        """As the findings file's `run` holds it (and JUnit's `azure.<key>` properties)."""
        data: dict[str, Any] = {
            "target": self.target,
            "arm_endpoint": self.arm_endpoint,
            "tenant": self.tenant,
            "identity": self.identity,
            "auth": self.auth,
            "api_versions": ", ".join(self.api_versions) or NONE,
            "cis_version": self.cis_version,
            "suite_version": self.suite_version,
            "started": self.started,
            "duration_s": self.duration_s,
            "subscriptions": self.subscriptions,
            "management_groups": ", ".join(self.management_groups) or NONE,
            "waivers": self.waivers or NONE,
        }
        if self.baseline is not None:
            data["baseline"] = self.baseline
        if self.error is not None:
            data["error"] = self.error
        if self.interrupted:
            data["interrupted"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunFacts:
        """From to_dict() (a findings file's `run`)."""

        def listed(key: str) -> tuple[str, ...]:
            value = str(data.get(key, NONE))
            return () if value == NONE else tuple(v.strip() for v in value.split(","))

        return cls(
            target=str(data["target"]),
            arm_endpoint=str(data["arm_endpoint"]),
            tenant=str(data["tenant"]),
            identity=str(data["identity"]),
            auth=str(data["auth"]),
            api_versions=listed("api_versions"),
            cis_version=str(data["cis_version"]),
            suite_version=str(data["suite_version"]),
            started=str(data["started"]),
            duration_s=float(data["duration_s"]),
            subscriptions=int(data["subscriptions"]),
            management_groups=listed("management_groups"),
            waivers=None if data.get("waivers", NONE) == NONE else str(data["waivers"]),
            baseline=None if data.get("baseline") is None else str(data["baseline"]),
            error=None if data.get("error") is None else str(data["error"]),
            interrupted=data.get("interrupted") is True,
        )

    def rows(self) -> list[tuple[str, str]]:
        """The facts as a reader sees them: a label and a value each, in order."""
        return [
            (LABELS.get(key, key), str(value))
            for key, value in self.to_dict().items()
            if key != "interrupted"  # the error says so
        ]


# The facts' names as a reader sees them (the JUnit properties and findings keep the keys).
LABELS = {
    "target": "Audited",
    "arm_endpoint": "ARM endpoint",
    "tenant": "Tenant",
    "identity": "Identity",
    "auth": "Signed in with",
    "api_versions": "securityContacts api-version",
    "cis_version": "CIS Benchmark version",
    "suite_version": "Suite version",
    "started": "Started",
    "duration_s": "Duration (s)",
    "subscriptions": "Subscriptions",
    "management_groups": "Management groups audited",
    "waivers": "Waivers",
    "baseline": "Against the baseline",
    "error": "Error",
}


def utc_now() -> str:
    """The time in UTC, to the second, ISO 8601."""
    return _formatted(int(time.time()))


@functools.lru_cache(maxsize=1)  # formatted once a second: every case asks
def _formatted(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).isoformat()
