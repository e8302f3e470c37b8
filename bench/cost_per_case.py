"""Issue 20's cost per case: bench scenario 6 before and after, side by side from one run
(bench/README.md, "Issue 20: the cost per case, before and after").

A first audit (bench/run.py's `first_audit_tenant`: N=10,000 subscriptions, four controls,
21,500 of 40,000 cases failing), 100 ms per request, on one emulator in this process. Each
side is a checkout with its own venv (`.venv` in it): this one (AFTER) and `--before DIR`
(BEFORE). Each runs its own `python -m pytest tests` with its cwd and PYTHONPATH at its
checkout, in turns (before/after, then after/before, ...), two commands, serial:

- the defaults: pytest.ini's addopts (pytest-html's report, JUnit, the audit view) with
  their paths moved to a scratch folder, as bench/run.py's scenario 6 runs them;
- the README's large-tenant command: the same plus `--html= -p no:logging`.

Printed for each run: wall, CPU (user + system of the whole process tree, from wait4),
peak RSS of the process tree (the sum over its processes sampled every 0.1 s, as
bench/run.py's `run_measured`), where that peak was (seconds into the run and the RSS of each
process then) and the CPU of each process (from /proc, last sample). Then the medians and
after / before.

`--profile`: one more run of each side and command under py-spy (`record --gil --rate 100
--subprocesses`): each sample of the interpreter holding the GIL is given to the first owner
found on its stack (see `classify`), in seconds and microseconds per case. It needs py-spy
(`pip install py-spy`, not in requirements-dev.txt; $PY_SPY names it when not on PATH).

`--memory`: one more run of each side and command with a plugin (`-p cost_probe`) that reads
the pytest process's peak RSS (VmHWM, reset through /proc/self/clear_refs) at the end of each
phase: start, collection and every case; the reports before pytest-html's page; pytest-html's
page. Then, in pytest_unconfigure (every report written, every plugin still registered), it
sums sys.getsizeof over what each root (the collected items, each plugin object,
config.stash) reaches alone, and counts the gc-tracked objects by type.

`--timeline`: one more run of each side and command with that plugin's clock only (it counts
nothing): when every case had run, the reports were written and pytest_unconfigure ended, in
seconds from the start, beside the suite's read phase and the process's end.

Times are printed, never asserted. `--check` asserts the outcomes only (every case as the
first-audit mix says, the same case by case on both sides, each subscription read once).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    LARGE_TENANT,
    Bench,
    _print_table,
    first_audit_tenant,
    junit_outcomes,
)

COMMANDS: dict[str, tuple[str, ...]] = {
    "the defaults": (),
    "the README's large-tenant command": LARGE_TENANT,
}
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Side:
    name: str
    root: Path

    @property
    def python(self) -> str:
        return str(self.root / ".venv" / "bin" / "python")


@dataclass
class Tree:
    """One run of a process tree: its wall and CPU seconds, the peak of its summed RSS
    (MiB), when that peak was and what each process held then, each process's CPU."""

    wall: float
    cpu: float
    peak_mib: float
    peak_at: float
    at_peak: dict[str, float]
    cpu_by_process: dict[str, float]
    output: str
    returncode: int
    epoch: float = 0.0  # when it started (time.time())
    outcomes: dict[tuple[str, str], str] = field(default_factory=dict)


def label(cmdline: str, root: bool) -> str:
    if root:
        return "pytest"
    if "compliance.arm.process import serve" in cmdline:
        return "read child"
    if "/bin/az " in f"{cmdline} ":
        return "az"
    return cmdline.split(" ", 1)[0].rsplit("/", 1)[-1] or "other"


