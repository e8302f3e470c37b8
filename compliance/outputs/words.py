"""The words every output shares: what an outcome is called, a case's story (its verdict,
reason and fix) and one line, the evidence in short lines, each control's label. Each
output makes its own text from these and from the findings' typed values; none reads
another's wording.
"""

from __future__ import annotations

from collections.abc import Iterable

from compliance import fixes
from compliance.arm.secrets import redact
from compliance.assessment import Evidence
from compliance.contacts import Contact
from compliance.controls import CATALOGUE
from compliance.findings import Baseline, Finding, Outcome
from compliance.text import one_line, printable

# What a report calls each outcome, in audit words.
WORDS = {
    Outcome.COMPLIANT: "compliant",
    Outcome.NOT_COMPLIANT: "not compliant",
    Outcome.NOT_VERIFIABLE: "not verifiable",
    Outcome.WAIVED: "waived",
    Outcome.SKIPPED: "skipped",
}
STALE_WAIVER = "compliant, waiver no longer needed"
# Against a baseline (--azure-baseline): what a failing case adds to its word.
BASELINE_WORDS = {Baseline.KNOWN: " (known)", Baseline.NEW: " (new)"}


def title(cis_version: str) -> str:
    return f"Azure security contacts: CIS Microsoft Azure Foundations {cis_version}"


def result_line(findings: Iterable[Finding]) -> str:
    """The audit's result in one line: `Not compliant: 9 of 12 subscriptions fail at least
    one control; 2 could not be verified.` Subscriptions, not cases: a person's unit."""
    outcomes: dict[str, set[Outcome]] = {}
    for f in findings:
        outcomes.setdefault(f.subscription.id.lower(), set()).add(f.outcome)
    judged = [o for o in outcomes.values() if o != {Outcome.SKIPPED}]
    failing = sum(bool(o & {Outcome.NOT_COMPLIANT, Outcome.WAIVED}) for o in judged)
    unverified = sum(Outcome.NOT_VERIFIABLE in o for o in judged)
    waived_only = sum(Outcome.WAIVED in o and Outcome.NOT_COMPLIANT not in o for o in judged)
    if not judged:
        return "No result: no subscription was judged."
    total = f"{len(judged)} subscription{'' if len(judged) == 1 else 's'}"
    if failing:
        verb = "fails" if failing == 1 else "fail"
        head = f"Not compliant: {failing} of {total} {verb} at least one control"
        if waived_only:
            head += f" ({waived_only} only where a waiver accepts it)"
    elif unverified:
        head = f"Not verified: none of {total} fails a control"
    else:
        head = f"Compliant: every control passes on {'the' if len(judged) == 1 else 'all'} {total}"
    if unverified:
        head += f"; {unverified} could not be verified"
    return head + "."


def control_labels(cis_version: str, *, titled: bool = False) -> dict[str, str]:
    """Each control of `cis_version` as `CIS 8.1.13 contact_email` (or with its title)."""
    return {
        c.key: f"CIS {c.cis_id(cis_version)} {c.title if titled else c.key}"
        for c in CATALOGUE
        if c.cis_id(cis_version)
    }


def story(finding: Finding) -> tuple[str, str]:
    """A case that did not pass, whole (title, reason, how to fix it) and in one line: what
    the terminal and JUnit show of it."""
    cis = f"CIS {finding.cis_version} {finding.cis_id}"
    text = f"{cis} {finding.control.title}\n"
    if finding.subscription.management_groups:
        # display names, whose line breaks printable() would keep
        text += f"Management groups: {one_line(finding.subscription.management_group_path)}\n"
    fix = fixes.text(finding.fix)
    if finding.outcome is Outcome.NOT_VERIFIABLE:
        text += f"Could not be verified: {finding.reason}" + (f"\n{fix}" if fix else "")
    else:
        text += finding.reason + (f"\nHow to fix:\n{fix}" if fix else "")
    waiver = finding.waiver
    if waiver is not None and waiver.state == "expired":
        text += f"\nA waiver for this case expired and was ignored: {one_line(waiver.described)}"
    return printable(redact(text)), message(finding)


def message(finding: Finding) -> str:
    """The case in one line: its CIS id, verdict and reason."""
    cis = f"CIS {finding.cis_version} {finding.cis_id}"
    return one_line(redact(f"{cis}: {finding.outcome.label}: {finding.reason}"))


def microsoft_line(finding: Finding) -> str | None:
    """Defender for Cloud's verdict beside the case's, in one line (None: not asked)."""
    m = finding.microsoft
    if m is None:
        return None
    head = "Microsoft Defender for Cloud"
    if m.assessment is None:
        return one_line(f"{head}: {m.why}")
    if m.status is None:
        return one_line(f"{head}: {m.why} (assessment {m.assessment})")
    since = f" since {m.status_changed[:10]}" if m.status_changed else ""
    judged = f"{head}: {m.status}{since} (assessment {m.assessment}, policy {m.policy})"
    if m.agrees is True:
        return one_line(f"{judged}: agrees")
    if m.agrees is False:
        return one_line(f"{judged}: disagrees: {m.why}")
    return one_line(f"{judged}: {m.why}")


# --- the evidence in short lines --------------------------------------------------------------


def evidence_lines(found: Evidence) -> list[str]:
    """What ARM answered and the contacts it held, one short line each."""
    answers = "; ".join(
        f"HTTP {r.status} at {r.received_at} (x-ms-request-id {r.request_id})"
        for r in found.responses
    )
    version = f", api-version {found.api_version}" if found.judged else ""
    lines = [f"Answers: {answers or 'none'}{version}"]
    return lines + [_contact_line(c) for c in found.contacts or ()]


def _contact_line(contact: Contact) -> str:
    enabled = {True: "enabled", False: "DISABLED", None: "no on/off setting"}[contact.enabled]
    severity = contact.alert_minimal_severity
    alerts = _from(severity) if severity else "on, with no severity set"
    if not contact.alert_notifications:
        alerts = "off"
    roles = ", ".join(contact.notify_roles) if contact.notify_roles_enabled else "off"
    return (
        f"contact '{contact.name}': {'; '.join(contact.addresses) or '(no address)'}"
        f" | {enabled} | alerts: {alerts} | roles: {roles or '(none)'}"
        f" | attack paths: {_from(contact.attack_path_minimal_risk)}"
    )


def _from(level: str | None) -> str:
    return f"{level} and above" if level else "off"
