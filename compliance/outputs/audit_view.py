"""The audit view: one self-contained HTML page that an auditor reads first, at any size.

One row per subscription with a cell per control, in CIS order and audit words; a row opens
to each control's verdict, reason, fix and the evidence. The page carries its findings as
JSON and draws rows and details in the browser, each only when it is needed, so 20,000
cases open in seconds (pytest-html draws every row of its table up front).

Everything from Azure reaches the page as JSON data and is put on it as text (never as
markup); the page's Content-Security-Policy runs only its own script and loads nothing.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from compliance.arm.secrets import redact
from compliance.facts import RunFacts
from compliance.findings import Finding, Outcome, compliance_percent, tally
from compliance.fixes import Fix, FixCommand, Register, grouped
from compliance.model import ManagementGroup, Subscription
from compliance.outputs.html import COLOURS
from compliance.outputs.report import Report
from compliance.outputs.words import BASELINE_WORDS, STALE_WAIVER, WORDS, evidence_lines
from compliance.writing import write_text


def fix_steps(fix: Fix) -> list[list[str]]:
    """A fix as the page draws it, [kind, note, text] steps: `prose` (portal steps, notes),
    `cli` (a command to copy, and what it needs first) or `rest` (the request a command
    sends). A run of requests shows its commands first, then the requests."""
    steps: list[list[str]] = []
    for step in grouped(fix):
        if isinstance(step, tuple):
            steps += [["cli", "", r.command] for r in step]
            steps += [["rest", "", f"{r.method} {r.path}\n{r.body}"] for r in step]
        elif isinstance(step, Register | FixCommand):
            steps.append(["cli", step.note, step.command])
        else:
            steps.append(["prose", "", step.text])
    return steps


def view_data(
    title: str,
    facts: RunFacts,
    findings: Iterable[Finding],
    scopes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The page's data: run facts, controls in CIS order, counts, and per subscription its
    cases, with what every case of a subscription shares (evidence, raw answers) kept once."""
    findings = list(findings)
    counts = tally(findings)
    controls = {f.control.key: f for f in findings}  # one finding per control, for its ids
    subscriptions: dict[str, dict[str, Any]] = {}
    for f in sorted(
        findings, key=lambda f: (f.subscription.display_name.lower(), f.subscription.id)
    ):
        sub = subscriptions.setdefault(
            f.subscription.id,
            {
                "id": f.subscription.id,
                "name": f.subscription.display_name,
                "state": f.subscription.state,
                "tenant": f.subscription.tenant_id or "",
                "delegated_to": list(f.subscription.managed_by_tenants),
                "path": [g.display_name for g in f.subscription.management_groups],
                "cases": {},
                "evidence": evidence_lines(f.evidence),
                "raw": [],
            },
        )
        if not sub["raw"] and f.raw_answers:
            sub["raw"] = list(f.raw_answers)
        stale = (
            f.outcome is Outcome.COMPLIANT and f.waiver is not None and f.waiver.state == "active"
        )
        sub["cases"][f.control.key] = {
            "outcome": f.outcome.value,
            "word": STALE_WAIVER
            if stale
            else WORDS[f.outcome] + (BASELINE_WORDS.get(f.baseline, "") if f.baseline else ""),
            "reason": f.reason,
            "fix": fix_steps(f.fix),
            "waiver": None
            if f.waiver is None
            else (
                f"{'expired, ignored' if f.waiver.state == 'expired' else 'active'}: "
                f"{f.waiver.reason} (approved by {f.waiver.approved_by}, expires "
                f"{f.waiver.expires})"
            ),
        }
    return {
        "title": title,
        "facts": [list(row) for row in facts.rows()],
        "error": facts.error,
        "outcomes": [[o.value, WORDS[o], COLOURS.get(o, "#9e9e9e")] for o in WORDS],
        "controls": [  # tally() gives them in CIS order
            {
                "key": key,
                "cis": f"CIS {controls[key].cis_id}",
                "title": controls[key].control.title,
                "rationale": controls[key].control.rationale,
                "counts": {o.value: counts[key][o] for o in Outcome},
                "percent": compliance_percent(counts[key]),
            }
            for key in counts
        ],
        "subscriptions": list(subscriptions.values()),
        "groups": per_group(findings, scopes),
    }


def top_group(subscription: Subscription, scopes: tuple[str, ...]) -> ManagementGroup | None:
    """The group a subscription is in one level below the audited group (`scopes`), or below
    the tenant root group; None when the run read no management groups."""
    path = subscription.management_groups
    ids = [g.id.lower() for g in path]
    top = next((ids.index(s.lower()) for s in scopes if s.lower() in ids), 0)
    return path[min(top + 1, len(path) - 1)] if path else None


def per_group(findings: list[Finding], scopes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Compliance per control for each group one level below the audited ones (by id: two
    groups may share a display name)."""
    by_group: dict[ManagementGroup, list[Finding]] = {}
    for f in findings:
        group = top_group(f.subscription, scopes)
        if group is not None:
            by_group.setdefault(group, []).append(f)
    return [
        {
            "group": group.display_name,
            "id": group.id,
            "subscriptions": len({f.subscription.id for f in found}),
            "controls": {
                key: {
                    "percent": compliance_percent(c),
                    "failing": c[Outcome.NOT_COMPLIANT] + c[Outcome.NOT_VERIFIABLE],
                }
                for key, c in tally(found).items()
            },
        }
        for group, found in sorted(by_group.items(), key=lambda i: (i[0].display_name, i[0].id))
    ]


def render(data: Mapping[str, Any]) -> str:
    # JSON inside <script> ends at the first "</": every <, > and & is a JSON escape, and
    # ensure_ascii escapes U+2028/2029 and lone surrogates.
    payload = (
        json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    policy = (
        f"default-src 'none'; style-src '{_sha256(STYLE)}'; script-src '{_sha256(SCRIPT)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(data['title'])}</title><style>{STYLE}</style></head><body>"
        f'<script type="application/json" id="audit-data">{redact(payload)}</script>'
        '<main id="audit"><h1 id="audit-title"></h1><p id="audit-loading">Loading the audit'
        "\u2026 (this page needs JavaScript)</p></main>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write(path: Path, report: Report) -> None:
    write_text(path, render(view_data(report.title, report.facts, report.findings, report.scopes)))


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


# The page's style and script, inlined so that the file opens anywhere, offline.
RESOURCES = Path(__file__).parent.parent / "resources"
STYLE = (RESOURCES / "audit.css").read_text(encoding="utf-8")
SCRIPT = (RESOURCES / "audit.js").read_text(encoding="utf-8")