def run_tree(args: Sequence[str], env: dict[str, str], cwd: Path) -> Tree:
    """bench/run.py's `run_measured`, also keeping where the peak was and each process's
    CPU as last seen."""
    with tempfile.TemporaryFile("w+") as out:
        epoch, started = time.time(), time.perf_counter()
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        state: dict[str, object] = {"peak": 0, "at": 0.0, "at_peak": {}, "cpu": {}, "names": {}}
        done = threading.Event()
        sampler = threading.Thread(target=_sample, args=(process.pid, state, done, started))
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        out.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        by_pid: dict[int, float] = state["cpu"]  # type: ignore[assignment]
        names: dict[int, str] = state["names"]  # type: ignore[assignment]
        by_process: dict[str, float] = defaultdict(float)
        for pid, seconds in by_pid.items():
            if pid != process.pid:
                by_process[names[pid]] += seconds
        # The root's own CPU: the tree's (its reaped children included) less theirs.
        by_process["pytest"] = cpu - sum(by_process.values())
        peak = max(int(state["peak"]), usage.ru_maxrss)  # type: ignore[call-overload]
        return Tree(
            wall,
            cpu,
            peak / 1024,
            float(state["at"]),  # type: ignore[arg-type]
            state["at_peak"],  # type: ignore[arg-type]
            dict(by_process),
            out.read(),
            os.waitstatus_to_exitcode(status),
            epoch,
        )


def _sample(root: int, state: dict[str, object], done: threading.Event, started: float) -> None:
    cpu: dict[int, float] = state["cpu"]  # type: ignore[assignment]
    names: dict[int, str] = state["names"]  # type: ignore[assignment]
    while not done.wait(0.1):
        parents: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # it ended meanwhile
            pid = int(stat.parent.name)
            parents.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * PAGE // 1024
            ticks[pid] = int(fields[11]) + int(fields[12])
        tree, total, held = [root], 0, {}
        while tree:
            pid = tree.pop()
            total += rss.get(pid, 0)
            if pid not in names:
                try:
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    raw = b""
                names[pid] = label(raw.replace(b"\0", b" ").decode(errors="replace"), pid == root)
            if pid in rss:
                held[pid] = rss[pid]
            if pid in ticks:
                cpu[pid] = ticks[pid] / TICK
            tree.extend(parents.get(pid, []))
        if total > int(state["peak"]):  # type: ignore[call-overload]
            by_name: dict[str, float] = defaultdict(float)
            for pid, kib in held.items():
                by_name[names[pid]] += kib / 1024
            state.update(peak=total, at=time.perf_counter() - started, at_peak=dict(by_name))


def suite_args(python: str, bench: Bench, name: str, extra: Sequence[str]) -> list[str]:
    """bench/run.py's `Bench.suite` (all four controls): pytest.ini's report flags with their
    paths in the scratch folder."""
    work = bench.work
    return [
        python, "-m", "pytest", "tests", "-p", "no:cacheprovider",
        "--azure-auth", "cli", f"--azure-arm-endpoint={bench.arm.url}",
        f"--html={work / name}.html", "--self-contained-html", f"--junitxml={work / name}.xml",
        f"--azure-audit-html={work / name}-audit.html", *extra,
    ]  # fmt: skip


def env_for(bench: Bench, side: Side, *extra_path: Path) -> dict[str, str]:
    return {**bench.env, "PYTHONPATH": os.pathsep.join(map(str, (side.root, *extra_path)))}


CASE = re.compile(r"CIS (\d+(?:\.\d+)+).*\(([0-9a-f-]{36})\)")


def case_outcomes(junit: Path) -> dict[tuple[str, str], str]:
    """Each case's outcome by CIS id and subscription ID: BEFORE's JUnit (pytest's junitxml)
    names a case by its test's node id, AFTER's (the suite's own) by control and subscription."""
    outcomes = {}
    for key, outcome in junit_outcomes(junit).items():
        match = CASE.search(key)
        if match is None:
            raise SystemExit(f"ERROR: a case without a CIS id and subscription: {key}")
        outcomes[match.group(1), match.group(2)] = outcome
    return outcomes


def expected(n: int) -> Counter[str]:
    failing = n // 20 * 43  # 7 x 4 + 4 x 3 + 3 x 1 failing cases in every 20 subscriptions
    return Counter(passed=4 * n - failing, failure=failing)


# --- the CPU split ---------------------------------------------------------------------

