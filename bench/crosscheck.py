"""What --azure-cross-check costs: the same tenant audited plainly and cross-checked, one
after the other in one run of this script, against the ARM emulator (bench/README.md,
"The cross-check's cost").

Each suite run is a subprocess (the real suite, the real AzureCliCredential with a fake
`az`) against an emulator in this process that answers every request after `--latency`.
Printed: wall time, the read phase the suite reports, requests by kind, and the ratios of
the cross-checked run to the plain one. Times are printed, never asserted; `--check`
asserts only counts and outcomes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compliance.audit import DEFAULT_CONCURRENCY  # noqa: E402
from compliance.emulator import ArmEmulator, tenant_from_json  # noqa: E402
from compliance.emulator.fake_az import install_fake_az  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from run import make_tenant  # noqa: E402  # bench/run.py's tenant: one mix for every scenario

READ = re.compile(r"security contacts(?: \(and Defender for Cloud's assessments\))? of \d+ "
                  r"subscriptions read in ([\d.]+)s")  # fmt: skip


def kind(path: str) -> str:
    if "/assessmentMetadata/" in path:
        return "metadata"
    if "/assessments/" in path:
        return "assessments"
    if path.endswith("/securityContacts"):
        return "contacts"
    return "subscriptions"


def outcomes(junit: Path) -> dict[str, str]:
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        found[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return found


def audit(arm: ArmEmulator, env: dict[str, str], work: Path, name: str, *extra: str) -> dict:
    """One suite run on the loaded tenant, the README's command for large tenants (the
    audit view and JUnit, no pytest-html), every control."""
    arm.clear()
    junit = work / f"{name}.xml"
    args = [
        sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider", "--html=",
        "-p", "no:logging", "--azure-auth", "cli", "--azure-arm-endpoint", arm.url,
        f"--junitxml={junit}", f"--azure-audit-html={work / name}.html", *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    match = READ.search(done.stdout)
    return {
        "wall": wall,
        "read": float(match.group(1)) if match else float("nan"),
        "requests": Counter(kind(r.path) for r in arm.requests),
        "methods": {r.method for r in arm.requests},
        "outcomes": outcomes(junit),
        "status": done.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="subscriptions (default 1000)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds a request takes")
    parser.add_argument("--small", action="store_true", help="200 subscriptions")
    parser.add_argument("--check", action="store_true", help="assert counts and outcomes")
    args = parser.parse_args()
    count = 200 if args.small else args.count
    with tempfile.TemporaryDirectory(prefix="bench-crosscheck-") as tmp:
        work = Path(tmp)
        arm = ArmEmulator(subscriptions_page_size=1000).start()
        try:
            bin_dir = install_fake_az(work / "bin").parent
            env = {
                **os.environ,
                "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                "FAKE_AZ_TOKEN": arm.token,
                "REQUESTS_CA_BUNDLE": arm.ca_path,
                "PYTHONPATH": str(ROOT),
            }
            arm.load(tenant_from_json(make_tenant(count)))
            arm.latency = args.latency
            plain = audit(arm, env, work, "plain")
            checked = audit(arm, env, work, "checked", "--azure-cross-check")
        finally:
            arm.stop()
    read = count - len(range(7, count, 50))  # every subscription but the Disabled ones
    rows = [("run", "wall", "read phase", "requests", "ideal read (requests x L / C)")]
    for name, measured in (("plain", plain), ("--azure-cross-check", checked)):
        requests = measured["requests"]
        reads = sum(n for k, n in requests.items() if k != "subscriptions")
        ideal = reads * args.latency / DEFAULT_CONCURRENCY
        rows.append((
            name,
            f"{measured['wall']:.1f}s",
            f"{measured['read']:.2f}s",
            ", ".join(f"{k} {n}" for k, n in sorted(requests.items())),
            f"{ideal:.2f}s",
        ))  # fmt: skip
    total = [sum(m["requests"].values()) for m in (plain, checked)]
    rows.append((
        "cross-checked / plain",
        f"{checked['wall'] / plain['wall']:.2f}x",
        f"{checked['read'] / plain['read']:.2f}x",
        f"{total[1] / total[0]:.2f}x ({total[1] - total[0]:+d})",
        "",
    ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"N={count}, {args.latency * 1000:g} ms per request, concurrency {DEFAULT_CONCURRENCY}")
    for n, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    if args.check:
        assert plain["methods"] == checked["methods"] == {"GET"}
        assert checked["requests"]["assessments"] == 3 * read, checked["requests"]
        assert checked["requests"]["metadata"] == 3
        assert plain["requests"]["assessments"] == plain["requests"]["metadata"] == 0
        assert checked["outcomes"] == plain["outcomes"], "the cross-check changed a verdict"
        assert plain["status"] == checked["status"] == 1
        print("check: counts and outcomes as expected")


if __name__ == "__main__":
    main()
