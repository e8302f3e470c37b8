"""The suite's speed and memory, measured against the ARM emulator (see bench/README.md).

Every scenario runs the real suite in a subprocess against an emulator in this process,
then prints wall time, requests by path, connections, peak RSS and a ratio. Times are
reported, never asserted; `--check` asserts only counts and outcomes (CI runs `--small
--check` so the benchmark cannot rot).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compliance.audit import DEFAULT_CONCURRENCY  # noqa: E402
from compliance.emulator import COMPLIANT_CONTACT, ArmEmulator, Fault, tenant_from_json  # noqa: E402
from compliance.emulator.fake_az import install_fake_az  # noqa: E402

CONTACTS = "/providers/Microsoft.Security/securityContacts"
# The README's command for large tenants (section "Large tenants and pytest-xdist"), less the
# `pytest` the benchmark runs itself.
LARGE_TENANT = ("--html=", "-p", "no:logging")
GROUPS = "/providers/Microsoft.Management/managementGroups/"


def make_tenant(count: int) -> dict[str, object]:
    """`count` subscriptions: most compliant, every 10th without contacts (fails), every
    50th Disabled (skipped), every 97th forbidden (error)."""
    subscriptions = []
    for i in range(count):
        entry: dict[str, object] = {
            "subscriptionId": f"{i:08x}-0000-4000-8000-{i:012x}",
            "displayName": f"bench-{i:05d}",
            "securityContacts": [{"name": "default", "properties": COMPLIANT_CONTACT}],
        }
        if i % 10 == 3:
            entry["securityContacts"] = []
        if i % 50 == 7:
            entry["state"] = "Disabled"
        if i % 97 == 5:
            entry["faults"] = [{"status": 403, "code": "AuthorizationFailed"}]
        subscriptions.append(entry)
    return {"tenantId": "00000000-0000-4000-8000-00000000b0b0", "subscriptions": subscriptions}


def first_audit_tenant(count: int) -> dict[str, object]:
    """`count` subscriptions as a first audit finds them (four controls, most failing):
    35 % without contacts (all four fail), 20 % with an email alone (three fail), 15 % not
    notified of attack paths (one fails), 30 % compliant."""
    email_only: dict[str, object] = {"emails": "soc@contoso.com", "isEnabled": True}
    no_attack_path: dict[str, object] = {
        **COMPLIANT_CONTACT,
        "notificationsSources": COMPLIANT_CONTACT["notificationsSources"][:1],
    }
    shapes: list[dict[str, object] | None] = (
        [None] * 7 + [email_only] * 4 + [no_attack_path] * 3 + [COMPLIANT_CONTACT] * 6
    )
    subscriptions = []
    for i in range(count):
        shape = shapes[i % len(shapes)]
        subscriptions.append({
            "subscriptionId": f"{i:08x}-0000-4000-8000-{i:012x}",
            "displayName": f"bench-{i:05d}",
            "securityContacts": [] if shape is None else [{"name": "default", "properties": shape}],
        })  # fmt: skip
    return {"tenantId": "00000000-0000-4000-8000-00000000b0b0", "subscriptions": subscriptions}


def hierarchy_tenant(count: int) -> dict[str, object]:
    """make_tenant's subscriptions in a management-group hierarchy: Org, 10 business units
    below it, 10 teams below each, the subscriptions spread over the teams."""
    tenant = make_tenant(count)
    groups: list[dict[str, str]] = [{"name": "org", "displayName": "Org"}]
    for unit in range(10):
        groups.append({"name": f"bu-{unit}", "displayName": f"BU {unit}", "parent": "org"})
        groups += [
            {"name": f"team-{unit}-{t}", "displayName": f"Team {unit}.{t}", "parent": f"bu-{unit}"}
            for t in range(10)
        ]
    for i, entry in enumerate(tenant["subscriptions"]):  # type: ignore[attr-defined]
        entry["managementGroup"] = f"team-{i % 10}-{i // 10 % 10}"
    return {**tenant, "managementGroups": groups}


@dataclass
class Measured:
    wall: float
    peak_rss_mib: float
    outcomes: Counter[str]
    stdout: str
    requests: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    per_case: dict[str, str] = field(default_factory=dict)
    cpu: float = 0.0


@dataclass
class Run:
    """One subprocess: wall and CPU seconds (its children included), peak RSS in MiB of
    the whole process tree (pytest-xdist's workers included), and its output."""

    wall: float
    cpu: float
    peak_rss_mib: float
    output: str
    returncode: int = 0


def run_measured(args: list[str], env: dict[str, str], cwd: Path) -> Run:
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = [0]
        done = threading.Event()
        sampler = threading.Thread(target=_sample_tree, args=(process.pid, peak, done))
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        out.seek(0)
        return Run(
            wall,
            usage.ru_utime + usage.ru_stime,
            max(peak[0], usage.ru_maxrss) / 1024,
            out.read(),
            os.waitstatus_to_exitcode(status),
        )


def _sample_tree(root: int, peak: list[int], done: threading.Event) -> None:
    """The largest sum of resident set sizes (KiB) of `root` and its descendants seen."""
    while not done.wait(0.1):
        parents: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # it ended meanwhile
            pid = int(stat.parent.name)
            parents.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
        tree, total = [root], 0
        while tree:
            pid = tree.pop()
            total += rss.get(pid, 0)
            tree.extend(parents.get(pid, []))
        peak[0] = max(peak[0], total)


def junit_outcomes(path: Path) -> dict[str, str]:
    """Each case's outcome, by its class (the control) and name (the subscription)."""
    outcome = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return outcome


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.arm = ArmEmulator(subscriptions_page_size=1000).start()
        bin_dir = install_fake_az(work / "bin").parent
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_AZ_TOKEN": self.arm.token,
            "REQUESTS_CA_BUNDLE": self.arm.ca_path,
            "PYTHONPATH": str(ROOT),
        }

    def close(self) -> None:
        self.arm.stop()

    def tenant(
        self, count: int, latency: float, shape: Callable[[int], dict[str, object]] = make_tenant
    ) -> None:
        self.arm.load(tenant_from_json(shape(count)))
        self.arm.latency = latency
        self.arm.clear()

    def suite(
        self, *extra: str, name: str = "suite", marker: str | None = "contact_email"
    ) -> Measured:
        """The suite on the loaded tenant, all three reports on; CIS 2.13 alone unless `marker`
        is None."""
        junit = self.work / f"{name}.xml"
        args = [
            sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider",
            *(["-m", marker] if marker else []),
            "--azure-auth", "cli", "--azure-arm-endpoint", self.arm.url,
            f"--html={self.work / name}.html", "--self-contained-html", f"--junitxml={junit}",
            f"--azure-audit-html={self.work / name}-audit.html", *extra,
        ]  # fmt: skip
        run = run_measured(args, self.env, ROOT)
        per_case = junit_outcomes(junit)
        return Measured(
            run.wall,
            run.peak_rss_mib,
            Counter(per_case.values()),
            run.output,
            self.requests_by_path(),
            self.arm.connections,
            per_case,
            run.cpu,
        )

    def requests_by_path(self) -> Counter[str]:
        return Counter(
            "contacts"
            if r.path.endswith(CONTACTS)
            else "groups"
            if r.path.startswith(GROUPS)
            else r.path
            for r in self.arm.requests
        )

    def measured_loop(self) -> Measured:
        """The emulator's view of the last sequential loop (it runs in this process)."""
        return Measured(0, 0, Counter(), "", self.requests_by_path(), self.arm.connections)

    def bare_pytest(self, mix: Counter[str]) -> Measured:
        """A bare pytest run of trivial cases with the same outcomes and report flags."""
        folder = self.work / "bare"
        folder.mkdir(exist_ok=True)
        cases = [kind for kind, n in sorted(mix.items()) for _ in range(n)]
        (folder / "pytest.ini").write_text("[pytest]\naddopts = -ra\njunit_family = xunit2\n")
        (folder / "test_bare.py").write_text(
            "import pytest\n"
            f"CASES = {cases!r}\n"
            "@pytest.fixture\n"
            "def case(request):\n"
            "    if request.param == 'error':\n"
            "        raise RuntimeError('could not be verified')\n"
            "    if request.param == 'skipped':\n"
            "        pytest.skip('disabled')\n"
            "    return request.param\n"
            "@pytest.mark.parametrize('case', CASES, indirect=True)\n"
            "def test_case(case):\n"
            "    assert case == 'passed', 'not compliant'\n"
        )
        junit = folder / "junit.xml"
        args = [
            sys.executable, "-m", "pytest", "test_bare.py", "-p", "no:cacheprovider", "-q",
            "--html=report.html", "--self-contained-html", f"--junitxml={junit}",
        ]  # fmt: skip
        run = run_measured(args, self.env, folder)
        return Measured(
            run.wall, run.peak_rss_mib, Counter(junit_outcomes(junit).values()), run.output
        )

    def sequential_loop(self) -> float:
        """What a user writes by hand: a client per subscription, one request at a time."""
        from azure.mgmt.security import SecurityCenter
        from azure.mgmt.subscription import SubscriptionClient

        credential = self.arm.credential()
        started = time.perf_counter()
        subscriptions = SubscriptionClient(
            credential, base_url=self.arm.url, connection_verify=self.arm.ca_path
        )
        for sub in subscriptions.subscriptions.list():
            if sub.state == "Disabled":
                continue
            client = SecurityCenter(
                credential,
                sub.subscription_id,
                base_url=self.arm.url,
                connection_verify=self.arm.ca_path,
            )
            try:
                list(client.security_contacts.list())
            except Exception:
                pass
        return time.perf_counter() - started


