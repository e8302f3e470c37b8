"""The Markdown job summary (GitHub Actions' $GITHUB_STEP_SUMMARY, Azure Pipelines'
task.uploadsummary): per control its counts and compliance, then each case not compliant or
not verifiable with its reason, capped."""

from __future__ import annotations

from pathlib import Path

from compliance.arm.secrets import redact
from compliance.findings import Baseline, Finding, Outcome, compliance_percent, tally
from compliance.outputs.report import Report
from compliance.outputs.words import control_labels, result_line
from compliance.text import markdown_text
from compliance.writing import write_text

# A job summary lists at most this many rows of cases (GitHub shows up to 1 MiB per step).
ROWS = 100


def _md(value: object) -> str:  # secrets out first: escaping would hide them from redact
    return markdown_text(redact(str(value)))


def render(report: Report) -> str:
    facts = report.facts
    labels = control_labels(facts.cis_version, titled=True)
    lines = [f"## {report.title}", ""]
    if facts.error is not None:
        lines += [f"**{_md(facts.error)}.**", ""]
    else:
        lines += [f"**{_md(result_line(report.findings))}**", ""]
    lines += [f"- **{label}**: {_md(value)}" for label, value in facts.rows() if label != "Error"]
    lines += [
        "",
        "| Control | " + " | ".join(o.label.capitalize() for o in Outcome) + " | Compliance |",
        "|---|" + "---:|" * (len(Outcome) + 1),
    ]
    for key, counts in tally(report.findings).items():
        percent = compliance_percent(counts)
        lines.append(
            f"| {_md(labels.get(key, key))} | "
            + " | ".join(str(counts[o]) for o in Outcome)
            + f" | {'n/a' if percent is None else f'{percent:.1f} %'} |"
        )
    shown = [
        f for f in report.findings if f.outcome in (Outcome.NOT_COMPLIANT, Outcome.NOT_VERIFIABLE)
    ]
    if shown:
        rows = _rows(shown)
        subscriptions = len({f.subscription.id.lower() for f in shown})
        lines += [
            "",
            f"### Not compliant or not verifiable: {len(shown)} "
            f"case{'' if len(shown) == 1 else 's'} of {subscriptions} "
            f"subscription{'' if subscriptions == 1 else 's'}",
            "",
            "| Verdict | Control | Subscription | Reason |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {verdict} | {_md(', '.join(f'CIS {c}' for c in cis))} | "
            f"{_md(f.subscription.display_name)} ({_md(f.subscription.id)}) | "
            f"{_md(redact(f.reason)[:1000])} |"
            for verdict, cis, f in rows[:ROWS]
        ]
        where = _md(", ".join(report.reports_at) or "the findings file")
        rest = len(rows) - ROWS
        lines += [
            "",
            f"{rest} more: see {where}." if rest > 0 else f"How to fix each: {where}.",
        ]
    return "\n".join(lines) + "\n"


def _rows(shown: list[Finding]) -> list[tuple[str, list[str | None], Finding]]:
    """One row per subscription and verdict the cases share with their reason (a 403 makes
    every control of a subscription not verifiable for one reason: one row, not four)."""
    rows: dict[tuple[str, str, str], tuple[str, list[str | None], Finding]] = {}
    for f in shown:
        verdict = f.outcome.label + (" (known)" if f.baseline is Baseline.KNOWN else "")
        key = (f.subscription.id.lower(), verdict, f.reason)
        if key in rows:
            rows[key][1].append(f.cis_id)
        else:
            rows[key] = (verdict, [f.cis_id], f)
    return list(rows.values())


def write(path: Path, report: Report) -> None:
    """A summary file of the run's own: replaced whole."""
    write_text(path, render(report))


def append(path: Path, report: Report) -> None:
    """GitHub's step summary file is shared by a job's steps: appended to, in one write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(render(report))
