"""A synthetic audit of N subscriptions for the audit view at scale, judged by the real
verdict functions (compliance.assessment.assess) on contacts parsed by the real 2023 parser.

The mix is bench/run.py's first audit (per 20 subscriptions: 7 without contacts, 4 with an
address alone, 3 not notified of attack paths, 6 compliant), below a two-level hierarchy of
management groups, with every 97th subscription refused (403: not verifiable), every 50th
disabled (skipped) and every 31st's email control waived. Run as a script, it writes the
audit view of each size given and prints its size and the time it took to write (the best
of three):

    python testing/audit_tenant.py 2000 10000
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compliance.apiversions import API_2023  # noqa: E402
from compliance.apiversions import v2023_12_01_preview as v2023  # noqa: E402
from compliance.assessment import Evidence, assess  # noqa: E402
from compliance.contacts import RawResponse, SecurityContacts, Unverifiable  # noqa: E402
from compliance.controls import BENCHMARK_ONLY, CATALOGUE  # noqa: E402
from compliance.emulator import COMPLIANT_CONTACT  # noqa: E402
from compliance.facts import Coverage, RunFacts, Tenant  # noqa: E402
from compliance.findings import Finding, Outcome, WaiverFacts  # noqa: E402
from compliance.model import ManagementGroup, Subscription  # noqa: E402
from compliance.outputs import Report  # noqa: E402

TENANT = "00000000-0000-4000-8000-00000000b0b0"
COMPLIANT = COMPLIANT_CONTACT
EMAIL_ONLY = {"emails": "soc@contoso.com", "isEnabled": True}
NO_ATTACK_PATH = {**COMPLIANT, "notificationsSources": COMPLIANT["notificationsSources"][:1]}
SHAPES: list[dict[str, object] | None] = (
    [None] * 7 + [EMAIL_ONLY] * 4 + [NO_ATTACK_PATH] * 3 + [COMPLIANT] * 6
)
WAIVER = WaiverFacts(
    "active", "Sandbox without production data (RISK-1234)", "Jane Doe, CISO", "2027-06-30"
)


def sub_id(i: int) -> str:
    return f"{i:08x}-0000-4000-8000-{i:012x}"


def groups_of(i: int) -> tuple[ManagementGroup, ...]:
    unit, team = i % 10, i // 10 % 10
    return (
        ManagementGroup(TENANT, "Tenant Root Group"),
        ManagementGroup("org", "Org"),
        ManagementGroup(f"bu-{unit}", f"BU {unit}"),
        ManagementGroup(f"team-{unit}-{team}", f"Team {unit}.{team}"),
    )


def read_of(i: int, sid: str) -> SecurityContacts | Unverifiable:
    path = f"/subscriptions/{sid}/providers/Microsoft.Security/securityContacts"
    at = f"2026-12-01T00:{i // 60 % 60:02d}:{i % 60:02d}+00:00"
    if i % 97 == 5:
        body = json.dumps({"error": {"code": "AuthorizationFailed", "message": "no access"}})
        answer = RawResponse(path, 403, f"req-{i}", at, body)
        return Unverifiable(
            "could not read security contacts: HTTP 403 AuthorizationFailed: no access. The "
            "identity lacks read access to Defender for Cloud: assign it the Security Reader "
            f"role (least privilege; Reader also works) on /subscriptions/{sid}",
            (answer,),
            403,
        )
    shape = SHAPES[i % len(SHAPES)]
    value = [] if shape is None else [{"name": "default", "properties": shape}]
    answer = RawResponse(path, 200, f"req-{i}", at, json.dumps({"value": value}))
    contacts = tuple(v2023.parse(c["name"], c["properties"], "value") for c in value)
    return SecurityContacts(sid, API_2023, contacts, responses=(answer,))


def findings(count: int, *, groups: bool = True) -> list[Finding]:
    found: list[Finding] = []
    for i in range(count):
        sid = sub_id(i)
        state = "Disabled" if i % 50 == 7 else "Enabled"
        subscription = Subscription(
            sid, f"bench-{i:05d}", state, TENANT, groups_of(i) if groups else ()
        )
        if state == "Disabled":
            for control in CATALOGUE:
                found.append(
                    Finding(
                        subscription, control, "5.0.0", Outcome.SKIPPED,
                        "subscription is Disabled: its security contacts are not checked",
                    )
                )  # fmt: skip
            continue
        read = read_of(i, sid)
        assessment = assess(sid, read, BENCHMARK_ONLY, CATALOGUE)
        for control in CATALOGUE:
            verdict = assessment.verdicts.get(control.key)
            waiver = None
            if verdict is None:
                outcome, reason, fix = Outcome.NOT_VERIFIABLE, str(read), ()
            elif verdict.compliant:
                outcome, reason, fix = Outcome.COMPLIANT, verdict.reason, ()
            else:
                outcome, reason, fix = Outcome.NOT_COMPLIANT, verdict.reason, verdict.fix
                if i % 31 == 3 and control.key == "contact_email":
                    outcome, waiver = Outcome.WAIVED, WAIVER
            found.append(
                Finding(
                    subscription, control, "5.0.0", outcome, reason, fix, waiver,
                    assessment.evidence if verdict is not None else Evidence.of(read),
                    "2026-12-01T00:00:01+00:00",
                    raw_answers=() if outcome is Outcome.COMPLIANT else assessment.raw_answers,
                )
            )  # fmt: skip
    return found


def facts(count: int, *, groups: bool = True) -> RunFacts:
    skipped = len([i for i in range(count) if i % 50 == 7])
    unverifiable = len([i for i in range(count) if i % 97 == 5 and i % 50 != 7])
    return RunFacts(
        target="AzureCloud", arm_endpoint="https://management.azure.com", tenant=TENANT,
        identity="Audit pipeline (object id 0a0b0c0d-0000-4000-8000-00000000a0d1)",
        auth="azure-pipelines", api_versions=(API_2023,), cis_version="5.0.0",
        suite_version="0.1.0", started="2026-12-01T00:00:00+00:00", duration_s=60.0,
        subscriptions=count, management_groups=("org",) if groups else (),
        tenants=(Tenant(TENANT, "the identity's tenant, home tenant of every subscription"),),
        coverage=Coverage(
            visible=count, selected=count, audited=count - skipped - unverifiable,
            not_verifiable=unverifiable, skipped=skipped,
        ),
    )  # fmt: skip


def report(count: int, *, groups: bool = True) -> Report:
    return Report(
        facts(count, groups=groups),
        findings(count, groups=groups),
        scopes=("org",) if groups else (),
    )


def measure(counts: list[int]) -> None:
    from compliance.outputs import audit_view

    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            made = report(count)
            path = Path(tmp) / f"audit-{count}.html"
            took, cpu = [], []
            for _ in range(3):  # the best of three: the machine is shared
                started, used = time.perf_counter(), time.process_time()
                audit_view.write(path, made)
                took.append(time.perf_counter() - started)
                cpu.append(time.process_time() - used)
            size = path.stat().st_size
            print(
                f"{count} subscriptions: audit.html {size / 1e6:.2f} MB, written in "
                f"{min(took):.2f} s (CPU {min(cpu):.2f} s)"
            )


if __name__ == "__main__":
    measure([int(n) for n in sys.argv[1:]] or [2000, 10000])