CHROMIUM = Path("/usr/bin/chromium")


def findings_verdicts(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """Each case's verdict and reason in a findings file, by subscription and control."""
    document = json.loads(path.read_text())
    return {
        (f["subscription"]["id"], f["control"]["key"]): (f["verdict"], f["reason"])
        for f in document["findings"]
    }


def sharded(
    bench: Bench, count: int, shards: int, tag: str
) -> tuple[list[Measured], Run, Path, Counter[str]]:
    """Shards 1..`shards` of a first audit of `count` subscriptions (100 ms a request), one
    after another against the same emulator as CI's parallel jobs would run them, each a whole
    run of the README's large-tenant command writing its findings and evidence; then their
    merge. Returns each shard's measure, the merge's run, the merged reports' folder and the
    requests of every shard together."""
    bench.tenant(count, 0.1, first_audit_tenant)
    runs = []
    requests: Counter[str] = Counter()
    files: list[str] = []
    bundles: list[str] = []
    for k in range(1, shards + 1):
        findings, evidence = bench.work / f"{tag}-{k}.json", bench.work / f"{tag}-{k}-ev.json"
        runs.append(
            bench.suite(
                *LARGE_TENANT,
                f"--azure-shard={k}/{shards}",
                f"--azure-findings={findings}",
                f"--azure-evidence={evidence}",
                name=f"{tag}-{k}",
                marker=None,
            )
        )
        requests += runs[-1].requests
        bench.arm.clear()
        files.append(str(findings))
        bundles += ["--evidence", str(evidence)]
    out = bench.work / f"{tag}-merged"
    merge = run_measured(
        [sys.executable, "-m", "compliance", "merge", str(out), *files, *bundles], bench.env, ROOT
    )
    if merge.returncode not in (0, 1):
        raise SystemExit(f"the merge ended {merge.returncode}:\n{merge.output}")
    return runs, merge, out, requests


def page_times(audit_view: Path, pytest_html: Path) -> tuple[float, float, float]:
    """In headless Chromium: seconds until the audit view shows its first rows, until a
    failing subscription's details show after a click, and until pytest-html's report
    shows its first rows."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(audit_view.as_uri())
        page.wait_for_selector("#cases tr.sub", timeout=300_000)
        opened = time.perf_counter() - started
        row = page.locator('#cases tr.sub:has(span[data-outcome="not_compliant"])').last
        started = time.perf_counter()
        row.click()
        page.wait_for_selector(".details .evidence")
        expanded = time.perf_counter() - started
        page.close()
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(pytest_html.as_uri(), timeout=600_000)
        page.wait_for_selector("tbody.results-table-row", timeout=600_000)
        pytest_html_opened = time.perf_counter() - started
        browser.close()
    return opened, expanded, pytest_html_opened


def sweep(n: int, latency: float = 0.05) -> None:
    """Scenario 1 at several concurrencies: what the default is chosen from."""
    rows = [("concurrency", "contacts phase", "ideal", "ratio", "whole run")]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            for concurrency in (4, 8, 16, 32, 64):
                bench.tenant(n, latency)
                measured = bench.suite("--azure-concurrency", str(concurrency), name="sweep")
                phase = contacts_phase(measured.stdout)
                ideal = measured.requests["contacts"] * latency / concurrency
                rows.append((
                    str(concurrency), f"{phase:.2f}s", f"{ideal:.2f}s",
                    f"{phase / ideal:.2f}", f"{measured.wall:.1f}s",
                ))  # fmt: skip
        finally:
            bench.close()
    _print_table(rows)


def contacts_phase(output: str) -> float:
    match = re.search(r"security contacts of \d+ subscriptions read in ([\d.]+)s", output)
    if not match:
        raise SystemExit(f"no contacts-phase line in the suite's output:\n{output[-3000:]}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="N=200 (what CI runs)")
    parser.add_argument("--check", action="store_true", help="assert counts and outcomes")
    parser.add_argument(
        "--sweep", action="store_true", help="only scenario 1 at several --azure-concurrency"
    )
    parser.add_argument(
        "--view", action="store_true", help="only scenario 7: the audit view in Chromium"
    )
    parser.add_argument(
        "--shards", action="store_true", help="only scenario 9 (shards and their merge)"
    )
    options = parser.parse_args()
    if options.sweep:
        sweep(200 if options.small else 1000)
        return
    n = 200 if options.small else 1000
    big = 200 if options.small else 10_000
    latency = 0.05
    rows: list[tuple[str, ...]] = []
    problems: list[str] = []

    def report(name: str, m: Measured, wall: str, measure: str, target: str, ok: bool) -> None:
        rss = f"{m.peak_rss_mib:.0f}" if m.peak_rss_mib else "-"
        rows.append((name, wall, _requests(m.requests), str(m.connections), rss, measure,
                     f"{target}: {'yes' if ok else 'NO'}"))  # fmt: skip

    def check(condition: bool, what: str) -> None:
        if not condition:
            problems.append(what)

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            if options.shards or options.view:
                if options.view:
                    view_scenario(bench, big // 2, report, check)
                if options.shards:
                    shards_scenario(bench, big, report, check)
                return _finish(rows, problems, options)
            bench.tenant(n, latency)
            one = bench.suite(name="latency")
            phase = contacts_phase(one.stdout)
            ideal = one.requests["contacts"] * latency / DEFAULT_CONCURRENCY
            report(
                f"1. N={n}, {latency * 1000:.0f} ms latency",
                one,
                f"{one.wall:.1f}s (contacts {phase:.2f}s)",
                f"contacts / ideal {ideal:.2f}s = {phase / ideal:.2f}",
                "<= 1.25 x ideal + 1 s",
                phase <= 1.25 * ideal + 1,
            )
            checkable = sum(1 for i in range(n) if i % 50 != 7)
            check(one.requests["contacts"] == checkable, f"1: {one.requests} for {checkable}")
            check(one.connections <= DEFAULT_CONCURRENCY + 1, f"1: {one.connections} connections")

            bench.tenant(n, latency)
            loop = bench.sequential_loop()
            report(
                f"2. N={n}, sequential SDK loop",
                bench.measured_loop(),
                f"{loop:.1f}s",
                f"loop / suite = {loop / one.wall:.1f}",
                ">= 10x",
                loop >= 10 * one.wall,
            )

            bench.tenant(big, 0)
            three = bench.suite(name="big")
            bare = bench.bare_pytest(three.outcomes)
            ratio = three.wall / bare.wall
            report(
                f"3. N={big}, no latency, reports on",
                three,
                f"{three.wall:.1f}s (bare pytest {bare.wall:.1f}s, RSS {bare.peak_rss_mib:.0f})",
                f"suite / bare = {ratio:.2f}",
                "<= 1.5x and RSS < 1 GiB",
                ratio <= 1.5 and three.peak_rss_mib < 1024,
            )
            check(three.outcomes == bare.outcomes, f"3: mix {three.outcomes} != {bare.outcomes}")
            check(sum(three.outcomes.values()) == big, f"3: {three.outcomes}")

            bench.tenant(n, latency)
            for sub in make_tenant(n)["subscriptions"][::5]:  # type: ignore[index]
                bench.arm.fail(sub["subscriptionId"], Fault(429, retry_after=1, times=1))
            four = bench.suite(name="throttled")
            verdicts = sum(four.outcomes.values())
            report(
                f"4. N={n}, 20% throttled",
                four,
                f"{four.wall:.1f}s (contacts {contacts_phase(four.stdout):.2f}s)",
                f"cases with a verdict {verdicts}/{n}",
                "every case",
                verdicts == n,
            )
            check(four.per_case == one.per_case, "4: throttling changed an outcome")

            bench.tenant(n, 0)
            serial = bench.suite(name="serial")
            bench.tenant(n, 0)
            parallel = bench.suite("-n", "2", name="xdist")
            same = parallel.per_case == serial.per_case
            equal = parallel.requests == serial.requests
            report(
                f"5. N={n}, -n 2 vs serial",
                parallel,
                f"{parallel.wall:.1f}s (serial {serial.wall:.1f}s)",
                f"outcomes identical {same}, requests equal {equal}",
                "both",
                same and equal,
            )
            check(same, "5: -n 2 changed an outcome")
            check(equal, f"5: {parallel.requests} != {serial.requests}")

            network = big * 0.1 / DEFAULT_CONCURRENCY
            first: dict[str, Measured] = {}
            for label, extra in (
                ("the README's command, serial", LARGE_TENANT),
                ("the README's command, -n 2", (*LARGE_TENANT, "-n", "2")),
                ("the defaults, serial", ()),
            ):
                bench.tenant(big, 0.1, first_audit_tenant)
                six = first[label] = bench.suite(*extra, name="first", marker=None)
                aimed = extra != ()  # the defaults (pytest-html, log capture) for comparison
                report(
                    f"6. N={big}, 100 ms, four controls, first audit, {label}",
                    six,
                    f"{six.wall:.1f}s, CPU {six.cpu:.0f}s",
                    f"network N*L/C = {network:.1f}s",
                    "< 90 s and RSS < 1 GiB" if aimed else "none (for comparison)",
                    not aimed or (six.wall < 90 and six.peak_rss_mib < 1024),
                )
                failing = big // 20 * 43  # 7 x 4 + 4 x 3 + 3 x 1 failing cases in every 20
                check(
                    six.outcomes == Counter(passed=4 * big - failing, failure=failing),
                    f"6 {label}: {six.outcomes}",
                )
                check(six.requests["contacts"] == big, f"6 {label}: {six.requests}")
            agree = [m.per_case == first["the defaults, serial"].per_case for m in first.values()]
            check(all(agree), "6: the command or -n 2 changed an outcome")

            view_scenario(bench, big // 2, report, check)

            bench.tenant(big, 0, hierarchy_tenant)
            eight = bench.suite("--azure-management-group", "org", name="groups")
            group_requests = eight.requests["groups"]
            report(
                f"8. N={big} below 110 management groups, --azure-management-group org",
                eight,
                f"{eight.wall:.1f}s",
                f"management-group requests {group_requests} for {big} subscriptions",
                "a request per level above the group, plus one",
                group_requests == 2,
            )
            check(sum(eight.outcomes.values()) == big, f"8: {eight.outcomes}")
            check(group_requests == 2, f"8: {group_requests} management-group requests")

            shards_scenario(bench, big, report, check)
        finally:
            bench.close()
    _finish(rows, problems, options)


def _finish(rows: list[tuple[str, ...]], problems: list[str], options: argparse.Namespace) -> None:
    print(json.dumps({"cpu_count": os.cpu_count(), "concurrency": DEFAULT_CONCURRENCY}))
    header = ("scenario", "wall", "requests", "conns", "peak RSS MiB", "measure", "target")
    _print_table([header, *rows])
    if options.small:
        print("(--small: the targets are set for the full sizes; here fixed costs dominate)")
    if options.check and problems:
        raise SystemExit("benchmark checks failed:\n  " + "\n  ".join(problems))


def view_scenario(
    bench: Bench,
    viewed: int,
    report: Callable[[str, Measured, str, str, str, bool], None],
    check: Callable[[bool, str], None],
) -> None:
    """7: the audit view of a first audit in Chromium: how soon it shows its rows, and a
    subscription's details after a click; pytest-html's report of the same run beside it."""
    if not CHROMIUM.exists():
        check(False, "7: Chromium is not installed (apt-get install chromium)")
        return
    bench.tenant(viewed, 0, first_audit_tenant)
    seven = bench.suite(name="view", marker=None)
    opened, expanded, pytest_html = page_times(
        bench.work / "view-audit.html", bench.work / "view.html"
    )
    report(
        f"7. N={viewed}, four controls, the audit view in Chromium",
        seven,
        f"open {opened:.1f}s, details {expanded:.2f}s",
        f"pytest-html's report opens in {pytest_html:.1f}s; audit view "
        f"{(bench.work / 'view-audit.html').stat().st_size / 1e6:.1f} MB",
        "open < 5 s, details < 1 s",
        opened < 5 and expanded < 1,
    )
    check(sum(seven.outcomes.values()) == 4 * viewed, f"7: {seven.outcomes}")


def shards_scenario(
    bench: Bench,
    big: int,
    report: Callable[[str, Measured, str, str, str, bool], None],
    check: Callable[[bool, str], None],
) -> None:
    """9: a tenant split in 4 shards, run one after another (CI would run them at once), and
    merged. At `big` subscriptions the merge is compared case by case with one unsharded run;
    at 4 x `big` each shard and the merge are measured."""
    bench.tenant(big, 0.1, first_audit_tenant)
    whole_file = bench.work / "whole.json"
    whole = bench.suite(*LARGE_TENANT, f"--azure-findings={whole_file}", name="whole", marker=None)
    _, merge, out, _ = sharded(bench, big, 4, "small")
    same = findings_verdicts(out / "findings.json") == findings_verdicts(whole_file)
    report(
        f"9. N={big}, 4 shards merged vs one run",
        whole,
        f"one run {whole.wall:.1f}s, merge {merge.wall:.1f}s",
        f"merged findings equal one run's, case by case: {same}",
        "equal",
        same,
    )
    check(same, "9: the merged findings differ from one run's")
    check(merge.returncode == 1, f"9: the merge ended {merge.returncode}, not 1")

    huge = 4 * big
    runs, merge, out, requests = sharded(bench, huge, 4, "huge")
    for k, shard in enumerate(runs, 1):
        report(
            f"9. N={huge}, shard {k} of 4 (README's command)",
            shard,
            f"{shard.wall:.1f}s, CPU {shard.cpu:.0f}s",
            f"cases {sum(shard.outcomes.values())}",
            "each shard < 90 s and RSS < 1 GiB",
            shard.wall < 90 and shard.peak_rss_mib < 1024,
        )
    merged = json.loads((out / "findings.json").read_text())
    cases = len(merged["findings"])
    read_once = requests["contacts"] == huge
    report(
        f"9. N={huge}, the merge of the 4 shards",
        Measured(merge.wall, merge.peak_rss_mib, Counter(), merge.output, requests, 0),
        f"{merge.wall:.1f}s, CPU {merge.cpu:.0f}s",
        f"cases {cases}; each subscription read once: {read_once}",
        "every case, every subscription once",
        cases == 4 * huge and read_once,
    )
    check(cases == 4 * huge, f"9: the merge holds {cases} cases")
    check(read_once, f"9: {requests['contacts']} contacts requests for {huge} subscriptions")


def _requests(requests: Counter[str]) -> str:
    return ", ".join(f"{path} {count}" for path, count in sorted(requests.items()))


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("-+-".join("-" * width for width in widths))


if __name__ == "__main__":
    main()
