"""The read phase alone: CPU seconds the reading process spends per answer (see
bench/README.md, "The read phase").

An ArmReader in a child process lists the subscriptions of a generated tenant (bench/run.py's
make_tenant) on the emulator, at no latency, then reads every subscription's contacts
`--concurrency` at a time, and reports the CPU time (user and system, every thread) of each
phase, measured inside the child around the phase alone (its imports and its reader's making
left out). The emulator runs in this process, so its CPU is not counted.

With `--before DIR` (a checkout of another commit, e.g. `git worktree add /tmp/before
87cd316`) the child imports `compliance` from DIR as well, and the two codes run in turns,
`--rounds` times each, against the same emulator: one table, side by side, the median of
each, their ratio, and the range of the ratios of each round's pair of runs (how much the
machine moved). Each api-version is measured on a cloud that serves it alone (the
first read is refused once and tells which).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import make_tenant  # noqa: E402

from compliance.emulator import ArmEmulator, tenant_from_json  # noqa: E402

VERSIONS = ("2023-12-01-preview", "2020-01-01-preview", "2017-08-01-preview")

# The child: only what every version of ArmReader has (list_subscriptions, read_many).
CHILD = """
import json, resource, sys
from compliance.arm import CLOUDS, ArmReader
from compliance.emulator.server import EmulatorCredential

order = json.load(sys.stdin)

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

reader = ArmReader(EmulatorCredential(order["token"]), CLOUDS["AzureCloud"], order["url"],
                   order["ca"], concurrency=order["concurrency"])
started = cpu()
subscriptions = reader.list_subscriptions()
listed = cpu()
ids = [s.id for s in subscriptions if s.checkable]
answers = sum(len(result.responses) for _, result in reader.read_many(ids))
read = cpu()
reader.close()
import compliance
json.dump({"code": compliance.__file__, "list_cpu": listed - started,
           "subscriptions": len(subscriptions), "read_cpu": read - listed, "answers": answers},
          sys.stdout)
"""


def measure(arm: ArmEmulator, code: Path, concurrency: int) -> dict[str, float]:
    """One child reading the loaded tenant with the `compliance` of `code`."""
    order = {"token": arm.token, "url": arm.url, "ca": arm.ca_path, "concurrency": concurrency}
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(order),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(code)},
        cwd=code,  # `python -c` puts the working directory first on sys.path
        check=True,
    )
    result = json.loads(done.stdout)
    assert Path(result.pop("code")).is_relative_to(code), result  # the code asked for
    return dict(result)


def per_answer(results: list[dict[str, float]], phase: str, count: str) -> float:
    """The median over the runs of CPU microseconds per answer."""
    return statistics.median(r[f"{phase}_cpu"] / r[count] * 1e6 for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="subscriptions (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each code (default 3)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--before", type=Path, help="a checkout to compare with")
    parser.add_argument("--versions", nargs="+", default=list(VERSIONS), choices=VERSIONS)
    args = parser.parse_args()

    codes = {"this": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    rows = []
    with ArmEmulator(subscriptions_page_size=100) as arm:
        for version in args.versions:
            data = {**make_tenant(args.n), "servedApiVersions": [version]}
            arm.load(tenant_from_json(data))
            results: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
            for _ in range(args.rounds):
                for name, code in codes.items():
                    results[name].append(measure(arm, code, args.concurrency))
            for phase, count, what in (
                ("read", "answers", "contacts, per answer"),
                ("list", "subscriptions", "subscriptions list, per subscription"),
            ):
                cells = {name: per_answer(r, phase, count) for name, r in results.items()}
                answers = int(results["this"][0][count])
                # Each round's two runs one after the other: how far the machine moved.
                ratios = [
                    (this[f"{phase}_cpu"] / this[count]) / (before[f"{phase}_cpu"] / before[count])
                    for this, before in zip(
                        results["this"], results.get("before", []), strict=False
                    )
                ]
                rows.append((version, what, answers, cells, ratios))

    header = ["api-version", "phase", "count", "this: CPU us"]
    if args.before:
        header += ["before: CPU us", "this / before", "per round"]
    lines = [header]
    for version, what, answers, cells, ratios in rows:
        line = [version, what, str(answers), f"{cells['this']:.0f}"]
        if args.before:
            line += [
                f"{cells['before']:.0f}",
                f"{cells['this'] / cells['before']:.3f}",
                f"{min(ratios):.2f}-{max(ratios):.2f}",
            ]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    print(f"(N={args.n}, concurrency {args.concurrency}, no latency, median of {args.rounds})")


if __name__ == "__main__":
    main()