AZURE = {"azure", "core", "identity", "mgmt", "msrest", "requests", "urllib3", "msal",
         "cryptography", "isodate", "certifi", "charset_normalizer", "idna", "jwt"}  # fmt: skip
REPORT_MODULES = {"recorder.py", "reporting.py", "reports.py", "ocsf.py", "writing.py",
                  "evidence.py"}  # fmt: skip
BUCKETS = (
    "pytest itself (collection, runner, fixtures, terminal, hook calls)",
    "pytest: log capture",
    "pytest-html (its plugin and the suite's pytest_html_* hooks)",
    "JUnit",
    "the audit view",
    "the suite: its other reports and summaries",
    "the suite: hooks, fixtures, checks, judging",
    "the Azure read in the pytest process (SDK, HTTP, compliance.arm)",
    "the read's threads in the pytest process",
    "imports",
    "other",
)


def classify(frames: Sequence[tuple[str, str]]) -> str:
    """The bucket of one stack, (file, function) from the outermost frame: a stack that
    passes through an output's code is that output's (what it calls is its cost); else the
    first frame outside pytest, pluggy and the standard library names its owner; else it is
    pytest's own."""
    files = [f for f, _ in frames]  # as py-spy names them: from the package
    functions = [fn for _, fn in frames]
    if frames and functions[0].startswith("Thread._bootstrap"):
        return BUCKETS[8]
    if any("importlib._bootstrap" in f for f in files):
        return BUCKETS[9]
    if any(
        f.endswith(("_pytest/junitxml.py", "compliance/outputs/junit.py"))
        or fn.endswith("_write_junit")
        for f, fn in zip(files, functions, strict=True)
    ):
        return BUCKETS[3]
    if any(
        f.startswith(("pytest_html/", "pytest_metadata/", "compliance/outputs/pytest_html.py"))
        or fn.split(".")[-1].startswith("pytest_html_")
        for f, fn in zip(files, functions, strict=True)
    ):
        return BUCKETS[2]
    if any(f.startswith("_pytest/logging.py") for f in files):
        return BUCKETS[1]
    if any(f in ("compliance/auditview.py", "compliance/outputs/audit_view.py") for f in files):
        return BUCKETS[4]
    for f in files:
        top = f.split("/", 1)[0]
        if top in AZURE or f.startswith("compliance/arm/"):
            return BUCKETS[7]
        if f.startswith("compliance/"):
            module = f.removeprefix("compliance/")
            if module.startswith("outputs/") or module in REPORT_MODULES:
                return BUCKETS[5]
            return BUCKETS[6]
        if f.startswith(("test_", "tests/")):
            return BUCKETS[6]
        if top in ("_pytest", "pluggy", "pytest", "xdist", "py.py", "iniconfig", "_py"):
            continue
        if "/" not in f or top in STDLIB or f.startswith("<"):
            continue
        return BUCKETS[10]
    return BUCKETS[0]


STDLIB = set(sys.stdlib_module_names)


HEADER = re.compile(r'process \d+:"([^"]*)"(?:;|$)')


WITHIN = {BUCKETS[0]: ("_pytest/", "pluggy/"), BUCKETS[6]: ("compliance/", "test_")}


def py_spy_split(
    raw: Path,
) -> tuple[dict[str, float], dict[str, float], dict[str, dict[str, float]]]:
    """Seconds of GIL samples by bucket in the pytest process, and by other process; in the
    buckets of WITHIN, by the innermost frame of the files named there (pytest's by module,
    the suite's by function). A sample of a
    child process starts with its parent's header, then its own."""
    within: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    main: dict[str, float] = defaultdict(float)
    others: dict[str, float] = defaultdict(float)
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        seconds = int(count) / RATE
        processes = []
        while header := HEADER.match(stack):
            processes.append(header.group(1))
            stack = stack[header.end() :]
        if len(processes) > 1:
            others[label(processes[-1], False)] += seconds
            continue
        frames = []
        for part in stack.split(";"):
            match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", part)
            if match:
                frames.append((match.group(2), match.group(1)))
        bucket = classify(frames)
        main[bucket] += seconds
        if bucket in WITHIN:
            # pytest's by module, the suite's by function
            inner = [
                f if bucket == BUCKETS[0] else f"{fn} ({f})"
                for f, fn in frames
                if f.startswith(WITHIN[bucket])
            ]
            within[bucket][inner[-1] if inner else "(none: the interpreter's start or end)"] += (
                seconds
            )
    return dict(main), dict(others), within


