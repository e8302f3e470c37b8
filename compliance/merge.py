"""The shards of one audit back together: `python -m compliance merge OUT_DIR FINDINGS...`.

A tenant too large for one CI job is split with `--azure-shard K/N`, one job a shard; each
writes its findings file (and its evidence bundle). The merge reads them and writes one set
of reports as if one run had judged every subscription: the audit view, JUnit, the findings
JSON and CSV, OCSF, the job summary, and one evidence bundle from the shards' bundles (its
digest made anew, each shard's recorded).

It refuses shards that judged by different rules (CIS version, policy, waivers, suite
version, the identity's tenant, what was audited and selected), with one line naming the
difference. A shard missing from the merge, or given twice, is said in every report and
fails it: the missing shard's subscriptions, known from the listing every shard keeps, are
listed as not audited. So is a shard that did not run, or did not finish.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compliance import __commit__, __version__, cis, localfiles
from compliance.assessment import raw_answers
from compliance.audit import IN_ANOTHER_SHARD, shard_of
from compliance.baseline import BaselineError, load
from compliance.controls import CATALOGUE, Control
from compliance.evidence import EVIDENCE_SCHEMA, EvidenceError, load_bundle, recorded_reads, seal
from compliance.facts import NO_CASE, RunFacts, coverage, tenants, utc_now
from compliance.findings import FINDINGS_SCHEMA, Baseline, Finding, Outcome, ordered
from compliance.fixes import Note
from compliance.microsoft import counted
from compliance.model import Subscription
from compliance.outputs import OUTPUTS, Report, by_dest
from compliance.outputs.terminal import closing
from compliance.outputs.words import result_line
from compliance.text import one_line

# A shard's findings file: a 2-core job audits about 10,000 subscriptions in the time a CI
# job is given (bench/README.md), ~40,000 findings and ~130 MB; the limits leave room twice
# over. Read whole, a file costs about its size again and up to ~70 bytes a value.
LIMITS = localfiles.Limits("a shard's findings file", bytes=512 * 2**20, values=24_000_000)
MAX_FINDINGS = 400_000
# The JUnit testsuite's name the suite's pytest.ini gives (junit_suite_name).
SUITE_NAME = "azure-security-contacts"
AUDIT_VIEW = str(by_dest("azure_audit_html").file)
EVIDENCE_FILE = str(by_dest("azure_evidence").file)


class MergeError(ValueError):
    """The shards cannot be merged; the message says why (one ERROR: line, exit 4)."""


@dataclass(frozen=True)
class Shard:
    source: str  # the findings file, as given
    facts: RunFacts
    findings: list[Finding]

    @property
    def part(self) -> tuple[int, int]:
        shard = self.facts.coverage.shard
        assert shard is not None
        return shard

    @property
    def name(self) -> str:
        return f"shard {self.part[0]} of {self.part[1]}"


def load_shard(path: str) -> Shard:
    """A shard's findings file, read within limits; MergeError when it is not one."""
    try:
        document = load(path, LIMITS, MAX_FINDINGS)
    except BaselineError as exc:
        raise MergeError(str(exc)) from None
    if document.get("schema") != FINDINGS_SCHEMA:
        raise MergeError(f"{path}: not a findings file ({FINDINGS_SCHEMA!r} expected)")
    try:
        facts = RunFacts.from_dict(document["run"])
        findings = [Finding.from_dict(f) for f in document["findings"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MergeError(f"{path}: not laid out as {FINDINGS_SCHEMA}: {exc!r}") from None
    if facts.coverage.shard is None:
        raise MergeError(
            f"{path}: not a shard's findings (its run had no --azure-shard): a merge puts the "
            "shards of one audit together"
        )
    return Shard(path, facts, findings)


# What shards of one audit share: what they judged by, and what they audited.
_SAME: tuple[tuple[str, Callable[[RunFacts], str]], ...] = (
    ("the CIS version", lambda f: f.cis_version),
    ("the organisation's policy", lambda f: f.policy_words()),
    ("the waivers file (its SHA-256)", lambda f: f.waivers_sha256 or "none"),
    ("the suite version", lambda f: f.suite_version),
    ("the identity's tenant", lambda f: f.signed_in_tenant or "unknown"),
    ("what was audited", lambda f: f.target),
    ("the management groups", lambda f: ", ".join(f.management_groups) or "none"),
    ("the number of shards", lambda f: str(f.coverage.shard[1]) if f.coverage.shard else "-"),
    ("the cross-check (--azure-cross-check)", lambda f: "on" if f.cross_check else "off"),
    ("the pytest selection (-m, -k)", lambda f: f.pytest_selection or "none"),
    (
        "the selection (the subscriptions the other options chose)",
        lambda f: ",".join(sorted(s.id.lower() for s in f.coverage.listing)),
    ),
)


def check_alike(shards: Sequence[Shard]) -> None:
    """MergeError naming the first way a shard differs from the first one."""
    first = shards[0]
    for what, of in _SAME:
        mine = of(first.facts)
        for shard in shards[1:]:
            theirs = of(shard.facts)
            if mine != theirs:
                shown = "" if len(mine) + len(theirs) > 200 else f" ({theirs!r}, not {mine!r})"
                raise MergeError(
                    f"{shard.source} was judged by another {what.removeprefix('the ')} than "
                    f"{first.source}{shown}: the shards of one audit judge by the same rules"
                )


def merge(shards: Sequence[Shard]) -> tuple[RunFacts, list[Finding]]:
    """One run's facts and findings from its shards. The shards that listed the subscriptions
    must agree on what they judged by (MergeError); a shard missing, given twice, that did
    not run, or that left a case unjudged makes the merge incomplete, the cases it would
    have judged not verifiable: "not audited"."""
    listed = [s for s in shards if s.facts.coverage.listing]
    if not listed:
        raise MergeError(
            "no shard listed the subscriptions: "
            + "; ".join(f"{s.source}: {s.facts.error or 'none selected'}" for s in shards)
        )
    check_alike(listed)
    first = listed[0]
    count = first.part[1]
    for shard in shards:
        if shard.part[1] != count:
            raise MergeError(
                f"{shard.source} is {shard.name}, {first.source} one of {count}: the shards of "
                "one audit split it alike"
            )
    by_part: dict[int, Shard] = {}
    problems: list[str] = []
    for shard in shards:
        if shard.part[0] in by_part:
            problems.append(
                f"{shard.name} was given twice ({by_part[shard.part[0]].source} and "
                f"{shard.source}); only the first is used"
            )
            continue
        by_part[shard.part[0]] = shard
    findings = [f for shard in by_part.values() for f in shard.findings]
    judged = {(f.subscription.id.lower(), f.control.key) for f in findings}
    cis_version = first.facts.cis_version
    controls = [c for c in CATALOGUE if c.cis_id(cis_version)]
    every_case = first.facts.pytest_selection is None  # else -k/-m chose which cases ran
    home: dict[int, list[Subscription]] = {}  # each shard's part of the listing
    for subscription in first.facts.coverage.listing:
        home.setdefault(shard_of(subscription.id, count), []).append(subscription)
    for k in range(1, count + 1):
        part = by_part.get(k)
        if part is None:
            why = f"shard {k} of {count} is missing from the merge"
        elif part.facts.error is not None and not part.facts.interrupted:
            why = f"shard {k} of {count} did not run ({part.facts.error})"
        elif every_case:
            why = f"shard {k} of {count} ({part.source}) left it unjudged"
        else:
            continue  # what -k or -m left out is coverage (excluded), not a gap
        lost = [
            _not_audited(s, c, cis_version, why)
            for s in home.get(k, ())
            for c in controls
            if (s.id.lower(), c.key) not in judged
        ]
        if lost:
            subscriptions = len({f.subscription.id.lower() for f in lost})
            problems.append(
                f"{why}: {len(lost)} case{'s' if len(lost) != 1 else ''} of {subscriptions} "
                f"subscription{'s' if subscriptions != 1 else ''} not audited"
            )
            findings.extend(lost)
    for shard in by_part.values():
        if shard.facts.interrupted:
            problems.append(f"{shard.name} ({shard.source}): {shard.facts.error}")
    return _facts(first, list(by_part.values()), findings, problems), ordered(findings)


def _not_audited(subscription: Subscription, control: Control, cis: str, why: str) -> Finding:
    return Finding(
        subscription=subscription,
        control=control,
        cis_version=cis,
        outcome=Outcome.NOT_VERIFIABLE,
        reason=f"not audited: {why}",
        fix=(Note("Run that shard's job again, then merge every shard."),),
    )


def _facts(
    listed: Shard, shards: Sequence[Shard], findings: Sequence[Finding], problems: list[str]
) -> RunFacts:
    """The merged run's facts: `listed`'s criteria (every shard that listed agrees on them),
    the shards' times, identities and api-versions together, coverage from every finding."""
    first = listed.facts

    def joined(values: Iterable[str]) -> str:
        return ", ".join(dict.fromkeys(values))

    starts = [_time(s.facts.started) for s in shards]
    ends = [start + s.facts.duration_s for start, s in zip(starts, shards, strict=True)]
    listing = first.coverage.listing
    excluded = [
        (why, n)
        for why, n in first.coverage.excluded
        if not why.startswith(IN_ANOTHER_SHARD) and why != NO_CASE
    ]
    baselines = [f"{s.name}: {s.facts.baseline}" for s in shards if s.facts.baseline]
    return replace(
        first,
        arm_endpoint=joined(s.facts.arm_endpoint for s in shards),
        tenant=joined(s.facts.tenant for s in shards),
        identity=joined(s.facts.identity for s in shards),
        auth=joined(s.facts.auth for s in shards),
        api_versions=tuple(sorted({v for s in shards for v in s.facts.api_versions})),
        started=dt.datetime.fromtimestamp(min(starts), dt.UTC).isoformat(timespec="seconds"),
        duration_s=round(max(ends) - min(starts), 1),
        subscriptions=len(listing),
        tenants=tenants(first.signed_in_tenant, listing),
        evidence=None,
        evidence_digest=None,
        coverage=replace(
            coverage(first.coverage.visible, listing, excluded, findings),
            shard=None,
        ),
        baseline="; ".join(baselines) or None,
        cross_check=counted(f.microsoft for f in findings) if first.cross_check else None,
        error=(
            f"the merge of {len(shards)} shard{'s' if len(shards) != 1 else ''} is incomplete: "
            + "; ".join(problems)
            if problems
            else None
        ),
        interrupted=False,
        incomplete=bool(problems),
    )


def _time(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


# --- evidence --------------------------------------------------------------------------------


def merge_bundles(paths: Sequence[str], shards: Sequence[Shard], facts: RunFacts) -> dict[str, Any]:
    """One evidence bundle from the shards' bundles, each checked whole and unedited (its
    digest) and matched to its shard (the digest its shard's findings name)."""
    digests = {s.facts.evidence_digest: s for s in shards if s.facts.evidence_digest}
    bundles = []
    for path in paths:
        try:
            bundle = load_bundle(path)
        except EvidenceError as exc:
            raise MergeError(f"--evidence: {exc}") from None
        shard = digests.pop(bundle["digest"], None)
        if shard is None:
            raise MergeError(
                f"--evidence: {path} is no shard's bundle of this merge (no findings file "
                f"names its digest {bundle['digest']}), or it was given twice"
            )
        bundles.append((shard, bundle))
    without = [s for s in shards if not s.facts.evidence_digest] + list(digests.values())
    if without:
        raise MergeError(
            "--evidence: no bundle of "
            + ", ".join(f"{s.name} ({s.source})" for s in without)
            + ": a merged bundle holds every shard's answers; give each shard's, or none"
        )
    first = bundles[0][1]
    contacts: dict[str, Any] = {}
    for _, bundle in bundles:
        contacts.update(bundle["contacts"])
    merged: dict[str, Any] = {
        "schema": EVIDENCE_SCHEMA,
        "run": {
            **facts.to_dict(),
            "identity_claims": first["run"].get("identity_claims", {}),
            "served_api_version": first["run"].get("served_api_version"),
            "demo": first["run"].get("demo", False),
            "ended": max(str(b["run"].get("ended", "")) for _, b in bundles),
            "shards": [
                {"shard": f"{s.part[0]}/{s.part[1]}", "source": Path(p).name, "digest": b["digest"]}
                for (s, b), p in zip(bundles, paths, strict=True)
            ],
        },
        "subscriptions": first["subscriptions"],
        "contacts": dict(sorted(contacts.items())),
    }
    if "management_groups" in first:
        merged["management_groups"] = first["management_groups"]
    if "microsoft" in first:  # cross-checked: Defender's metadata once, each shard's reads
        assessments: dict[str, Any] = {}
        for _, bundle in bundles:
            assessments.update(bundle["microsoft"]["assessments"])
        merged["microsoft"] = {
            "metadata": first["microsoft"]["metadata"],
            "assessments": dict(sorted(assessments.items())),
        }
    return seal(merged)


def with_raw_answers(findings: Sequence[Finding], bundle: Mapping[str, Any]) -> list[Finding]:
    """The findings that did not pass, with the answers behind them from the bundle (what a
    failing row shows; a findings file does not keep them)."""
    reads = recorded_reads(bundle)
    shown: dict[str, tuple[str, ...]] = {}  # once per subscription, not per failing case
    out = []
    for finding in findings:
        key = finding.subscription.id.lower()
        if finding.outcome is not Outcome.COMPLIANT and key in reads:
            if key not in shown:
                shown[key] = raw_answers(reads[key][0])
            finding = replace(finding, raw_answers=shown[key])  # noqa: PLW2901
        out.append(finding)
    return out


# --- the command ---------------------------------------------------------------------------


def run_merge(out_dir: str, sources: Sequence[str], evidence: Sequence[str]) -> int:
    """Write the merged reports into `out_dir`; the exit code a run would end with (0 every
    case passed, was skipped or waived; 1 a case failed or could not be verified, or the
    merge is incomplete). MergeError when the shards cannot be merged: the reports are
    written too, saying the merge did not run (a stale one must not look current)."""
    folder = Path(out_dir)
    try:
        shards = [load_shard(path) for path in sources]
        facts, findings = merge(shards)
        used = list({s.part[0]: s for s in reversed(shards)}.values())  # each part's first
        bundle = merge_bundles(evidence, used, facts) if evidence else None
    except MergeError as exc:
        write_reports(folder, Report(_did_not_merge(str(exc)), []))
        raise
    if bundle is not None:
        findings = with_raw_answers(findings, bundle)
        facts = replace(facts, evidence=EVIDENCE_FILE, evidence_digest=bundle["digest"])
    write_reports(
        folder,
        Report(facts, findings, facts.management_groups, (lambda: bundle) if bundle else None),
    )
    failing = facts.error is not None or any(
        f.outcome is Outcome.NOT_VERIFIABLE
        or (f.outcome is Outcome.NOT_COMPLIANT and f.baseline is not Baseline.KNOWN)
        for f in findings
    )
    for line in (
        f"merge: {facts.coverage.sentence()}",
        f"merge: {result_line(findings)}",
        *([f"merge: {facts.error}"] if facts.error is not None else []),
        *closing(findings, str(folder / AUDIT_VIEW), prefix="merge"),
    ):
        print(one_line(line))
    return 1 if failing else 0


def write_reports(folder: Path, report: Report) -> None:
    """Every output of the registry a folder of reports holds, under its file name; a shared
    job summary ($GITHUB_STEP_SUMMARY) appended to as a run's."""
    report = replace(
        report,
        suite_name=SUITE_NAME,
        reports_at=tuple(str(folder / o.file) for o in OUTPUTS if o.for_readers and o.file),
        audit_view=str(folder / AUDIT_VIEW),
    )
    folder.mkdir(parents=True, exist_ok=True)
    for output in OUTPUTS:
        if output.write is None or output.file is None:
            continue
        output.write(folder / output.file, report)  # the evidence only with a bundle
        shared = output.shared_file()
        if output.append is not None and shared is not None:
            output.append(shared, report)


def _did_not_merge(why: str) -> RunFacts:
    return RunFacts(
        target="a merge of shards",
        arm_endpoint="-",
        tenant="-",
        identity="-",
        auth="-",
        api_versions=(),
        cis_version=cis.newest(),
        suite_version=__version__,
        suite_commit=__commit__,
        started=utc_now(),
        duration_s=0.0,
        subscriptions=0,
        error=f"the merge did not run: {why}. Nothing below is an audit result",
    )
