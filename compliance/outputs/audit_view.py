"""The audit view: one self-contained HTML page that an auditor reads, files and signs.

What a reader must have without the page's script is in the HTML itself, rendered here with
every value escaped: the title, the one-line result, the run's facts, the method, the
compliance per control and per management group, and the record of every subscription
(each case that did not pass with its reason, waiver and fix) with a reviewer's block. The
record is what prints (a print stylesheet hides everything interactive; page headers and
footers carry the run's identity and page numbers) and what a reader without scripts sees.

The page also carries its findings as JSON, from which its script draws the interactive
table (filters, sorting, CSV export) and a subscription's details, each only when needed,
so 20,000 cases open in seconds (pytest-html draws every row of its table up front).

Everything from Azure is someone else's text: here it is escaped (and made one line, and
cleaned of secrets) where it is written; in the JSON it is data the script puts on the page
as text. The page's Content-Security-Policy runs only its own scripts and styles, by hash,
and loads nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compliance.arm.secrets import redact
from compliance.controls import CATALOGUE, Control
from compliance.facts import RunFacts
from compliance.findings import Finding, Outcome, cis_number, compliance_percent, tally
from compliance.fixes import Fix, FixCommand, Note, Portal, Register, Request, Step, grouped
from compliance.model import ManagementGroup, Subscription
from compliance.outputs.html import COLOURS
from compliance.outputs.report import Report
from compliance.outputs.words import (
    BASELINE_WORDS,
    STALE_WAIVER,
    WORDS,
    evidence_lines,
    microsoft_line,
    result_line,
)
from compliance.text import one_line
from compliance.writing import write_text

# The outcomes a record lists case by case (with reason, waiver and fix).
NOT_PASSED = (Outcome.NOT_COMPLIANT, Outcome.NOT_VERIFIABLE, Outcome.WAIVED)
GREY = "#9e9e9e"


@functools.lru_cache(maxsize=4096)
def _command(step: Request | Register | FixCommand) -> str:
    """A step's command, made once: a subscription's controls share their requests."""
    return step.command


def fix_steps(fix: Fix) -> list[list[str]]:
    """A fix as the page draws it, [kind, note, text] steps: `prose` (portal steps, notes),
    `cli` (a command to copy, and what it needs first) or `rest` (the request a command
    sends). A run of requests shows its commands first, then the requests."""
    steps: list[list[str]] = []
    for step in grouped(fix):
        if isinstance(step, tuple):
            steps += [["cli", "", _command(r)] for r in step]
            steps += [["rest", "", f"{r.method} {r.path}\n{r.body}"] for r in step]
        elif isinstance(step, Register | FixCommand):
            steps.append(["cli", step.note, _command(step)])
        else:
            steps.append(["prose", "", step.text])
    return steps


def word(finding: Finding) -> str:
    """The case's outcome in audit words (a waiver no longer needed, a baseline's mark)."""
    waiver = finding.waiver
    if finding.outcome is Outcome.COMPLIANT and waiver is not None and waiver.state == "active":
        return STALE_WAIVER
    return WORDS[finding.outcome] + (
        BASELINE_WORDS.get(finding.baseline, "") if finding.baseline else ""
    )


def waiver_words(finding: Finding) -> str | None:
    waiver = finding.waiver
    if waiver is None:
        return None
    state = "expired, ignored" if waiver.state == "expired" else "active"
    return f"{state}: {waiver.reason} (approved by {waiver.approved_by}, expires {waiver.expires})"


@dataclass(frozen=True)
class Audited:
    """One subscription and its cases, in CIS order."""

    subscription: Subscription
    cases: tuple[Finding, ...]

    @property
    def outcomes(self) -> set[Outcome]:
        return {f.outcome for f in self.cases}

    @property
    def listed_case_by_case(self) -> bool:
        """A record lists this subscription's cases with their reasons: one did not pass,
        one holds a waiver (an expired one, or one no longer needed), or Microsoft's verdict
        disagrees with one (--azure-cross-check)."""
        return any(
            f.outcome in NOT_PASSED
            or f.waiver is not None
            or (f.microsoft is not None and f.microsoft.agrees is False)
            for f in self.cases
        )


def by_subscription(findings: Iterable[Finding], order: Mapping[str, int]) -> list[Audited]:
    """The findings per subscription, by display name (then id), each's cases in `order`
    (control key to its place: CIS order)."""
    grouped_: dict[str, list[Finding]] = {}
    subscriptions: dict[str, Subscription] = {}
    for f in findings:
        grouped_.setdefault(f.subscription.id, []).append(f)
        subscriptions.setdefault(f.subscription.id, f.subscription)
    return [
        Audited(subscriptions[sid], tuple(sorted(cases, key=lambda f: order[f.control.key])))
        for sid, cases in sorted(
            grouped_.items(),
            key=lambda i: (subscriptions[i[0]].display_name.lower(), i[0]),
        )
    ]


@dataclass(frozen=True)
class Judged:
    """A run's findings as the page reads them, each view of them made once."""

    findings: Sequence[Finding]
    counts: Mapping[str, Counter[Outcome]]  # per control key, in CIS order
    audited: Sequence[Audited]  # per subscription, by name
    groups: Sequence[dict[str, Any]]  # group_tree()
    under: Mapping[str, list[int]]  # per subscription id, the groups it is below