RATE = 100
PY_SPY = os.environ.get("PY_SPY", "py-spy")


# --- what holds the memory ---------------------------------------------------------------

PROBE = """
\"\"\"bench/cost_per_case.py --memory (loaded with -p cost_probe): the pytest process's peak
RSS in each phase of the run's end, and what is held at its end.\"\"\"
import gc, json, os, sys, time, types
from collections import Counter
import pytest

SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType,
        types.FrameType, types.MethodType, types.MethodWrapperType, types.WrapperDescriptorType)
OUT = {"phases": []}


def _phase(name):
    \"\"\"The phase that ends now: the process's peak RSS since the last phase ended (Linux
    resets VmHWM on `5 > clear_refs`) and its RSS now, in MiB.\"\"\"
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    rss, hwm = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    OUT["phases"].append([name, hwm, rss, time.time()])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _deep(root, seen):
    \"\"\"sys.getsizeof over what `root` reaches, less what `seen` holds (counted already, or
    another root).\"\"\"
    total, stack = 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, SKIP):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def _held(session):
    \"\"\"What each root reaches alone (less config, the plugin manager, the session and the
    other roots themselves), and all of them together.\"\"\"
    config = session.config
    manager = config.pluginmanager
    roots = [("pytest: the collected items (session.items)", session.items)]
    for name, plugin in manager.list_name_plugin():
        if plugin is not None and not isinstance(plugin, types.ModuleType):
            kind = f"{type(plugin).__module__}.{type(plugin).__qualname__}"
            roots.append((f"plugin {kind}" + (f" '{name}'" if not name.isdigit() else ""), plugin))
    roots.append(("config.stash (the suite's run state)", config.stash))
    base = {id(config), id(manager), id(session)}
    others = {id(r) for _, r in roots}
    sizes = []
    for name, root in roots:
        sizes.append([name, _deep(root, base | (others - {id(root)}))])
    together = base.copy()
    sizes.append(["all of them together", sum(_deep(r, together) for _, r in roots)])
    OUT["held"] = sizes
    OUT["types"] = Counter(type(o).__qualname__ for o in gc.get_objects()).most_common(15)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    _phase("start, collection and every case")
    try:
        return (yield)
    finally:
        _phase("pytest-html's page and the terminal summary" if "html" in OUT else
               "the reports (the suite's, JUnit) and the terminal summary")


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config):
    OUT["unconfigure"] = time.time()
    if os.environ.get("COST_PROBE_COUNT") != "0":
        _held(config._azure_probe_session)
        OUT["count_took"] = time.time() - OUT["unconfigure"]


@pytest.hookimpl(trylast=True, specname="pytest_unconfigure")
def pytest_unconfigure_end(config):
    OUT["unconfigured"] = time.time()  # pytest's cleanups and the interpreter's exit follow
    with open(os.environ["COST_PROBE_OUT"], "w") as f:
        json.dump(OUT, f)


def pytest_sessionstart(session):
    session.config._azure_probe_session = session


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_html_results_summary(prefix, summary, postfix, session):
    OUT["html"] = True  # called as pytest-html starts writing its page, after every other report
    _phase("the reports before pytest-html's page (the suite's, JUnit)")
"""


