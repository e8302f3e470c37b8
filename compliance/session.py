"""What one pytest run decided at configure time and learned since, kept in pytest's stash
(pytester runs in-process: no module globals): built once from its options
(`Run.from_config`), or under pytest-xdist in a worker from what the controller read."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from compliance import options, paths, sources, text
from compliance.arm import AuditError
from compliance.arm.secrets import redact
from compliance.assessment import Assessment, assess
from compliance.audit import Audit, Settings
from compliance.baseline import BaselineError, Verdicts, load_findings
from compliance.contacts import ReadResult, Unverifiable
from compliance.controls import CATALOGUE, CONTROLS, Control, Policy
from compliance.evidence import EvidenceError, load_bundle
from compliance.model import Subscription
from compliance.options import OptionError
from compliance.text import one_line
from compliance.waivers import Waiver, WaiverError, load_waivers

# What --azure-demo audits against when the run sets no waivers of its own: an active waiver
# and an expired one (its policy is compliance.options.DEMO_ALLOWED_DOMAINS).
DEMO_WAIVERS = Path(__file__).parent / "emulator" / "tenants" / "demo-waivers.toml"


@dataclass
class Run:
    audit: Audit
    cis_version: str
    policy: Policy
    waivers: tuple[Waiver, ...] = ()
    waivers_source: str | None = None
    demo_defaults: bool = False  # the demo's policy and waivers apply
    replay: dict[str, Any] | None = None  # the evidence bundle a replay re-runs
    baseline: Verdicts | None = None  # --azure-baseline: an earlier run's verdicts
    error: AuditError | None = None  # ends the run after collection
    interrupted: str | None = None  # what stopped the run before it judged every case
    judged: int = 0  # cases judged when it was interrupted
    cases: int = 0  # compliance cases collected, before -k and -m deselect any
    started_at: float = 0.0  # time.time() at configure
    started: str = ""
    # Each subscription's assessment, by lower-case id: made once, shared by its cases.
    assessments: dict[str, Assessment] = field(default_factory=dict)

    def assessment(self, subscription: Subscription) -> Assessment:
        """The subscription's assessment, from its contacts read once per run, by the
        controls the run's CIS version has."""
        key = subscription.id.lower()
        found = self.assessments.get(key)
        if found is None:
            read: ReadResult
            try:
                read = self.audit.security_contacts(subscription)
            except Unverifiable as exc:
                read = exc
            controls = [c for c in CONTROLS.values() if c.cis_id(self.cis_version)]
            found = self.assessments[key] = assess(subscription.id, read, self.policy, controls)
        return found

    @classmethod
    def from_config(cls, config: pytest.Config) -> Run:
        """The run its options describe, every option read here, once; a value no option
        takes is a usage error (pytest's one `ERROR:` line). A pytest-xdist worker's audit
        is the controller's snapshot (`for_workers`): workers never ask Azure."""
        lookup = functools.partial(setting, config)
        settings = usage_errors(lambda: options.read_settings(lookup))
        cis_version = usage_errors(lambda: options.read_cis_version(lookup))
        from_controller = getattr(config, "workerinput", {})
        replay = None
        if "azure_audit" in from_controller:
            audit = Audit.from_snapshot(settings, from_controller["azure_audit"])
            demo_defaults = from_controller["azure_demo_defaults"]
        else:
            check_outputs(config)
            replay = replay_bundle(config, settings)
            if replay and replay.get("management_groups") and not settings.management_groups:
                # a replay audits what its run audited: the groups it was scoped by
                settings = replace(settings, management_groups=tuple(replay["management_groups"]))
            audit = Audit(settings, sources.for_run(settings, replay))
            # The demo's policy and waivers apply to the demo and to replays of it alike.
            demo_defaults = settings.demo or bool(replay and replay["run"].get("demo"))
        path = waivers_path(config, demo_defaults)
        try:
            waivers = load_waivers(path, (c.key for c in CATALOGUE)) if path else ()
        except WaiverError as exc:
            raise pytest.UsageError(f"--azure-waivers: {exc}") from None
        baseline_path = paths.resolve(config, "azure_baseline")
        try:
            baseline = load_findings(baseline_path) if baseline_path else None
        except BaselineError as exc:
            raise pytest.UsageError(f"--azure-baseline: {exc}") from None
        return cls(
            audit=audit,
            cis_version=cis_version,
            replay=replay,
            policy=usage_errors(lambda: options.read_policy(lookup, demo_defaults)),
            demo_defaults=demo_defaults,
            waivers=waivers,
            waivers_source=path,
            baseline=baseline,
            started_at=time.time(),
            started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )

    def for_workers(self) -> dict[str, Any]:
        """What a pytest-xdist worker's run is built from (`from_config`): what this run
        read, as plain data. Workers never hold a secret: whatever an answer echoed is
        redacted before they see it (a token is a plain run of [A-Za-z0-9._~-]: the JSON
        stays JSON). A run that could not start hands over nothing to audit."""
        if self.error is not None:
            snapshot = Audit.empty_snapshot()
        else:
            snapshot = json.loads(redact(json.dumps(self.audit.snapshot())))
        return {"azure_audit": snapshot, "azure_demo_defaults": self.demo_defaults}