def judged(findings: Iterable[Finding], scopes: tuple[str, ...] = ()) -> Judged:
    findings = list(findings)
    counts = tally(findings)
    order = {key: n for n, key in enumerate(counts)}
    groups, under = group_tree(findings, scopes)
    return Judged(findings, counts, by_subscription(findings, order), groups, under)


def view_data(title: str, facts: RunFacts, run: Judged) -> dict[str, Any]:
    """The page's data: run facts, controls in CIS order, counts, the management groups, and
    per subscription its cases, with what every case of a subscription shares (evidence,
    raw answers) kept once."""
    counts = run.counts
    controls = {f.control.key: f for f in run.findings}  # one finding per control, for its ids
    subscriptions = []
    for audited in run.audited:
        sub = audited.subscription
        first = audited.cases[0]
        subscriptions.append(
            {
                "id": sub.id,
                "name": sub.display_name,
                "state": sub.state,
                "tenant": sub.tenant_id or "",
                "delegated_to": list(sub.managed_by_tenants),
                "path": [g.display_name for g in sub.management_groups],
                "under": run.under.get(sub.id, []),
                "cases": {
                    f.control.key: {
                        "outcome": f.outcome.value,
                        "word": word(f),
                        "reason": f.reason,
                        "fix": fix_steps(f.fix),
                        "waiver": waiver_words(f),
                        **(
                            {
                                "microsoft": microsoft_line(f),
                                "disagrees": f.microsoft.agrees is False,
                            }
                            if f.microsoft is not None
                            else {}
                        ),
                    }
                    for f in audited.cases
                },
                "evidence": evidence_lines(first.evidence),
                "raw": next((list(f.raw_answers) for f in audited.cases if f.raw_answers), []),
            }
        )
    return {
        "title": title,
        "cis_version": facts.cis_version,
        "cross_check": facts.cross_check is not None,
        "facts": [list(row) for row in facts.rows()],
        "error": facts.error,
        "outcomes": [[o.value, WORDS[o], COLOURS.get(o, GREY)] for o in WORDS],
        "controls": [  # tally() gives them in CIS order
            {
                "key": key,
                "cis": f"CIS {controls[key].cis_id}",
                "cis_id": controls[key].cis_id,
                "title": controls[key].control.title,
                "rationale": controls[key].control.rationale,
                "counts": {o.value: counts[key][o] for o in Outcome},
                "percent": compliance_percent(counts[key]),
            }
            for key in counts
        ],
        "subscriptions": subscriptions,
        "groups": list(run.groups),
    }


# --- management groups ------------------------------------------------------------------------


def _levels(subscription: Subscription, scopes: tuple[str, ...]) -> tuple[ManagementGroup, ...]:
    """The groups a subscription is in below the audited group (`scopes`), or below the
    tenant root group, top first; its own group when it sits in the audited one."""
    path = subscription.management_groups
    if not path:
        return ()
    ids = [g.id.lower() for g in path]
    top = next((ids.index(s.lower()) for s in scopes if s.lower() in ids), 0)
    return path[top + 1 :] or path[-1:]