# --- the run ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--before", type=Path, required=True, help="BEFORE's checkout")
    parser.add_argument("-n", type=int, default=10_000, help="subscriptions (10,000)")
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each (2; 0: none)")
    parser.add_argument("--profile", action="store_true", help="a py-spy run of each")
    parser.add_argument("--memory", action="store_true", help="a memory-probe run of each")
    parser.add_argument(
        "--timeline", action="store_true", help="a run of each with the probe's clock only"
    )
    parser.add_argument("--check", action="store_true", help="assert outcomes")
    options = parser.parse_args()
    sides = [Side("before", options.before.resolve()), Side("after", ROOT)]
    for side in sides:
        if not Path(side.python).exists():
            raise SystemExit(f"ERROR: no venv at {side.python}")
    n, cases = options.n, 4 * options.n
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cost-") as tmp:
        bench = Bench(Path(tmp))
        try:
            if options.rounds:
                timed = timed_runs(bench, sides, n, options.rounds, problems)
                print_timed(timed, sides, n, cases)
            if options.timeline:
                timeline(bench, sides, n)
            if options.profile:
                profile(bench, sides, n, cases)
            if options.memory:
                memory(bench, sides, n)
        finally:
            bench.close()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if problems:
        print("problems:\n  " + "\n  ".join(problems))
        if options.check:
            raise SystemExit(4)
    elif options.check and options.rounds:
        print("check: every run's outcomes as the first-audit mix says, equal on both sides")


def timed_runs(
    bench: Bench, sides: list[Side], n: int, rounds: int, problems: list[str]
) -> dict[tuple[str, str], list[Tree]]:
    timed: dict[tuple[str, str], list[Tree]] = defaultdict(list)
    pair = 0
    for r in range(rounds):
        for command, extra in COMMANDS.items():
            for side in sides if pair % 2 == 0 else sides[::-1]:
                bench.tenant(n, 0.1, first_audit_tenant)
                name = f"{side.name}-{r}-{len(extra)}"
                tree = run_tree(
                    suite_args(side.python, bench, name, extra), env_for(bench, side), side.root
                )
                tree.outcomes = case_outcomes(bench.work / f"{name}.xml")
                reads = bench.requests_by_path()["contacts"]
                print(
                    f"round {r + 1}, {side.name:6}, {command}: {tree.wall:.1f}s wall, "
                    f"CPU {tree.cpu:.1f}s, peak {tree.peak_mib:.0f} MiB (exit {tree.returncode})",
                    flush=True,
                )
                if Counter(tree.outcomes.values()) != expected(n):
                    problems.append(f"{side.name} {command}: {Counter(tree.outcomes.values())}")
                if reads != n:
                    problems.append(f"{side.name} {command}: {reads} contacts reads for {n}")
                timed[side.name, command].append(tree)
            pair += 1
    first = timed["before", "the defaults"][0].outcomes
    for (side_name, command), trees in timed.items():
        for tree in trees:
            if tree.outcomes != first:
                problems.append(f"{side_name} {command}: outcomes differ case by case")
    return timed


def print_timed(
    timed: dict[tuple[str, str], list[Tree]], sides: list[Side], n: int, cases: int
) -> None:
    print(f"\nN={n} subscriptions ({cases} cases), 100 ms per request, serial")
    rows: list[tuple[str, ...]] = [(
        "command", "side", "run", "wall", "read phase", "CPU", "CPU us/case", "peak RSS MiB",
        "peak at (of wall)", "RSS at the peak by process, MiB", "CPU by process, s",
    )]  # fmt: skip
    for command in COMMANDS:
        for side in sides:
            trees = timed[side.name, command]
            for k, t in enumerate(trees, 1):
                rows.append((
                    command, side.name, str(k), f"{t.wall:.1f}s", read_phase(t.output),
                    f"{t.cpu:.1f}s",
                    f"{t.cpu / cases * 1e6:.0f}", f"{t.peak_mib:.0f}",
                    f"{t.peak_at:.0f}s ({t.wall:.0f}s)", _named(t.at_peak),
                    _named(t.cpu_by_process),
                ))  # fmt: skip
    _print_table(rows)
    print()
    rows = [("command", "median", "before", "after", "after / before")]
    for command in COMMANDS:
        get: Callable[[Tree], float]
        for what, get, unit in (
            ("wall", lambda t: t.wall, "s"),
            ("CPU", lambda t: t.cpu, "s"),
            ("peak RSS", lambda t: t.peak_mib, " MiB"),
        ):
            b = statistics.median(get(t) for t in timed["before", command])
            a = statistics.median(get(t) for t in timed["after", command])
            digits = 0 if unit == " MiB" else 1
            rows.append(
                (command, what, f"{b:.{digits}f}{unit}", f"{a:.{digits}f}{unit}", f"{a / b:.2f}x")
            )
    _print_table(rows)
    defaults = timed["after", "the defaults"]
    large_b = statistics.median(
        t.wall for t in timed["before", "the README's large-tenant command"]
    )
    large_a = statistics.median(t.wall for t in timed["after", "the README's large-tenant command"])
    wall = statistics.median(t.wall for t in defaults)
    peak = statistics.median(t.peak_mib for t in defaults)
    print(
        f"\ntargets: the defaults under 60 s: {wall:.1f}s {'yes' if wall < 60 else 'NO'}; "
        f"under 1 GiB peak: {peak:.0f} MiB {'yes' if peak < 1024 else 'NO'}; "
        f"the large-tenant command at most 0.85x: {large_a / large_b:.2f}x "
        f"{'yes' if large_a <= 0.85 * large_b else 'NO'}",
        flush=True,
    )