RUN = pytest.StashKey[Run]()
# On an item: its subscription's assessment (the item's verdict is its control's part).
ASSESSMENT = pytest.StashKey[Assessment]()
ACTIVE_WAIVER = pytest.StashKey[Waiver]()
EXPIRED_WAIVER = pytest.StashKey[Waiver]()
KNOWN = pytest.StashKey[str]()  # on an item: why its failure is known (the baseline failed it)


def setting(config: pytest.Config, dest: str) -> Any:
    """The command line wins; otherwise the ini value (None when neither is set)."""
    value = config.getoption(dest)
    if value is not None:
        return value
    value = config.getini(dest)
    return value if value not in ("", []) else None


_T = TypeVar("_T")


def usage_errors(read: Callable[[], _T]) -> _T:
    """`read()`, a value the user gave that no option takes being a usage error."""
    try:
        return read()
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None


def run_error(error: AuditError) -> pytest.UsageError:
    """A run-ending error as pytest's one `ERROR:` line: one line, no secret in it (an
    azure-identity message can quote what `az` printed)."""
    return pytest.UsageError(one_line(redact(str(error))))


def waivers_path(config: pytest.Config, demo: bool) -> str | None:
    """Where a path is relative to: compliance.paths."""
    path = paths.resolve(config, "azure_waivers")
    if path is not None:
        return str(path)
    return str(DEMO_WAIVERS) if demo else None


def replay_bundle(config: pytest.Config, settings: Settings) -> dict[str, Any] | None:
    path = paths.resolve(config, "azure_replay")
    if path is None:
        return None
    if settings.demo:
        raise pytest.UsageError("--azure-replay re-runs a recorded audit: drop --azure-demo")
    try:
        return load_bundle(path)
    except EvidenceError as exc:
        raise pytest.UsageError(f"--azure-replay: {exc}") from None


# Every file a run writes, by the option that names it: pytest's and pytest-html's own, then
# the suite's (compliance.reporting writes these, in this order).
OUTPUTS = {
    "xmlpath": "--junitxml",
    "htmlpath": "--html",
    "azure_findings": "--azure-findings",
    "azure_findings_csv": "--azure-findings-csv",
    "azure_findings_ocsf": "--azure-findings-ocsf",
    "azure_evidence": "--azure-evidence",
    "azure_audit_html": "--azure-audit-html",
    "azure_step_summary": "--azure-step-summary",
}


def output_path(config: pytest.Config, dest: str) -> str | None:
    path = paths.resolve(config, dest)  # where a path is relative to: compliance.paths
    return None if path is None else str(path)


def check_outputs(config: pytest.Config) -> None:
    """Refuse, before the audit, an output path the run could not write, two outputs naming
    one file (one would be lost), and an output naming the bundle being replayed."""
    seen: dict[str, str] = {}
    replay = paths.resolve(config, "azure_replay")
    if replay is not None:
        seen[os.path.realpath(replay)] = "--azure-replay (the bundle being replayed)"
    for dest, flag in OUTPUTS.items():
        path = output_path(config, dest)
        if path is None:
            continue
        _check_writable(flag, Path(path))
        where = os.path.realpath(path)
        if where in seen:
            raise pytest.UsageError(
                f"{flag} {path}: {seen[where]} names the same file; give each its own"
            )
        seen[where] = flag


def _check_writable(flag: str, target: Path) -> None:
    if target.is_dir():
        raise pytest.UsageError(f"{flag}: {target} is a directory; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise pytest.UsageError(f"{flag}: cannot create {target.parent}: {exc}") from None
    if not os.access(target.parent, os.W_OK):
        raise pytest.UsageError(f"{flag}: {target.parent} is not writable")


_MARK_WORDS = {"and", "or", "not", "True", "False"}


def check_marker_expression(config: pytest.Config) -> None:
    """A marker in -m that no plugin registered is a typo (`-m contact-email`), not a
    selection of nothing."""
    expression = config.option.markexpr or ""
    known = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    used = set(re.findall(r"[\w.+\-\[\]\\/]+", expression)) - _MARK_WORDS
    unknown = sorted(used - known)
    if unknown:
        raise pytest.UsageError(
            f"-m {expression!r}: no marker {', '.join(unknown)}; the controls' markers are "
            f"{', '.join(c.key for c in CATALOGUE)} (pytest --markers lists every marker)"
        )


def is_check(item: pytest.Item) -> bool:
    """Whether a collected item checks a subscription's security contacts."""
    return bool({"verdict", "security_contacts"} & set(getattr(item, "fixturenames", ())))


def case_id(subscription: Subscription, cis: str | None) -> str:
    """Display names are not unique; the subscription ID in every case id is."""
    return text.case_id(cis, subscription.display_name, subscription.id)


def case_of(item: pytest.Item) -> tuple[Control, Subscription] | None:
    """The control and subscription a collected item checks (None: not a compliance case)."""
    control = CONTROLS.get(getattr(item, "originalname", ""))
    callspec = getattr(item, "callspec", None)
    subscription = callspec.params.get("subscription") if callspec is not None else None
    if control is None or not isinstance(subscription, Subscription):
        return None
    return control, subscription