def group_tree(
    findings: Sequence[Finding], scopes: tuple[str, ...]
) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    """Compliance per control for every management group below the audited ones, as a tree
    in reading order (each group, then the groups below it; siblings by name, then id: two
    groups may share a display name), and per subscription id the groups it is below."""
    found: dict[ManagementGroup, list[Finding]] = {}
    parent: dict[ManagementGroup, ManagementGroup | None] = {}
    levels_of: dict[str, tuple[ManagementGroup, ...]] = {}
    for f in findings:
        levels = levels_of.get(f.subscription.id)
        if levels is None:
            levels = levels_of[f.subscription.id] = _levels(f.subscription, scopes)
        above: ManagementGroup | None = None
        for group in levels:
            found.setdefault(group, []).append(f)
            parent.setdefault(group, above)
            above = group
    children: dict[ManagementGroup | None, list[ManagementGroup]] = {}
    for group, up in parent.items():
        children.setdefault(up, []).append(group)
    ordered: list[tuple[ManagementGroup, int]] = []

    def visit(up: ManagementGroup | None, depth: int) -> None:
        for group in sorted(children.get(up, []), key=lambda g: (g.display_name, g.id)):
            ordered.append((group, depth))
            visit(group, depth + 1)

    visit(None, 0)
    index = {group: n for n, (group, _) in enumerate(ordered)}
    tree = [
        {
            "group": group.display_name,
            "id": group.id,
            "depth": depth,
            "subscriptions": len({f.subscription.id for f in found[group]}),
            "controls": {
                key: {
                    "percent": compliance_percent(c),
                    "failing": c[Outcome.NOT_COMPLIANT] + c[Outcome.NOT_VERIFIABLE],
                }
                for key, c in tally(found[group]).items()
            },
        }
        for group, depth in ordered
    ]
    under = {sid: [index[g] for g in levels] for sid, levels in levels_of.items() if levels}
    return tree, under


# --- the page as HTML: what reads without the script, and prints ------------------------------


def _t(text: str) -> str:
    """Untrusted text as HTML text: one line, no secret, escaped."""
    return html.escape(redact(one_line(text)), quote=False)


def _a(text: str) -> str:
    """Untrusted text as an attribute value (in double quotes)."""
    return html.escape(redact(one_line(text)), quote=True)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def _result_state(findings: Sequence[Finding]) -> str:
    outcomes = {f.outcome for f in findings}
    if outcomes & {Outcome.NOT_COMPLIANT, Outcome.WAIVED}:
        return "not-compliant"
    if Outcome.NOT_VERIFIABLE in outcomes:
        return "not-verified"
    return "compliant" if outcomes - {Outcome.SKIPPED} else "none"


def _controls_of(run: Judged, cis_version: str) -> list[tuple[Control, str]]:
    """The run's controls with their CIS ids, in CIS order (the version's, when none was
    judged)."""
    one = {f.control.key: f for f in run.findings}
    if one:
        return [(one[key].control, one[key].cis_id or "") for key in run.counts]
    numbered = [(c, n) for c in CATALOGUE if (n := c.cis_id(cis_version))]
    return sorted(numbered, key=lambda item: cis_number(item[1]))


def header(report: Report) -> str:
    facts, findings = report.facts, report.findings
    parts = [
        '<header id="audit-header"><p class="kind">Audit report, for auditors</p>',
        f'<h1 id="audit-title">{_t(report.title)}</h1>',
        '<p class="about">The record of this audit to file and sign: the result, what was '
        "audited and how, and every subscription with each reason, waiver and fix. Printing "
        "this page gives the complete record. pytest-html's test report of the same run is "
        "for the engineers who run the suite.</p></header>",
    ]
    if facts.error:
        parts.append(f'<div id="banner" role="alert">{_t(facts.error)}.</div>')
    parts.append(
        f'<p id="result" class="result {_result_state(findings)}">{_t(result_line(findings))}</p>'
    )
    return "".join(parts)


def facts_table(facts: RunFacts) -> str:
    rows = "".join(
        f"<tr><th>{_t(label)}</th><td>{_t(value)}</td></tr>" for label, value in facts.rows()
    )
    return f'<h2>Audit</h2><table id="facts">{rows}</table>'