READ = re.compile(r"security contacts of \d+ subscriptions read in ([\d.]+)s")


def read_phase(output: str) -> str:
    """The suite's own measure of its read (the contacts of every subscription)."""
    match = READ.search(output)
    return f"{float(match.group(1)):.1f}s" if match else "-"


def _named(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in sorted(values.items(), key=lambda kv: -kv[1]))


def profile(bench: Bench, sides: list[Side], n: int, cases: int) -> None:
    print(
        f"\nCPU split: one py-spy run of each (GIL samples at {RATE} Hz: seconds of Python "
        "holding the GIL; us per case = seconds / cases)",
        flush=True,
    )
    for command, extra in COMMANDS.items():
        split: dict[str, tuple[dict[str, float], dict[str, float], float]] = {}
        inside: dict[str, dict[str, dict[str, float]]] = {}
        for side in sides:
            bench.tenant(n, 0.1, first_audit_tenant)
            raw = bench.work / f"{side.name}-{len(extra)}.raw"
            spy = [PY_SPY, "record", "--gil", "--rate", str(RATE), "--subprocesses",
                   "--format", "raw", "-o", str(raw), "--"]  # fmt: skip
            name = f"spy-{side.name}-{len(extra)}"
            tree = run_tree(
                [*spy, *suite_args(side.python, bench, name, extra)],
                env_for(bench, side),
                side.root,
            )
            main, others, within = py_spy_split(raw)
            split[side.name] = (main, others, tree.wall)
            inside[side.name] = within
        rows: list[tuple[str, ...]] = [
            ("bucket", "before s", "before us/case", "after s", "after us/case")
        ]
        for bucket in (*BUCKETS, "the pytest process, all"):
            values = []
            for side in sides:
                main = split[side.name][0]
                s = sum(main.values()) if bucket.endswith(", all") else main.get(bucket, 0.0)
                values += [f"{s:.1f}", f"{s / cases * 1e6:.0f}"]
            rows.append((bucket, *values))
        for process in sorted({p for side in sides for p in split[side.name][1]}):
            values = []
            for side in sides:
                s = split[side.name][1].get(process, 0.0)
                values += [f"{s:.1f}", f"{s / cases * 1e6:.0f}"]
            rows.append((f"process: {process}", *values))
        walls = ", ".join(f"{side.name} {split[side.name][2]:.1f}s" for side in sides)
        print(f"\n{command} (wall under py-spy: {walls})")
        _print_table(rows)
        for bucket in WITHIN:
            for side in sides:
                top = sorted(inside[side.name][bucket].items(), key=lambda kv: -kv[1])[:10]
                print(f"{side.name}, {bucket}, by its innermost frame, s:")
                print("  " + "; ".join(f"{where} {s:.1f}" for where, s in top))