def _bar(counts: Mapping[Outcome, int]) -> str:
    """The judged cases as one stacked bar, its green share the compliance (SVG: the CSP
    allows no style attribute, and the bar prints)."""
    judged = [o for o in COLOURS if counts[o]]
    total = sum(counts[o] for o in COLOURS)
    x, rects = 0.0, []
    for outcome in judged:
        width = 100 * counts[outcome] / total
        rects.append(
            f'<rect data-outcome="{outcome.value}" x="{x:.3f}" y="0" width="{width:.3f}" '
            f'height="10" fill="{COLOURS[outcome]}"><title>{WORDS[outcome]}: '
            f"{counts[outcome]}</title></rect>"
        )
        x += width
    return (
        f'<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="compliant share of judged cases">{"".join(rects)}</svg>'
    )


def per_control_table(run: Judged) -> str:
    counts = run.counts
    ids = {f.control.key: (f.cis_id, f.control.title) for f in run.findings}
    head = "".join(f'<th data-outcome="{o.value}">{WORDS[o]}</th>' for o in WORDS)
    rows = []
    for key, c in counts.items():
        cis_id, title = ids[key]
        cells = "".join(f'<td data-outcome="{o.value}">{c[o]}</td>' for o in WORDS)
        rows.append(
            f'<tr data-control="{_a(key)}"><td class="control"><span class="cis">CIS '
            f"{_t(cis_id or '')}</span> {_t(title)}</td>{cells}"
            f'<td class="percent">{_percent(compliance_percent(c))}</td>'
            f'<td class="chart">{_bar(c)}</td></tr>'
        )
    if not rows:
        rows.append(
            f'<tr><td class="control" colspan="{len(WORDS) + 3}">No case was judged.</td></tr>'
        )
    return (
        "<h2>Compliance per control</h2>"
        '<table id="per-control"><caption>Each count is of subscriptions: one case per control '
        "and subscription.</caption>"
        f'<thead><tr><th class="control">Control</th>{head}<th>compliance</th>'
        '<th class="chart">compliant share of judged cases</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        '<p class="note">Compliance is the compliant share of the judged cases: waived cases '
        "count against it, skipped ones (disabled or deleted subscriptions) are left aside.</p>"
    )


def method(facts: RunFacts, run: Judged) -> str:
    versions = ", ".join(facts.api_versions) or "none answered"
    scoped = (
        " and the management groups above them (to select those below "
        f"{', '.join(facts.management_groups)})"
        if facts.management_groups
        else ""
    )
    items, sources = [], []
    for control, cis_id in _controls_of(run, facts.cis_version):
        also = "; ".join(f"{r.framework} {', '.join(r.controls)}" for r in control.references)
        sources += [r.source for r in control.references if r.source not in sources]
        items.append(
            f'<li data-control="{_a(control.key)}"><span class="cis">CIS {_t(cis_id)}</span> '
            f"{_t(control.title)}: passes when {_t(control.passes_when)}."
            + (f' <span class="also">Also: {_t(also)}.</span>' if also else "")
            + "</li>"
        )
    waivers = (
        f"Waivers come from {_t(facts.waivers)} (SHA-256 {_t(facts.waivers_sha256 or '')})"
        if facts.waivers
        else "No waivers file was given"
    )
    parts = [
        '<h2>Method</h2><div id="method">',
        "<p>The audit lists the subscriptions the identity can see"
        f"{_t(scoped)}, then reads each selected subscription's Microsoft Defender for Cloud "
        "security contacts (<code>GET /subscriptions/{id}/providers/Microsoft.Security/"
        f"securityContacts</code>, API version {_t(versions)}) from Azure Resource Manager. "
        "It sends GET requests only and changes nothing. Each control is judged on that one "
        "read, by CIS Microsoft Azure Foundations Benchmark "
        f"{_t(facts.cis_version)} and the organisation's policy ({_t(facts.policy_words())}); "
        "a contact that is disabled notifies nobody, for every control.</p>",
        f'<ul id="method-controls">{"".join(items)}</ul>',
    ]
    if sources:
        parts.append(f"<p>Other frameworks' controls are from {_t('; '.join(sources))}.</p>")
    parts.append(
        f"<p>{waivers}: an approved, unexpired waiver makes a failing case <em>waived</em>, "
        "which compliance counts against; a waiver never covers a case that could not be "
        "verified, and an expired one is ignored (the case says so).</p>"
        "<p>A case that could not be verified (access refused, throttled past the run's "
        "limits, an answer that is not what Azure documents, a value this suite does not "
        "know) is <em>not verifiable</em>: never a pass; it fails the run and is listed with "
        "its reason. Disabled and deleted subscriptions are <em>skipped</em>: not read, and "
        "left out of compliance.</p></div>"
    )
    return "".join(parts)


def per_group_table(
    groups: Sequence[Mapping[str, Any]], controls: Sequence[Mapping[str, Any]]
) -> str:
    if not groups:
        return ""
    head = "".join(f'<th title="{_a(c["title"])}">{_t(c["cis"])}</th>' for c in controls)
    rows = []
    for n, g in enumerate(groups):
        cells = []
        for c in controls:
            found = g["controls"].get(c["key"])
            if found is None:
                cells.append("<td>\u2013</td>")
                continue
            failing = f" ({found['failing']} failing)" if found["failing"] else ""
            cells.append(f"<td>{_percent(found['percent'])}{failing}</td>")
        rows.append(
            f'<tr data-group="{n}" class="depth-{min(g["depth"], 6)}">'
            f'<td class="group">{_t(g["group"])}</td><td>{g["subscriptions"]}</td>'
            f"{''.join(cells)}</tr>"
        )
    return (
        "<h2>Compliance per management group</h2>"
        '<table id="per-group"><caption>Each group below the audited ones, the groups within '
        "it indented; per control, its compliance and how many of its subscriptions fail it "
        "(not compliant or not verifiable). A subscription counts in every group it is below. "
        '<span class="js-only">Click a group to list only its subscriptions.</span></caption>'
        f"<thead><tr><th>Management group</th><th>subscriptions</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# --- the record: every subscription, for paper and for a reader without scripts ---------------


def _merged_fix(cases: Iterable[Finding]) -> list[Step]:
    """Every step of the cases' fixes once, in order; the portal settings of one subscription
    as one portal step (one page, one Save)."""
    steps: list[Step] = []
    settings: list[str] = []
    portal_at: int | None = None
    subscription_id = ""
    for f in cases:
        for step in f.fix:
            if isinstance(step, Portal):
                if step.setting not in settings:
                    settings.append(step.setting)
                subscription_id = step.subscription_id
                if portal_at is None:
                    portal_at = len(steps)
            elif step not in steps:
                steps.append(step)
    if portal_at is not None:
        steps.insert(portal_at, Portal(subscription_id, "; ".join(settings)))
    return steps


def _fix_html(steps: Sequence[Step]) -> str:
    parts = []
    for step in steps:
        if isinstance(step, Portal | Note):
            parts.append(f"<p>{_t(step.text)}</p>")
        elif isinstance(step, Register):
            parts.append(
                f"<p>Register Defender for Cloud first:</p><code>{_t(_command(step))}</code>"
            )
        elif isinstance(step, Request | FixCommand):
            parts.append(f"<code>{_t(_command(step))}</code>")
    label = '<b class="rec-label">How to fix:</b> '
    # run in with the first paragraph: a line less per subscription, pages less in all
    if parts and parts[0].startswith("<p>"):
        parts[0] = f"<p>{label}{parts[0][3:]}"
    else:
        parts.insert(0, f"<p>{label}</p>")
    return f'<div class="rec-fix">{"".join(parts)}</div>'


def _case_lines(audited: Audited) -> str:
    """The cases, those of one word, reason and waiver together; compliant ones in a line."""
    lines: dict[tuple[str, str, str | None], list[Finding]] = {}
    passed: list[Finding] = []
    for f in audited.cases:
        if f.outcome is Outcome.COMPLIANT and f.waiver is None:
            passed.append(f)
        else:
            lines.setdefault((word(f), f.reason, waiver_words(f)), []).append(f)
    parts = []
    for (said, reason, waiver), cases in lines.items():
        cis = "CIS " + ", ".join(f.cis_id or "" for f in cases)
        outcome = cases[0].outcome.value
        microsoft = [line for line in map(microsoft_line, cases) if line]
        parts.append(
            f'<li><span class="cis">{_t(cis)}</span> <b class="o-{outcome}">{_t(said)}</b>: '
            f"{_t(reason)}"
            + (f'<br><span class="rec-waiver">Waiver {_t(waiver)}</span>' if waiver else "")
            + "".join(f'<br><span class="rec-microsoft">{_t(line)}</span>' for line in microsoft)
            + "</li>"
        )
    # Microsoft's verdict on a compliant case is printed where it disagrees
    for f in passed:
        if f.microsoft is not None and f.microsoft.agrees is False:
            parts.append(
                f'<li><span class="cis">CIS {_t(f.cis_id or "")}</span> <b class="o-compliant">'
                f'{WORDS[Outcome.COMPLIANT]}</b><br><span class="rec-microsoft">'
                f"{_t(microsoft_line(f) or '')}</span></li>"
            )
    if passed:
        cis = "CIS " + ", ".join(f.cis_id or "" for f in passed)
        parts.append(
            f'<li><span class="cis">{_t(cis)}</span> <b class="o-compliant">'
            f"{WORDS[Outcome.COMPLIANT]}</b></li>"
        )
    return f'<ul class="rec-cases">{"".join(parts)}</ul>'


def _about(sub: Subscription) -> str:
    said = []
    if sub.management_groups:
        said.append(
            "Management groups: " + " \u203a ".join(g.display_name for g in sub.management_groups)
        )
    if sub.state != "Enabled":
        said.append(f"state {sub.state}")
    if sub.managed_by_tenants:
        said.append(
            f"home tenant {sub.tenant_id}, delegated through Azure Lighthouse to "
            + ", ".join(sub.managed_by_tenants)
        )
    return f' <span class="rec-about">{_t("; ".join(said))}</span>' if said else ""


def _subscription_record(audited: Audited) -> str:
    sub = audited.subscription
    fix = _merged_fix(f for f in audited.cases if f.outcome in NOT_PASSED)
    evidence = evidence_lines(audited.cases[0].evidence)
    return (
        f'<article class="rec"><h4><span class="rec-name">{_t(sub.display_name)}</span> '
        f'<span class="id">{_t(sub.id)}</span>{_about(sub)}</h4>{_case_lines(audited)}'
        + (_fix_html(fix) if fix else "")
        + f'<p class="rec-evidence">Evidence: {"<br>".join(_t(line) for line in evidence)}</p>'
        "</article>"
    )


def _list(audited: Sequence[Audited], *, reasons: bool) -> str:
    rows = []
    for a in audited:
        sub = a.subscription
        path = " \u203a ".join(g.display_name for g in sub.management_groups)
        last = a.cases[0].reason if reasons else path
        rows.append(
            f'<tr><td class="rec-name">{_t(sub.display_name)}</td><td class="id">{_t(sub.id)}'
            f"</td><td>{_t(last)}</td></tr>"
        )
    last_head = "Why" if reasons else "Management groups"
    return (
        '<table class="rec-list"><thead><tr><th>Subscription</th><th>Subscription ID</th>'
        f"<th>{last_head}</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def record(run: Judged) -> str:
    """Every subscription: those with a case not passed (or a waiver) one by one with each
    reason, waiver and fix; then the compliant ones and the skipped ones as lists."""
    audited = run.audited
    listed = [a for a in audited if a.listed_case_by_case]
    skipped = [a for a in audited if not a.listed_case_by_case and a.outcomes == {Outcome.SKIPPED}]
    passed = [a for a in audited if not a.listed_case_by_case and a.outcomes != {Outcome.SKIPPED}]
    parts = [
        '<section id="record"><h2>Every subscription</h2>',
        f"<p>{_plural(len(audited), 'subscription')}: {len(listed)} with a case not compliant, "
        f"not verifiable or waived, each with its reasons, waiver and how to fix it; "
        f"{len(passed)} compliant on every control judged; {len(skipped)} skipped. A fix's "
        "<code>az rest</code> command is the Azure Resource Manager request it sends; "
        f"for <code>python -m compliance fix</code>, {_t(FixCommand.note)}.</p>",
    ]
    if listed:
        parts.append(
            f'<h3 id="record-listed">Not compliant, not verifiable or waived: '
            f"{_plural(len(listed), 'subscription')}</h3>"
        )
        parts += [_subscription_record(a) for a in listed]
    if passed:
        parts.append(
            f'<h3 id="record-compliant">Compliant on every control: '
            f"{_plural(len(passed), 'subscription')}</h3>{_list(passed, reasons=False)}"
        )
    if skipped:
        parts.append(
            f'<h3 id="record-skipped">Skipped, not read: {_plural(len(skipped), "subscription")}'
            f"</h3>{_list(skipped, reasons=True)}"
        )
    parts.append("</section>")
    return "".join(parts)


def review(report: Report) -> str:
    facts = report.facts
    lines = "".join(
        f'<tr><th>{label}</th><td class="line"></td></tr>'
        for label in ("Reviewed by", "Role", "Date", "Signature")
    )
    return (
        '<section id="review"><h2>Review</h2>'
        f"<p>Reviewed: {_t(report.title)}, the audit started {_t(facts.started)} "
        f"({_t(_scope_in_short(facts))}).</p>"
        f'<table id="sign-off">{lines}</table>'
        '<p class="rec-label">Notes:</p><div class="notes"></div></section>'
    )


def _scope_in_short(facts: RunFacts) -> str:
    c = facts.coverage
    where = f" below {', '.join(facts.management_groups)}" if facts.management_groups else ""
    return f"{facts.target}{where}: {c.selected} of {_plural(c.visible, 'subscription')} selected"


def _css_string(text: str) -> str:
    """Text as a CSS string: every character but plain letters, digits and a few marks as
    an escape, so nothing in it ends the string or the style."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;()_+-/")
    return '"' + "".join(c if c in safe else f"\\{ord(c):06x}" for c in one_line(text)) + '"'


def page_style(report: Report) -> str:
    """The printed pages' margins: the run's identity above, where and when below, and the
    page number (Chromium prints CSS page-margin boxes)."""
    facts = report.facts
    above = _css_string(f"Audit report: {report.title}")
    below = _css_string(f"Started {facts.started}; {_scope_in_short(facts)}")
    return (
        "@page{size:A4;margin:16mm 12mm 16mm 12mm;"
        f"@top-left{{content:{above};"
        "font:8pt system-ui,sans-serif;color:#444}"
        f"@bottom-left{{content:{below};"
        "font:8pt system-ui,sans-serif;color:#444}"
        '@bottom-right{content:"Page " counter(page) " of " counter(pages);'
        "font:8pt system-ui,sans-serif;color:#444}}"
    )


def body(report: Report, run: Judged, data: Mapping[str, Any]) -> str:
    """Everything the page shows, as HTML: what reads without scripts and what prints."""
    return "".join(
        [
            header(report),
            facts_table(report.facts),
            per_control_table(run),
            method(report.facts, run),
            per_group_table(data["groups"], data["controls"]),
            '<section id="subscriptions" class="js-only"><h2>Subscriptions</h2>'
            '<div id="table-app"></div></section>'
            '<p id="no-script" class="no-js-only">Scripts are off: the interactive table is not '
            "drawn. Every subscription, with each reason, waiver and fix, is listed below.</p>",
            f"<script>{SCRIPT}</script>",
            record(run),
            review(report),
        ]
    )


def render(data: Mapping[str, Any], content: str = "", page: str = "") -> str:
    # JSON inside <script> ends at the first "</": every <, > and & is a JSON escape, and
    # ensure_ascii escapes U+2028/2029 and lone surrogates.
    payload = (
        json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    styles = [STYLE, *([page] if page else [])]
    hashes = " ".join(f"'{_sha256(s)}'" for s in styles)
    policy = (
        f"default-src 'none'; style-src {hashes}; "
        f"script-src '{_sha256(HEAD_SCRIPT)}' '{_sha256(SCRIPT)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    content = content or f"<script>{SCRIPT}</script>"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Audit report: {_t(str(data['title']))}</title>"
        f"<script>{HEAD_SCRIPT}</script>"
        + "".join(f"<style>{s}</style>" for s in styles)
        + "</head><body>"
        f'<script type="application/json" id="audit-data">{redact(payload)}</script>'
        f'<main id="audit">{content}</main></body></html>\n'
    )


def write(path: Path, report: Report) -> None:
    run = judged(report.findings, report.scopes)
    data = view_data(report.title, report.facts, run)
    write_text(path, render(data, body(report, run, data), page_style(report)))


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


# The page's style and scripts, inlined so that the file opens anywhere, offline. The head's
# script marks the page as scripted before anything is drawn, so the record (for paper and
# for readers without scripts) is never laid out on screen when the table will be.
RESOURCES = Path(__file__).parent.parent / "resources"
STYLE = (RESOURCES / "audit.css").read_text(encoding="utf-8")
SCRIPT = (RESOURCES / "audit.js").read_text(encoding="utf-8")
HEAD_SCRIPT = 'document.documentElement.classList.add("js");'