def memory(bench: Bench, sides: list[Side], n: int) -> None:
    print(
        "\nWhere the pytest process's memory peaks (its peak RSS in each phase of the run's end, "
        "from /proc/self/status, reset between phases) and what is held at its end"
    )
    probe_dir = bench.work / "probe"
    probe_dir.mkdir()
    (probe_dir / "cost_probe.py").write_text(PROBE)
    for command, extra in COMMANDS.items():
        found: dict[str, dict[str, Any]] = {}
        for side in sides:
            bench.tenant(n, 0.1, first_audit_tenant)
            out = bench.work / f"probe-{side.name}.json"
            env = {**env_for(bench, side, probe_dir), "COST_PROBE_OUT": str(out)}
            name = f"mem-{side.name}-{len(extra)}"
            args = [*suite_args(side.python, bench, name, extra), "-p", "cost_probe"]
            tree = run_tree(args, env, side.root)
            if not out.exists():
                raise SystemExit(f"ERROR: no probe output ({side.name}):\n{tree.output[-3000:]}")
            found[side.name] = json.loads(out.read_text())
            found[side.name]["tree"] = tree
        print(f"\n{command}")
        rows: list[tuple[str, ...]] = [
            ("phase", *(f"{s.name}: peak / at its end, MiB" for s in sides))
        ]
        phases = [p[0] for p in found[sides[0].name]["phases"]]
        for k, phase in enumerate(phases):
            cells = []
            for side in sides:
                _, hwm, rss, at = found[side.name]["phases"][k]
                at -= found[side.name]["tree"].epoch
                cells.append(f"{hwm:.0f} / {rss:.0f} ({at:.1f}s)")
            rows.append((phase, *cells))
        rows.append(
            ("(the count below took)", *(f"{found[s.name]['count_took']:.1f}s" for s in sides))
        )
        _print_table(rows)
        for side in sides:
            print(
                f"{side.name}: every report written (pytest_unconfigure), what each root "
                "reaches alone (sys.getsizeof; an object two roots reach is in both), MiB:"
            )
            for what, size in sorted(found[side.name]["held"], key=lambda h: -h[1]):
                if size >= 2**20:
                    print(f"  {size / 2**20:6.0f}  {what}")
            print(f"{side.name}: gc-tracked objects by type (count):")
            print("  " + ", ".join(f"{t} {c}" for t, c in found[side.name]["types"]))


def timeline(bench: Bench, sides: list[Side], n: int) -> None:
    """One run of each side and command with the probe, counting nothing: when each part of
    the run's end ended, in seconds from the start."""
    print(
        "\nWhere the wall goes: one run of each with the probe's clock only (seconds from the "
        "start of the process; the read phase is the suite's own line: its length, from its start "
        "after collection)"
    )
    probe_dir = bench.work / "timeline"
    probe_dir.mkdir()
    (probe_dir / "cost_probe.py").write_text(PROBE)
    rows: list[tuple[str, ...]] = [(
        "command", "side", "read phase (its length)", "every case run",
        "reports and summary written", "pytest_unconfigure done", "process ended",
        "after pytest_unconfigure",
    )]  # fmt: skip
    for command, extra in COMMANDS.items():
        for side in sides:
            bench.tenant(n, 0.1, first_audit_tenant)
            out = bench.work / f"timeline-{side.name}.json"
            env = {
                **env_for(bench, side, probe_dir),
                "COST_PROBE_OUT": str(out),
                "COST_PROBE_COUNT": "0",
            }
            name = f"timeline-{side.name}-{len(extra)}"
            args = [*suite_args(side.python, bench, name, extra), "-p", "cost_probe"]
            tree = run_tree(args, env, side.root)
            if not out.exists():
                raise SystemExit(f"ERROR: no probe output ({side.name}):\n{tree.output[-3000:]}")
            found = json.loads(out.read_text())
            phases = [at - tree.epoch for _, _, _, at in found["phases"]]
            unconfigured = found["unconfigured"] - tree.epoch
            rows.append((
                command, side.name, read_phase(tree.output), f"{phases[0]:.1f}s",
                f"{phases[-1]:.1f}s", f"{unconfigured:.1f}s", f"{tree.wall:.1f}s",
                f"{tree.wall - unconfigured:.1f}s",
            ))  # fmt: skip
    _print_table(rows)


if __name__ == "__main__":
    main()
